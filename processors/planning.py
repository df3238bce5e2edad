"""Planning the chunks of a recording: a pure function from speech regions to chunks of at most one window.

A chunk is a run of consecutive speech regions whose speech adds up to at most the target length; silence between
regions is left out of its audio, as faster-whisper's batched pipeline does. Cuts fall between regions, so in
silence, except where speech ran on longer than a region may be: there the cut is inside speech, and the chunks on
both sides also carry `overlap` samples of the other's speech as context, which the stitcher resolves.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from processors.speech import Region

KEEP = 2 / 3


@dataclass(frozen=True)
class PlannedChunk:
    index: int
    owned: tuple[int, int]
    """Samples this chunk answers for; the owned spans of all chunks tile the recording."""
    spans: tuple[tuple[int, int], ...]
    """Samples of the recording that make up the chunk's audio, in order, context included."""
    cut_in_speech: bool
    """The cut at the start of `owned` is inside speech, so the previous chunk heard the overlap too."""

    @property
    def audio_samples(self) -> int:
        return sum(end - start for start, end in self.spans)


def plan_chunks(
    regions: Sequence[Region], length: int, *, target: int, overlap: int, join_gap: int = 0
) -> list[PlannedChunk]:
    """Chunks of at most `target` samples of speech plus `overlap` of context at each cut inside speech.

    Gaps shorter than `join_gap` between regions of one chunk stay in its audio (and count towards its length):
    VAD's short silences inside speech often hold quiet syllables. No speech, no chunks. Regions may come in any
    order, overlap or run past the end; they are tidied first.
    """
    if target <= 0 or overlap < 0:
        raise ValueError("target must be positive and overlap not negative")
    pieces = _pieces(regions, length, target)
    groups = _group(pieces, target, join_gap)
    cuts = [_cut(group[-1], following[0]) for group, following in itertools.pairwise(groups)]
    chunks = []
    for index, group in enumerate(groups):
        start, in_speech = (0, False) if index == 0 else cuts[index - 1]
        end, end_in_speech = (length, False) if index == len(groups) - 1 else cuts[index]
        spans = [(p.start, p.end) for p in group]
        if in_speech:
            spans = _within(groups[index - 1], start - overlap, start) + spans
        if end_in_speech:
            spans = spans + _within(groups[index + 1], end, end + overlap)
        chunks.append(PlannedChunk(index, (start, end), _joined(spans, join_gap), in_speech))
    return chunks


def _pieces(regions: Sequence[Region], length: int, target: int) -> list[Region]:
    tidy: list[Region] = []
    for region in sorted(regions, key=lambda r: (r.start, r.end)):
        start, end = max(0, region.start), min(length, region.end)
        if end <= start:
            continue
        if tidy and start < tidy[-1].end:
            last = tidy.pop()
            end = max(end, last.end)
            later = region if end == region.end else last
            voice = (min(last.voiced[0], region.voiced[0]), max(last.voiced[1], region.voiced[1]))
            tidy.append(Region(last.start, end, later.split_in_speech, voice))
        else:
            tidy.append(Region(start, end, region.split_in_speech, region.voice))
    pieces = []
    for region in tidy:
        parts = -(-(region.end - region.start) // target)
        size = -(-(region.end - region.start) // parts)
        for n in range(parts):
            start = region.start + n * size
            end = min(region.end, start + size)
            final = n == parts - 1
            voice_start = min(max(start, region.voiced[0]), end)
            voice = (voice_start, max(voice_start, min(end, region.voiced[1])))
            pieces.append(Region(start, end, region.split_in_speech if final else True, voice))
    return pieces


def _group(pieces: list[Region], target: int, join_gap: int) -> list[list[Region]]:
    """Greedy up to the target, then back to the longest silence among the last third of the chunk.

    A window that starts in the middle of a sentence tempts Whisper to skip to the next one, so a cut between
    sentences (a long pause) is worth a slightly shorter chunk; a cut inside speech is the last resort.
    """
    groups: list[list[Region]] = []
    current: list[Region] = []
    for piece in pieces:
        while current and _packed([*current, piece], join_gap) > target:
            candidates = [k for k in range(len(current)) if _packed(current[: k + 1], join_gap) >= target * KEEP]
            following = [*current[1:], piece]
            best = max(candidates or [len(current) - 1], key=lambda k: (_silence(current[k], following[k]), k))
            groups.append(current[: best + 1])
            current = current[best + 1 :]
        current.append(piece)
    if current:
        groups.append(current)
    return groups


def _silence(before: Region, after: Region) -> int:
    if before.split_in_speech and after.start <= before.end:
        return -1
    return after.voiced[0] - before.voiced[1]


def _packed(pieces: Sequence[Region], join_gap: int) -> int:
    """Samples of audio the pieces make: their speech and the short gaps between them."""
    total = pieces[0].end - pieces[0].start
    for before, piece in itertools.pairwise(pieces):
        gap = piece.start - before.end
        total += piece.end - piece.start + (gap if gap < join_gap else 0)
    return total


def _cut(last: Region, following: Region) -> tuple[int, bool]:
    if last.split_in_speech and following.start <= last.end:
        return last.end, True
    return (last.end + following.start) // 2, False


def _within(pieces: Sequence[Region], lo: int, hi: int) -> list[tuple[int, int]]:
    return [(max(p.start, lo), min(p.end, hi)) for p in pieces if min(p.end, hi) > max(p.start, lo)]


def _joined(spans: list[tuple[int, int]], join_gap: int) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for start, end in spans:
        if out and start - out[-1][1] < max(join_gap, 1):
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return tuple(out)
