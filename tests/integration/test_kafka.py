"""Topic creation, confirmed publishing and materialising, against the real broker the session starts."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from sqlalchemy import text

from api.database import connect, database_url, migrate, open_database
from api.jobstore import JobStore
from api.materialiser import Materialiser
from ingest import EventPublisher, KafkaSettings, PublishError
from schemas import (
    AudioRef,
    DeadLetter,
    JobStatus,
    JobStatusChanged,
    Segment,
    SegmentTranscribed,
    TopicNames,
    TranscriptionRequested,
)
from stack.topics import ensure_topics
from tests.support.ports import free_port

pytestmark = pytest.mark.kafka


def _settings(bootstrap: str) -> KafkaSettings:
    suffix = uuid.uuid4().hex[:8]
    topics = TopicNames(**{name: f"{name}-{suffix}" for name in TopicNames.model_fields})
    return KafkaSettings(bootstrap_servers=bootstrap, topics=topics, partitions=3, delivery_timeout_s=5)


def test_topics_are_created_once_with_the_configured_partitions(kafka_bootstrap: str) -> None:
    settings = _settings(kafka_bootstrap)
    assert sorted(ensure_topics(settings)) == sorted(settings.topics.model_dump().values())
    assert ensure_topics(settings) == []
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    metadata = admin.list_topics(timeout=10)
    assert len(metadata.topics[settings.topics.segments].partitions) == 3
    assert len(metadata.topics[settings.topics.stitch_state].partitions) == 3, "a table's changelog matches its source"
    from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]

    for name in (settings.topics.stitch_state, settings.topics.segments):
        [future] = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, name)]).values()
        policy = future.result(timeout=10)["cleanup.policy"].value
        assert policy == ("compact" if name in settings.topics.changelogs else "delete")


def test_publish_returns_after_the_broker_has_the_event(kafka_bootstrap: str) -> None:
    settings = _settings(kafka_bootstrap)
    ensure_topics(settings)
    publisher = EventPublisher(settings)
    publisher.start()
    event = TranscriptionRequested(job_id="job_pub", audio=AudioRef(key="uploads/job_pub/audio"))
    try:
        asyncio.run(publisher.publish(settings.topics.requests, event.job_id, event))
    finally:
        publisher.close()
    consumer = Consumer(
        {"bootstrap.servers": kafka_bootstrap, "group.id": uuid.uuid4().hex, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([settings.topics.requests])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                assert message.key() == b"job_pub"
                assert TranscriptionRequested.model_validate_json(message.value() or b"") == event
                return
        pytest.fail("the published event never arrived")
    finally:
        consumer.close()


def test_publish_fails_clearly_when_no_broker_answers() -> None:
    settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", delivery_timeout_s=2)
    publisher = EventPublisher(settings)
    publisher.start()
    event = TranscriptionRequested(job_id="job_x", audio=AudioRef(key="k"))
    started = time.monotonic()
    try:
        with pytest.raises(PublishError):
            asyncio.run(publisher.publish(settings.topics.requests, event.job_id, event))
    finally:
        publisher.close(timeout=1)
    assert time.monotonic() - started < 10


def _segment(job: str, i: int) -> SegmentTranscribed:
    seg = Segment(id=i, start=i, end=i + 1, text=f" part {i}", avg_logprob=-0.1, no_speech_prob=0.0)
    return SegmentTranscribed(job_id=job, segment=seg)


def _read_all(bootstrap: str, topic: str, wait_s: float = 5.0) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    found: list[bytes] = []
    deadline = time.monotonic() + wait_s
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                found.append(message.value() or b"")
    finally:
        consumer.close()
    return found


def test_materialiser_applies_each_fact_once_and_dead_letters_garbage(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = _settings(kafka_bootstrap)
    ensure_topics(settings)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    topics = settings.topics
    job = "job_mat"
    events = [
        (topics.requests, TranscriptionRequested(job_id=job, audio=AudioRef(key="k", filename="x.wav"))),
        (topics.jobs, JobStatusChanged(job_id=job, status=JobStatus.PROCESSING)),
        (topics.segments, _segment(job, 0)),
        (topics.segments, _segment(job, 1)),
        (topics.jobs, JobStatusChanged(job_id=job, status=JobStatus.COMPLETED, segment_count=2, language="en")),
    ]
    producer.produce(topics.jobs, key=b"junk", value=b"{not json")
    for _ in range(2):  # a full redelivery of every event
        for topic, event in events:
            producer.produce(topic, key=job.encode(), value=event.model_dump_json().encode())
    assert producer.flush(10) == 0

    store = JobStore(open_database(None, tmp_path / "jobs.sqlite3"))
    updates: list[str] = []
    publisher = EventPublisher(settings)
    publisher.start()
    materialiser = Materialiser(
        settings=settings,
        group_id=uuid.uuid4().hex,
        store=store,
        on_update=updates.append,
        dead_letter=lambda letter: publisher.publish_blocking(topics.dlq, letter.job_id, letter),
    )
    materialiser.start()
    try:
        deadline = time.monotonic() + 30
        while len(updates) < 2 * len(events) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        materialiser.stop()
        publisher.close()
    letters = _read_all(kafka_bootstrap, topics.dlq)
    assert len(letters) == 1, letters
    letter = DeadLetter.model_validate_json(letters[0])
    assert letter.source_topic == topics.jobs and letter.payload == "{not json" and letter.key == "junk"
    assert letter.reason.startswith("invalid event") and letter.event_id.startswith(f"{topics.jobs}:")
    assert len(updates) == 2 * len(events)
    job_view = store.get(job)
    assert job_view is not None and job_view.status is JobStatus.COMPLETED
    assert job_view.result is not None and job_view.result.text == "part 0 part 1"
    assert job_view.filename == "x.wav" and job_view.language == "en"
    with store.engine.connect() as db:
        assert db.execute(text("SELECT count(*) FROM segments")).scalar() == 2


def test_materialiser_resumes_after_the_store_fails(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Writes that fail are retried from the last applied event once the store is back; nothing is skipped."""
    settings = _settings(kafka_bootstrap)
    ensure_topics(settings)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(3):
        producer.produce(settings.topics.segments, key=b"job_r", value=_segment("job_r", i).model_dump_json().encode())
    done = JobStatusChanged(job_id="job_r", status=JobStatus.COMPLETED, segment_count=3)
    producer.produce(settings.topics.jobs, key=b"job_r", value=done.model_dump_json().encode())
    assert producer.flush(10) == 0

    engine = connect(database_url(None, tmp_path / "jobs.sqlite3"))
    store = JobStore(engine)  # no tables yet: every write fails
    materialiser = Materialiser(settings=settings, group_id=uuid.uuid4().hex, store=store)
    materialiser.start()
    try:
        time.sleep(3)
        assert materialiser.running
        migrate(engine)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            job = store.get("job_r")
            if job is not None and job.result is not None:
                break
            time.sleep(0.2)
    finally:
        materialiser.stop()
    assert job is not None and job.result is not None and job.result.text == "part 0 part 1 part 2"
