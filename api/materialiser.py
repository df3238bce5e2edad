"""Materialising the Kafka topics into the job store, in a background thread of the API process.

Offsets are stored only after the upsert succeeded (at-least-once); the upserts are idempotent, so a redelivered
event changes nothing. An event that does not parse never stops the consumer: a malformed status or segment event
goes to the dead-letter topic with the reason (its `event_id` names its topic, partition and offset, so copies from
several API replicas are recognisably one), and malformed requests are dead-lettered by the workers, who own that
topic.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from api.jobstore import JobStore, Transition
from ingest.config import KafkaSettings
from schemas import DeadLetter, JobStatusChanged, SegmentTranscribed, TranscriptionRequested, describe_invalid

log = logging.getLogger(__name__)


class Materialiser:
    def __init__(
        self,
        *,
        settings: KafkaSettings,
        group_id: str,
        store: JobStore,
        on_update: Callable[[str], None] | None = None,
        on_transition: Callable[[Transition], None] | None = None,
        dead_letter: Callable[[DeadLetter], None] | None = None,
    ) -> None:
        self._settings = settings
        self._group_id = group_id
        self._store = store
        self._on_update = on_update
        self._on_transition = on_transition
        self._dead_letter = dead_letter
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.assigned = threading.Event()
        """Set once the consumer holds its partitions: the job store is catching up from then on."""

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="materialiser", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        """Consume until stopped; a failed write restarts the consumer from the last stored offset."""
        backoff = 1.0
        while not self._stop.is_set():
            try:
                self._consume()
                return
            except Exception:
                log.exception("materialiser failed; resuming from the last applied event in %.0f s", backoff)
                self.assigned.clear()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _consume(self) -> None:
        from confluent_kafka import Consumer

        topics = self._settings.topics
        consumer = Consumer(
            {
                "bootstrap.servers": self._settings.bootstrap_servers,
                "group.id": self._group_id,
                "client.id": f"{self._group_id}-materialiser",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": True,
                "enable.auto.offset.store": False,
            }
        )
        handlers: dict[str, Callable[[bytes], str]] = {
            topics.requests: self._request,
            topics.jobs: self._status,
            topics.segments: self._segment,
        }
        consumer.subscribe(list(handlers), on_assign=lambda *_: self.assigned.set())
        try:
            while not self._stop.is_set():
                message = consumer.poll(0.2)
                if message is None:
                    continue
                if message.error():
                    log.warning("materialiser consumer error: %s", message.error())
                    continue
                self._apply(handlers[message.topic() or ""], message)
                consumer.store_offsets(message)
        finally:
            consumer.close()  # commits the stored offsets

    def _apply(self, handler: Callable[[bytes], str], message: Any) -> None:
        try:
            job_id = handler(message.value() or b"")
        except ValidationError as e:
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            log.warning("unreadable event at %s[%d]@%d: %s", topic, partition, offset, e.errors()[:3])
            if self._dead_letter is not None and topic != self._settings.topics.requests:
                key = (message.key() or b"").decode("utf-8", "replace") or None
                # A failed publish raises: the consumer restarts from this event instead of losing it.
                self._dead_letter(
                    DeadLetter(
                        event_id=f"{topic}:{partition}:{offset}",
                        job_id=key,
                        source_topic=topic,
                        source_partition=partition,
                        source_offset=offset,
                        key=key,
                        payload=(message.value() or b"").decode("utf-8", "replace"),
                        reason=describe_invalid(e, "event"),
                    )
                )
            return
        if self._on_update is not None:
            self._on_update(job_id)

    def _request(self, raw: bytes) -> str:
        event = TranscriptionRequested.model_validate_json(raw)
        self._store.record_request(event)
        return event.job_id

    def _status(self, raw: bytes) -> str:
        event = JobStatusChanged.model_validate_json(raw)
        moved = self._store.apply_status(event)
        if moved is not None and self._on_transition is not None:
            self._on_transition(moved)
        return event.job_id

    def _segment(self, raw: bytes) -> str:
        event = SegmentTranscribed.model_validate_json(raw)
        self._store.upsert_segment(event)
        return event.job_id
