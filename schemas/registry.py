"""Every event type, by name: what `scribeflow schemas` publishes as JSON Schema for consumers in other languages."""

from pydantic import BaseModel

from schemas.chunks import ChunkFailed, ChunkRequested, ChunkTranscribed
from schemas.events import DeadLetter, JobStatusChanged, SegmentTranscribed, TranscriptionRequested
from schemas.webhooks import WebhookGaveUp

EVENT_TYPES: dict[str, type[BaseModel]] = {
    "TranscriptionRequested": TranscriptionRequested,
    "JobStatusChanged": JobStatusChanged,
    "SegmentTranscribed": SegmentTranscribed,
    "DeadLetter": DeadLetter,
    "ChunkRequested": ChunkRequested,
    "ChunkTranscribed": ChunkTranscribed,
    "ChunkFailed": ChunkFailed,
    "WebhookGaveUp": WebhookGaveUp,
}
