"""`scribeflow follow JOB_ID`: a downstream consumer, as any team would write one, printing a job's segments from
Kafka as they arrive and stopping when the job ends.

It reads `transcription.segments.v1` and `transcription.jobs.v1` with its own throw-away consumer group from the
beginning of the topics, keeps the events keyed by the job id (a job's events share one partition, so they come in
order), drops repeats by `(job id, segment id)` (delivery is at least once), and ignores fields it does not know
(schema evolution is additive).
"""

from __future__ import annotations

import sys
import time
import uuid
from typing import TextIO

from pydantic import ValidationError

from api.formats import timestamp
from ingest.config import KafkaSettings
from schemas import JobStatusChanged, SegmentTranscribed


def follow(settings: KafkaSettings, job_id: str, *, out: TextIO = sys.stdout, timeout_s: float = 3600) -> int:
    """Prints `[start --> end] text` per segment; returns 0 when the job completed, 1 if it failed or timed out."""
    from confluent_kafka import Consumer

    topics = settings.topics
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"scribeflow-follow-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topics.segments, topics.jobs])
    printed: set[int] = set()
    expected: int | None = None
    status = "queued"
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() or message.key() != job_id.encode():
                continue
            try:
                if message.topic() == topics.segments:
                    segment = SegmentTranscribed.model_validate_json(message.value() or b"").segment
                    if segment.id not in printed:
                        printed.add(segment.id)
                        start, end = timestamp(segment.start, decimal="."), timestamp(segment.end, decimal=".")
                        print(f"[{start} --> {end}] {segment.text.strip()}", file=out, flush=True)
                else:
                    event = JobStatusChanged.model_validate_json(message.value() or b"")
                    status = event.status.value
                    if event.status.terminal:
                        expected = event.segment_count or 0
                        if event.error is not None:
                            print(f"failed: {event.error.message}", file=sys.stderr)
            except ValidationError:
                continue  # not an event this consumer understands; the dead-letter topic has the details
            if status == "failed" or (expected is not None and len(printed) >= expected):
                return 0 if status == "completed" else 1
        print(f"gave up waiting after {timeout_s:.0f} s; the job is {status}", file=sys.stderr)
        return 1
    finally:
        consumer.close()
