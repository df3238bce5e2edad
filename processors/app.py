"""The worker's agents, wired to Kafka: what each reads, what it writes, and the tables it keeps.

- split: `transcription.requests.v1` → chunk audio in the store, `transcription.chunks.v1`, `processing`.
- transcribe: `transcription.chunks.v1`, up to `batch.size` events within `batch.window_s` → one batched decode →
  `transcription.chunk-results.v1`; chunk attempts counted in a table (changelog `chunk_attempts`).
- transcribe-priority: the same for `transcription.chunks-priority.v1`, the chunks of short recordings, with the
  priority decoder (its model calls go before the other agent's) and a table of its own.
- stitch: `transcription.chunk-results.v1` → segments, progress and completion, with per-job state in a table
  (changelog `stitch_state`); a job with language-model steps is handed to postprocess instead of completed.
- postprocess: `transcription.postprocess.v1` → the steps over the whole transcript (`processors.polishing`),
  then its segments and completion.
- live: `transcription.live-input.v1` (realtime sessions, keyed by session) → `transcription.live-output.v1`, and
  each completed turn as a segment of the session's job; sessions are held in memory (`processors.live`).

`build_agents()` builds everything from `WorkerSettings` and resources already made; nothing here runs at import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from pydantic import BaseModel

from ingest.publisher import EventPublisher, Record
from processors.live import LiveEngine, LiveResources
from processors.postprocess import PostprocessResources, handle_postprocess
from processors.runtime import Agent, ChangelogTable, Message
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
from schemas.live import LiveEvent
from schemas.postprocess import PostprocessRequested
from schemas.state import HeldSegments, StitchState


class KafkaEmitter:
    """Sends events through the process's producer; each call returns once the broker has all of them."""

    def __init__(self, publisher: EventPublisher, settings: WorkerSettings) -> None:
        self._publisher = publisher
        self._topics = settings.kafka.topics

    async def _send(self, topic: str, events: Sequence[tuple[str | None, BaseModel, int | None]]) -> None:
        await self._publisher.publish_raw(
            [
                Record(topic, key.encode() if key else None, event.model_dump_json().encode(), partition)
                for key, event, partition in events
            ]
        )

    async def status(self, event: JobStatusChanged) -> None:
        await self._send(self._topics.jobs, [(event.job_id, event, None)])

    async def segments(self, events: Sequence[SegmentTranscribed]) -> None:
        await self._send(self._topics.segments, [(e.job_id, e, None) for e in events])

    async def dead_letter(self, event: DeadLetter) -> None:
        await self._send(self._topics.dlq, [(event.job_id, event, None)])

    async def chunks(self, events: Sequence[tuple[ChunkRequested, int]], *, priority: bool = False) -> None:
        topic = self._topics.chunks_priority if priority else self._topics.chunks
        await self._send(topic, [(f"{e.job_id}/{e.index}", e, partition) for e, partition in events])

    async def chunk_results(self, events: Sequence[ChunkTranscribed | ChunkFailed]) -> None:
        # Keyed by job: every result of a job reaches the same stitcher partition, in the order it was sent.
        await self._send(self._topics.chunk_results, [(e.job_id, e, None) for e in events])

    async def live(self, events: Sequence[LiveEvent]) -> None:
        await self._send(self._topics.live_output, [(e.job_id, e, None) for e in events])

    async def postprocess(self, event: PostprocessRequested) -> None:
        await self._send(self._topics.postprocess, [(event.job_id, event, None)])


class _StitchPartition:
    """The stitcher's table as the step sees it, for one event: state under the job id, parked results under
    `job id#index`, a diarized job's held segments under `job id#held#index`, all in the partition of the event
    being stitched."""

    def __init__(self, table: ChangelogTable, partition: int) -> None:
        self._table = table
        self._partition = partition

    def load(self, job_id: str) -> StitchState | None:
        raw = self._table.get(self._partition, job_id.encode())
        return StitchState.model_validate_json(raw) if raw else None

    def parked(self, job_id: str, index: int) -> ChunkTranscribed | None:
        raw = self._table.get(self._partition, f"{job_id}#{index}".encode())
        return ChunkTranscribed.model_validate_json(raw) if raw else None

    def save(self, state: StitchState) -> None:
        self._table.set(self._partition, state.job_id.encode(), state.model_dump_json().encode())

    def park(self, result: ChunkTranscribed) -> None:
        self._table.set(self._partition, f"{result.job_id}#{result.index}".encode(), result.model_dump_json().encode())

    def unpark(self, job_id: str, index: int) -> None:
        self._table.set(self._partition, f"{job_id}#{index}".encode(), None)

    def held(self, job_id: str, index: int) -> HeldSegments | None:
        raw = self._table.get(self._partition, f"{job_id}#held#{index}".encode())
        return HeldSegments.model_validate_json(raw) if raw else None

    def hold(self, held: HeldSegments) -> None:
        key = f"{held.job_id}#held#{held.index}".encode()
        self._table.set(self._partition, key, held.model_dump_json().encode())

    def release(self, job_id: str, index: int) -> None:
        self._table.set(self._partition, f"{job_id}#held#{index}".encode(), None)


