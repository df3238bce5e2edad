"""The Faust application: three agents and the two tables that make them restartable.

- split: `transcription.requests.v1` → chunk audio in the store, `transcription.chunks.v1`, `processing`.
- transcribe: `transcription.chunks.v1`, up to `batch.size` events within `batch.window_s` → one batched decode →
  `transcription.chunk-results.v1`. Chunk attempts are counted in a table (changelog `chunk_attempts`).
- stitch: `transcription.chunk-results.v1` → segments, progress and completion, with per-job state in a table
  (changelog `stitch_state`).

`create_app()` builds everything from `WorkerSettings`; nothing here runs at import. Every topic, changelogs
included, is created by `scribeflow topics` with the same partition count, so partition n of each lives on one
worker and a table's state moves with the partitions that write it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import faust
from pydantic import BaseModel

from processors.settings import WorkerSettings
from processors.split import SplitResources, handle_request
from processors.stitch import StitchResources, handle_result
from processors.transcribe import TranscribeResources, handle_chunks
from processors.transport import Source
from schemas import (
    ChunkFailed,
    ChunkRequested,
    ChunkTranscribed,
    DeadLetter,
    JobStatusChanged,
    SegmentTranscribed,
)
from schemas.state import StitchState

log = logging.getLogger(__name__)

EXIT_FOR_REDELIVERY = 75  # EX_TEMPFAIL: the supervisor restarts the worker


class _FaustEmitter:
    """Sends events through the app's producer and waits until the broker has every one of them (acks=all)."""

    def __init__(self, app: faust.App, settings: WorkerSettings) -> None:
        topics = settings.kafka.topics
        self._status = app.topic(topics.jobs)
        self._segments = app.topic(topics.segments)
        self._dlq = app.topic(topics.dlq)
        self._chunks = app.topic(topics.chunks)
        self._results = app.topic(topics.chunk_results)

    @staticmethod
    async def _send(topic: faust.TopicT, events: Sequence[tuple[str | None, BaseModel, int | None]]) -> None:
        pending = [
            await topic.send(key=key.encode() if key else None, value=event.model_dump_json().encode(), partition=p)
            for key, event, p in events
        ]
        for sent in pending:
            await sent  # resolves only once the broker has the record

    async def status(self, event: JobStatusChanged) -> None:
        await self._send(self._status, [(event.job_id, event, None)])

    async def segments(self, events: Sequence[SegmentTranscribed]) -> None:
        await self._send(self._segments, [(e.job_id, e, None) for e in events])

    async def dead_letter(self, event: DeadLetter) -> None:
        await self._send(self._dlq, [(event.job_id, event, None)])

    async def chunks(self, events: Sequence[tuple[ChunkRequested, int]]) -> None:
        await self._send(self._chunks, [(f"{e.job_id}/{e.index}", e, partition) for e, partition in events])

    async def chunk_results(self, events: Sequence[ChunkTranscribed | ChunkFailed]) -> None:
        # Keyed by job: every result of a job reaches the same stitcher partition, in the order it was sent.
        await self._send(self._results, [(e.job_id, e, None) for e in events])


