"""The Faust application: topics and the agent that turns requests into segment and status events.

`create_app()` builds everything from `WorkerSettings`; nothing here runs at import.
"""

from __future__ import annotations

import logging
import os

import faust
from pydantic import BaseModel

from processors.pipeline import Resources, Source, handle_request
from processors.settings import WorkerSettings
from schemas import DeadLetter, JobStatusChanged, SegmentTranscribed

log = logging.getLogger(__name__)

EXIT_FOR_REDELIVERY = 75  # EX_TEMPFAIL: the supervisor restarts the worker


def _where(source: Source) -> tuple[str, int, int]:
    return source.topic, source.partition, source.offset


class _FaustEmitter:
    """Sends events through the app's producer and waits for the broker's acknowledgement of each."""

    def __init__(self, *, status: faust.TopicT, segments: faust.TopicT, dlq: faust.TopicT) -> None:
        self._status = status
        self._segments = segments
        self._dlq = dlq

    @staticmethod
    async def _send(topic: faust.TopicT, key: str | None, event: BaseModel) -> None:
        pending = await topic.send(key=key.encode() if key else None, value=event.model_dump_json().encode())
        await pending  # resolves only once the broker has the record (acks=all)

    async def status(self, event: JobStatusChanged) -> None:
        await self._send(self._status, event.job_id, event)

    async def segment(self, event: SegmentTranscribed) -> None:
        await self._send(self._segments, event.job_id, event)

    async def dead_letter(self, event: DeadLetter) -> None:
        await self._send(self._dlq, event.job_id, event)


def create_app(settings: WorkerSettings, *, resources: Resources) -> faust.App:
    """The worker app over already-built resources (store, loaded transcriber); see `processors.worker`."""
    app = faust.App(
        settings.group_id,
        broker=[f"kafka://{server.strip()}" for server in settings.kafka.bootstrap_servers.split(",")],
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        topic_disable_leader=True,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        key_serializer="raw",
        value_serializer="raw",
        # One request may take minutes on CPU; the broker must not evict the worker while it transcribes.
        broker_max_poll_interval=3600.0,
        # A killed worker's partitions move to the others after this long, and its request is redone there.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        broker_commit_every=1,
        # Never skip past a request whose handling raised; see the agent.
        stream_ack_exceptions=False,
    )
    topics = settings.kafka.topics
    requests = app.topic(topics.requests, key_type=bytes, value_type=bytes, allow_empty=True)
    emitter = _FaustEmitter(
        status=app.topic(topics.jobs), segments=app.topic(topics.segments), dlq=app.topic(topics.dlq)
    )

    @app.agent(requests, concurrency=1)
    async def transcribe(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            source = Source(topic=message.topic, partition=message.partition, offset=message.offset, key=message.key)
            try:
                await handle_request(message.value, source, resources, emitter)
            except Exception:
                # Only emitting can fail here (the pipeline turns every processing error into a failed job).
                # Results that did not reach the broker must not be acknowledged: exit hard, before this offset
                # is committed, so the request is redelivered to a restarted or another worker.
                log.critical("could not emit results for %s[%d]@%d; exiting for redelivery", *_where(source))
                os._exit(EXIT_FOR_REDELIVERY)

    return app
