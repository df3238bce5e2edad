"""Packed audio and the recording: a chunk's audio is its spans back to back, and times map both ways."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T", int, float)


def within(ordered: Sequence[tuple[T, T]], lo: T, hi: T) -> list[tuple[T, T]]:
    """The parts of `ordered` (spans in order, apart) inside [lo, hi), found by bisection: a long recording's
    speech has thousands of spans and each chunk or turn asks for a few."""
    out = []
    at = max(0, bisect_right(ordered, (lo, hi)) - 1)
    while at < len(ordered) and ordered[at][0] < hi:
        start, end = max(ordered[at][0], lo), min(ordered[at][1], hi)
        if end > start:
            out.append((start, end))
        at += 1
    return out


class PackedTimeline:
    """Maps seconds in a chunk's packed audio to seconds in the recording, and back."""

    def __init__(self, spans: Sequence[tuple[float, float]]) -> None:
        if not spans:
            raise ValueError("a timeline needs at least one span")
        self.spans = [(float(s), float(e)) for s, e in spans]
        self.offsets: list[float] = []
        total = 0.0
        for start, end in self.spans:
            self.offsets.append(total)
            total += end - start
        self.length = total

    def to_recording(self, packed: float) -> float:
        """A time in the packed audio; times at a join belong to the later span."""
        n = max(0, bisect_right(self.offsets, packed) - 1)
        start, end = self.spans[n]
        return min(end, start + max(0.0, packed - self.offsets[n]))

    def to_packed(self, recorded: float) -> float:
        """A time in the recording; times between spans map to the join."""
        starts = [s for s, _ in self.spans]
        n = max(0, bisect_right(starts, recorded) - 1)
        start, end = self.spans[n]
        return self.offsets[n] + min(max(0.0, recorded - start), end - start)
