"""An API configured against the session's broker, on topics of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from api import ApiSettings
from ingest import EventPublisher, KafkaSettings, StorageSettings
from schemas import TopicNames
from stack.topics import ensure_topics


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(kafka_bootstrap: str, tmp_path: Path, request: pytest.FixtureRequest) -> ApiSettings:
    """On SQLite, and on a fresh database of the real PostgreSQL server."""
    suffix = uuid.uuid4().hex[:8]
    topics = TopicNames(**{name: f"{name}-{suffix}" for name in TopicNames.model_fields})
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topics=topics, partitions=1, delivery_timeout_s=10)
    ensure_topics(kafka)
    return ApiSettings(
        kafka=kafka,
        storage=StorageSettings(local_root=tmp_path / "objects"),
        database_path=tmp_path / "jobs.sqlite3",
        database_url=request.getfixturevalue("postgres").new_database() if request.param == "postgresql" else None,
        materialiser_group_id=f"api-{suffix}",
    )


@pytest.fixture
def kafka(kafka_bootstrap: str) -> Iterator[tuple[KafkaSettings, EventPublisher]]:
    """Topics of its own (2 partitions each) on the session's broker, and a started publisher."""
    suffix = uuid.uuid4().hex[:8]
    topics = TopicNames(**{name: f"{name}-{suffix}" for name in TopicNames.model_fields})
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, topics=topics, partitions=2, delivery_timeout_s=10)
    ensure_topics(settings)
    publisher = EventPublisher(settings)
    publisher.start()
    yield settings, publisher
    publisher.close()