class _TableAttempts:
    """Attempt counts of chunks in flight, each in the partition of its chunk's event."""

    def __init__(self, table: ChangelogTable) -> None:
        self._table = table

    def get(self, key: str, partition: int) -> int:
        raw = self._table.get(partition, key.encode())
        return int(raw) if raw else 0

    def set(self, key: str, partition: int, count: int) -> None:
        self._table.set(partition, key.encode(), str(count).encode())

    def clear(self, key: str, partition: int) -> None:
        self._table.set(partition, key.encode(), None)

    async def flush(self) -> None:
        await self._table.flush()


def _source(message: Message) -> Source:
    return Source(topic=message.topic, partition=message.partition, offset=message.offset, key=message.key)


def build_agents(
    settings: WorkerSettings,
    *,
    publisher: EventPublisher,
    split: SplitResources,
    transcribe: TranscribeResources,
    stitch: StitchResources,
    postprocess: PostprocessResources,
    live: LiveResources | None = None,
) -> list[Agent]:
    topics = settings.kafka.topics
    bootstrap = settings.kafka.bootstrap_servers
    emitter = KafkaEmitter(publisher, settings)
    stitch_table = ChangelogTable(topic=topics.stitch_state, bootstrap=bootstrap, publisher=publisher)

    def transcribe_agent(name: str, topic: str, changelog: str, resources: TranscribeResources) -> Agent:
        table = ChangelogTable(topic=changelog, bootstrap=bootstrap, publisher=publisher)
        attempts = _TableAttempts(table)

        async def transcribe_chunks(messages: list[Message]) -> None:
            await handle_chunks([(m.value, _source(m)) for m in messages], resources, emitter, attempts)

        window = max(resources.batch_window_s, 0.001)
        return Agent(
            name, topic, transcribe_chunks, batch_size=resources.batch_size, batch_window_s=window, tables=(table,)
        )

    async def split_requests(messages: list[Message]) -> None:
        for message in messages:
            await handle_request(message.value, _source(message), split, emitter)

    async def stitch_results(messages: list[Message]) -> None:
        for message in messages:
            table = _StitchPartition(stitch_table, message.partition)
            await handle_result(message.value, _source(message), stitch, emitter, table)
            # Before the next result of the same job: its state must be durable first.
            await stitch_table.flush()

    async def postprocess_transcripts(messages: list[Message]) -> None:
        for message in messages:
            await handle_postprocess(message.value, _source(message), postprocess, emitter)

    agents = [
        Agent("split", topics.requests, split_requests),
        transcribe_agent("transcribe", topics.chunks, topics.chunk_attempts, transcribe),
        transcribe_agent(
            "transcribe-priority",
            topics.chunks_priority,
            topics.chunk_attempts_priority,
            replace(transcribe, priority=True),
        ),
        Agent(
            "stitch", topics.chunk_results, stitch_results, batch_size=16, batch_window_s=0.05, tables=(stitch_table,)
        ),
        # One transcript at a time: its steps wait on the language model, not on this worker's cores.
        Agent("postprocess", topics.postprocess, postprocess_transcripts, batch_size=1),
    ]
    if live is not None:
        engine = LiveEngine(live, emitter)

        async def live_input(messages: list[Message]) -> None:
            await engine.handle([(m.value, _source(m)) for m in messages])

        # Everything a session sent since the last decode is taken at once; the wait only bounds an idle poll.
        agents.append(Agent("live", topics.live_input, live_input, batch_size=500, batch_window_s=0.01, latest=True))
    return agents
