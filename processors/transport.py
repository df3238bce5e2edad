"""What the agents' steps need from Kafka, as plain interfaces: where an event came from, and where results go.

The steps are transport-free, so tests drive them directly with a recording emitter; `processors.app` implements
these over Kafka.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from pydantic import TypeAdapter, ValidationError

from schemas import (
    ChunkFailed,
    ChunkRequested,
    ChunkTranscribed,
    DeadLetter,
    JobStatusChanged,
    SegmentTranscribed,
    describe_invalid,
)
from schemas.live import LiveEvent
from schemas.postprocess import PostprocessRequested

log = logging.getLogger(__name__)

T = TypeVar("T")


class Emitter(Protocol):
    """Where results go; each call returns once every event it was given is durably written."""

    async def status(self, event: JobStatusChanged) -> None: ...

    async def segments(self, events: Sequence[SegmentTranscribed]) -> None: ...

    async def dead_letter(self, event: DeadLetter) -> None: ...

    async def chunks(self, events: Sequence[tuple[ChunkRequested, int]], *, priority: bool = False) -> None:
        """Each chunk event to its partition of the chunks topic (`priority`: of the short recordings' one)."""

    async def chunk_results(self, events: Sequence[ChunkTranscribed | ChunkFailed]) -> None: ...

    async def live(self, events: Sequence[LiveEvent]) -> None:
        """What live sessions' clients must hear, in order per session."""

    async def postprocess(self, event: PostprocessRequested) -> None:
        """A finished transcript for the language-model steps."""


@dataclass(frozen=True)
class Source:
    topic: str
    partition: int
    offset: int
    key: bytes | None


async def parse(raw: bytes | None, source: Source, shape: TypeAdapter[T], emitter: Emitter, *, name: str) -> T | None:
    """The event, or None after sending it to the dead-letter topic with the reason it does not parse."""
    try:
        if not raw:
            raise ValueError("empty message value")
        return shape.validate_json(raw)
    except (ValidationError, ValueError) as e:
        reason = describe_invalid(e, name)
        log.warning("event at %s[%d]@%d is malformed: %s", source.topic, source.partition, source.offset, reason)
        key = source.key.decode("utf-8", "replace") if source.key else None
        await emitter.dead_letter(
            DeadLetter(
                job_id=key,
                source_topic=source.topic,
                source_partition=source.partition,
                source_offset=source.offset,
                key=key,
                payload=(raw or b"").decode("utf-8", "replace"),
                reason=reason,
            )
        )
        return None