class _TableStitchStore:
    """The stitcher's state (key: job id) and parked results (key: job id#index), written in the event's partition."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def load(self, job_id: str) -> StitchState | None:
        raw = self._table.get(job_id.encode())
        return StitchState.model_validate_json(raw) if raw else None

    def parked(self, job_id: str, index: int) -> ChunkTranscribed | None:
        raw = self._table.get(f"{job_id}#{index}".encode())
        return ChunkTranscribed.model_validate_json(raw) if raw else None

    def save(self, state: StitchState) -> None:
        self._table[state.job_id.encode()] = state.model_dump_json().encode()

    def park(self, result: ChunkTranscribed) -> None:
        self._table[f"{result.job_id}#{result.index}".encode()] = result.model_dump_json().encode()

    def unpark(self, job_id: str, index: int) -> None:
        key = f"{job_id}#{index}".encode()
        if key in self._table:
            del self._table[key]


class _TableAttempts:
    """Attempt counts of chunks in flight. A batch holds chunks of several partitions, so each write names the
    partition of its chunk's event (the table's changelog is co-partitioned with the chunk topic)."""

    def __init__(self, table: Any, app: faust.App) -> None:
        self._table = table
        self._app = app

    def get(self, key: str) -> int:
        raw = self._table.data.get(key.encode())
        return int(raw) if raw else 0

    def set(self, key: str, partition: int, count: int) -> None:
        value = str(count).encode()
        self._table.data[key.encode()] = value
        self._table.send_changelog(partition, key.encode(), value, key_serializer="raw", value_serializer="raw")

    def clear(self, key: str, partition: int) -> None:
        self._table.data.pop(key.encode(), None)
        self._table.send_changelog(partition, key.encode(), None, key_serializer="raw", value_serializer="raw")

    async def flush(self) -> None:
        await self._app.producer.flush()


def _source(event: Any) -> Source:
    message = event.message
    return Source(topic=message.topic, partition=message.partition, offset=message.offset, key=message.key)


def _exit_for_redelivery(source: Source) -> None:
    # Only emitting can fail in the steps (each turns a processing error into a failed chunk or job). Results that
    # did not reach the broker must not be acknowledged: exit hard, before this offset is committed, so the event
    # is redelivered to a restarted or another worker.
    log.critical("could not emit results for %s[%d]@%d; exiting for redelivery", *_where(source))
    os._exit(EXIT_FOR_REDELIVERY)


def _where(source: Source) -> tuple[str, int, int]:
    return source.topic, source.partition, source.offset


def create_app(
    settings: WorkerSettings,
    *,
    split: SplitResources,
    transcribe: TranscribeResources,
    stitch: StitchResources,
) -> faust.App:
    """The worker app over already-built resources (store, loaded model); see `processors.worker`."""
    app = faust.App(
        settings.group_id,
        broker=[f"kafka://{server.strip()}" for server in settings.kafka.bootstrap_servers.split(",")],
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        topic_disable_leader=True,
        topic_allow_declare=False,
        topic_partitions=settings.kafka.partitions,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        key_serializer="raw",
        value_serializer="raw",
        # Splitting a long recording takes a while on CPU; the broker must not evict the worker meanwhile.
        broker_max_poll_interval=3600.0,
        # A killed worker's partitions move to the others after this long, and its work is redone there.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        broker_commit_every=1,
        # Never skip past an event whose handling raised; see the agents.
        stream_ack_exceptions=False,
        table_standby_replicas=0,
        consumer_group_instance_id=settings.instance_id,
    )
    topics = settings.kafka.topics
    partitions = settings.kafka.partitions

    def changelog(name: str) -> faust.TopicT:
        return app.topic(name, key_type=bytes, value_type=bytes, partitions=partitions)

    stitch_table = app.Table(
        "stitch",
        key_type=bytes,
        value_type=bytes,
        partitions=partitions,
        changelog_topic=changelog(topics.stitch_state),
    )
    attempts_table = app.Table(
        "chunk-attempts",
        key_type=bytes,
        value_type=bytes,
        partitions=partitions,
        changelog_topic=changelog(topics.chunk_attempts),
    )
    emitter = _FaustEmitter(app, settings)
    stitch_store = _TableStitchStore(stitch_table)
    attempts = _TableAttempts(attempts_table, app)

    def topic(name: str) -> faust.TopicT:
        return app.topic(name, key_type=bytes, value_type=bytes, allow_empty=True)

    @app.agent(topic(topics.requests), concurrency=1)
    async def split_requests(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            source = _source(event)
            try:
                await handle_request(event.message.value, source, split, emitter)
            except Exception:
                _exit_for_redelivery(source)

    @app.agent(topic(topics.chunks), concurrency=1)
    async def transcribe_chunks(stream: faust.StreamT[bytes]) -> None:
        batches = stream.take_events(transcribe.batch_size, within=transcribe.batch_window_s)  # type: ignore[attr-defined]
        async for events in batches:
            # After a rebalance Faust may hand over an event twice in one batch; once is enough.
            unique = {(e.message.partition, e.message.offset): e for e in events}
            messages = [(e.message.value, _source(e)) for e in unique.values()]
            try:
                await handle_chunks(messages, transcribe, emitter, attempts)
            except Exception:
                _exit_for_redelivery(messages[0][1])

    @app.agent(topic(topics.chunk_results), concurrency=1)
    async def stitch_results(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            source = _source(event)
            try:
                await handle_result(event.message.value, source, stitch, emitter, stitch_store)
            except Exception:
                _exit_for_redelivery(source)

    return app
