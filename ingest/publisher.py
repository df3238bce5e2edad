"""Publishing events to Kafka with the broker's confirmation.

`publish()` returns only after the broker has acknowledged the event (acks=all, idempotent producer), and raises
`PublishError` when it cannot within the configured delivery timeout. That confirmation is what lets the API
answer 202: an accepted job is on the log, not in a client buffer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from ingest.config import KafkaSettings

log = logging.getLogger(__name__)


class PublishError(Exception):
    """The broker did not confirm the event."""


@dataclass(frozen=True)
class Record:
    """One Kafka record as bytes; `partition` None lets the key choose it."""

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None = None


class EventPublisher:
    """One confluent-kafka producer shared by all requests of a process; a thread serves its callbacks."""

    def __init__(self, settings: KafkaSettings, *, client_id: str = "scribeflow") -> None:
        self._settings = settings
        self._client_id = client_id
        self._producer: Any = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def start(self) -> None:
        from confluent_kafka import Producer

        timeout_ms = int(self._settings.delivery_timeout_s * 1000)
        self._producer = Producer(
            {
                "bootstrap.servers": self._settings.bootstrap_servers,
                "client.id": self._client_id,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 2,
                "message.timeout.ms": timeout_ms,
                # Without this the client retries an unreachable broker silently until message.timeout.ms.
                "socket.connection.setup.timeout.ms": min(timeout_ms, 10_000),
            }
        )
        self._stop.clear()
        self._poller = threading.Thread(target=self._poll, name="kafka-producer-poll", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    async def publish(self, topic: str, key: str, event: BaseModel) -> None:
        """Send `event` as JSON keyed by `key`; returns once the broker confirms it."""
        await self.publish_raw([Record(topic, key.encode(), event.model_dump_json().encode())])

    async def publish_raw(self, records: Sequence[Record]) -> None:
        """Send every record (a `None` value is a tombstone); returns once the broker confirmed all of them."""
        if self._producer is None:
            raise PublishError("publisher is not started")
        loop = asyncio.get_running_loop()
        pending: list[asyncio.Future[None]] = []
        for record in records:
            done: asyncio.Future[None] = loop.create_future()

            def on_delivery(err: Any, _msg: Any, done: asyncio.Future[None] = done) -> None:
                loop.call_soon_threadsafe(_settle, done, err)

            extra = {} if record.partition is None else {"partition": record.partition}
            try:
                self._producer.produce(
                    record.topic, key=record.key, value=record.value, on_delivery=on_delivery, **extra
                )
            except Exception as e:  # KafkaException or BufferError: the event never left this process
                raise PublishError(f"cannot queue event for {record.topic}: {e}") from e
            pending.append(done)
        try:
            await asyncio.wait_for(asyncio.gather(*pending), timeout=self._settings.delivery_timeout_s + 5)
        except TimeoutError as e:
            raise PublishError("broker did not confirm the events in time") from e

    def publish_blocking(self, topic: str, key: str | None, event: BaseModel) -> None:
        """`publish` for threads without an event loop (the API's materialiser); returns once confirmed."""
        if self._producer is None:
            raise PublishError("publisher is not started")
        confirmed = threading.Event()
        failures: list[Any] = []

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                failures.append(err)
            confirmed.set()

        try:
            self._producer.produce(
                topic,
                key=key.encode() if key else None,
                value=event.model_dump_json().encode(),
                on_delivery=on_delivery,
            )
        except Exception as e:  # KafkaException or BufferError: the event never left this process
            raise PublishError(f"cannot queue event for {topic}: {e}") from e
        if not confirmed.wait(self._settings.delivery_timeout_s + 5):
            raise PublishError("broker did not confirm the event in time")
        if failures:
            raise PublishError(f"broker rejected the event: {failures[0]}")

    def ping(self, timeout: float = 3.0) -> None:
        """Raises `PublishError` unless a broker answers a metadata request and the requests topic exists."""
        if self._producer is None:
            raise PublishError("publisher is not started")
        topic = self._settings.topics.requests
        try:
            metadata = self._producer.list_topics(topic, timeout=timeout)
        except Exception as e:  # KafkaException: no broker answered in time
            raise PublishError(f"no broker answered: {e}") from e
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            raise PublishError(f"topic {topic} is not available: {found.error if found else 'missing'}")

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is still queued, then stop the callback thread."""
        if self._producer is None:
            return
        remaining = self._producer.flush(timeout)
        if remaining:
            log.warning("%d events were not confirmed before shutdown", remaining)
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=2)
        self._producer = None


def _settle(done: asyncio.Future[None], err: Any) -> None:
    if done.done():
        return
    if err is None:
        done.set_result(None)
    else:
        done.set_exception(PublishError(f"broker rejected the event: {err}"))
