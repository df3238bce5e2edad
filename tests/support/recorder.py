"""An emitter that keeps what the workers' steps send, for tests that drive the steps without Kafka."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from pydantic import BaseModel

from schemas import ChunkFailed, ChunkRequested, ChunkTranscribed, DeadLetter, JobStatusChanged, SegmentTranscribed
from schemas.live import LiveEvent
from schemas.postprocess import PostprocessRequested

T = TypeVar("T", bound=BaseModel)


class Recorder:
    def __init__(self) -> None:
        self.events: list[BaseModel] = []
        self.chunk_events: list[tuple[ChunkRequested, int]] = []
        self.priority_chunks: list[ChunkRequested] = []
        """The chunk events sent to the short recordings' topic."""

    async def status(self, event: JobStatusChanged) -> None:
        self.events.append(event)

    async def segments(self, events: Sequence[SegmentTranscribed]) -> None:
        self.events.extend(events)

    async def dead_letter(self, event: DeadLetter) -> None:
        self.events.append(event)

    async def chunks(self, events: Sequence[tuple[ChunkRequested, int]], *, priority: bool = False) -> None:
        self.chunk_events.extend(events)
        if priority:
            self.priority_chunks.extend(e for e, _ in events)
        self.events.extend(e for e, _ in events)

    async def chunk_results(self, events: Sequence[ChunkTranscribed | ChunkFailed]) -> None:
        self.events.extend(events)

    async def live(self, events: Sequence[LiveEvent]) -> None:
        self.events.extend(events)

    async def postprocess(self, event: PostprocessRequested) -> None:
        self.events.append(event)

    def of(self, kind: type[T]) -> list[T]:
        return [e for e in self.events if isinstance(e, kind)]
