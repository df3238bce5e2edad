"""The API's side of live sessions on Kafka: what each session's worker says, handed to the connection that waits.

One consumer per API process reads every partition of the live output topic from its end, without a consumer
group: a session's events go to whichever replica holds its WebSocket, and a replica drops the rest. Each event
is small, and a replica reading every session's events is the price of keeping connections on any replica; a
deployment with many replicas and thousands of sessions would key the output by replica instead.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ingest.config import KafkaSettings
from schemas.live import LiveOutput

log = logging.getLogger(__name__)

_OUTPUT: TypeAdapter[LiveOutput] = TypeAdapter(LiveOutput)


class LiveHub:
    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._sessions: dict[str, asyncio.Queue[LiveOutput]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._assigned = threading.Event()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="live-hub", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def ready(self) -> bool:
        return self._assigned.is_set() and self._thread is not None and self._thread.is_alive()

    def register(self, session_id: str) -> asyncio.Queue[LiveOutput]:
        queue: asyncio.Queue[LiveOutput] = asyncio.Queue()
        self._sessions[session_id] = queue
        return queue

    def unregister(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def _deliver(self, event: LiveOutput) -> None:
        queue = self._sessions.get(event.job_id)
        if queue is not None:
            queue.put_nowait(event)

    def _run(self) -> None:
        # A reader that stopped would leave every new session waiting for an answer that never comes while `ready`
        # still says yes, so anything unexpected starts a new consumer instead of ending the thread.
        while not self._stop.is_set():
            try:
                self._read()
            except Exception:
                self._assigned.clear()
                log.exception("reading the live output topic failed; starting a new consumer")
                self._stop.wait(1.0)

    def _read(self) -> None:
        from confluent_kafka import Consumer, TopicPartition

        topic = self._settings.topics.live_output
        consumer: Any = Consumer(
            {
                "bootstrap.servers": self._settings.bootstrap_servers,
                "group.id": "scribeflow-api-live",  # required by the client; nothing is committed under it
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
            }
        )
        try:
            while not self._stop.is_set() and not self._assigned.is_set():
                try:
                    metadata = consumer.list_topics(topic, timeout=5)
                    partitions = sorted(metadata.topics[topic].partitions)
                    if not partitions:
                        raise RuntimeError(f"topic {topic} has no partitions")
                    # Each partition's end asked for now, not the logical end: reading starts from offsets the
                    # broker gave, before any session can be opened.
                    ends = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1] for p in partitions]
                    consumer.assign([TopicPartition(topic, p, end) for p, end in zip(partitions, ends, strict=True)])
                    self._assigned.set()
                except Exception as e:  # the broker is not up yet: new sessions get a 503 until it is
                    log.warning("live output topic not readable yet: %s", e)
                    self._stop.wait(2.0)
            while not self._stop.is_set():
                message = consumer.poll(0.2)
                if message is None or message.error() is not None:
                    continue
                try:
                    event = _OUTPUT.validate_json(message.value() or b"")
                except ValidationError as e:
                    log.warning("unreadable live output event at offset %s: %s", message.offset(), e)
                    continue
                if self._loop is not None and event.job_id in self._sessions:
                    self._loop.call_soon_threadsafe(self._deliver, event)
        finally:
            consumer.close()
