"""Taking audio in: object storage, the Kafka publisher, and the submit step that joins them."""

from ingest.config import KafkaSettings, StorageSettings
from ingest.publisher import EventPublisher, PublishError
from ingest.service import IngestUnavailable, audio_key, chunk_key, draft_key, new_job_id, speaker_key, submit
from ingest.storage import (
    InvalidKey,
    LocalObjectStore,
    ObjectNotFound,
    ObjectStore,
    S3ObjectStore,
    StorageError,
    open_store,
)

__all__ = [
    "EventPublisher",
    "IngestUnavailable",
    "InvalidKey",
    "KafkaSettings",
    "LocalObjectStore",
    "ObjectNotFound",
    "ObjectStore",
    "PublishError",
    "S3ObjectStore",
    "StorageError",
    "StorageSettings",
    "audio_key",
    "chunk_key",
    "draft_key",
    "new_job_id",
    "open_store",
    "speaker_key",
    "submit",
]
