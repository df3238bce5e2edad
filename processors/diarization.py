"""Who spoke when: speech cut into short windows, a voice embedding per window, windows clustered into speakers.

Pure functions over audio and embeddings, so the same code serves a file decoded whole and a job transcribed in
chunks on several workers: the embeddings of every window are what must come together, and clustering them all
at once, per job, is what keeps speaker "A" the same voice at minute 1 and minute 90.

- `speech_windows`: 1.5 s windows every 0.75 s over the speech VAD found (a shorter stretch is one window).
- `cluster`: agglomerative clustering, average linkage on cosine similarity, merging while the closest two
  clusters are more alike than `threshold`, within `min_speakers`/`max_speakers` when given; clusters of fewer
  than `min_windows` windows then join the nearest larger one. The defaults (0.65, 4) come from a sweep on the
  benchmark's recordings (benchmarks/RESULTS.md): at 0.6 to 0.65 the error was lowest, above 0.7 voices split.
- `speaker_turns`: each window's share of the timeline goes to its cluster; runs of one speaker become turns.
- `assign_speakers`: each word to the turn it overlaps most, or the nearest turn where it overlaps none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from processors.audio import SAMPLE_RATE
from processors.speech import Region

WINDOW_S = 1.5
STEP_S = 0.75
DEFAULT_THRESHOLD = 0.65
MIN_WINDOWS = 4  # 3 s of speech: less is rarely a speaker of its own


@dataclass(frozen=True)
class SpeakerTurn:
    start: float
    end: float
    speaker: int
    """Cluster number, in order of first appearance (0 speaks first)."""


def speech_windows(
    regions: Sequence[Region], *, window_s: float = WINDOW_S, step_s: float = STEP_S
) -> list[tuple[int, int]]:
    """(start, end) samples of the windows to embed, covering every region's voiced part."""
    window, step = int(window_s * SAMPLE_RATE), int(step_s * SAMPLE_RATE)
    out: list[tuple[int, int]] = []
    for region in regions:
        start, end = region.voiced
        if end - start <= window:
            out.append((start, end))
            continue
        at = start
        while at + window < end:
            out.append((at, at + window))
            at += step
        out.append((max(start, end - window), end))
    return out


def cluster(
    embeddings: npt.NDArray[np.float32],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    min_windows: int = MIN_WINDOWS,
) -> npt.NDArray[np.int64]:
    """A cluster number per row of L2-normalised `embeddings`, numbered by first appearance."""
    count = embeddings.shape[0]
    if count == 0:
        return np.zeros(0, np.int64)
    lowest = max(1, min_speakers or 1)
    highest = max(lowest, max_speakers or count)
    similarity = (embeddings @ embeddings.T).astype(np.float64)
    np.fill_diagonal(similarity, -np.inf)
    sizes = np.ones(count)
    active = np.ones(count, bool)
    members: list[list[int]] = [[n] for n in range(count)]
    clusters = count
    while clusters > lowest:
        masked = np.where(active[:, None] & active[None, :], similarity, -np.inf)
        a, b = np.unravel_index(int(np.argmax(masked)), masked.shape)
        if masked[a, b] < threshold and clusters <= highest:
            break
        # Average linkage (Lance-Williams): the merged cluster's similarity to each other one.
        merged = (sizes[a] * similarity[a] + sizes[b] * similarity[b]) / (sizes[a] + sizes[b])
        similarity[a, :] = merged
        similarity[:, a] = merged
        similarity[a, a] = -np.inf
        similarity[b, :] = -np.inf
        similarity[:, b] = -np.inf
        sizes[a] += sizes[b]
        active[b] = False
        members[a] += members[b]
        members[b] = []
        clusters -= 1
    # A cluster of a few windows is rarely a speaker of its own: a cough, a laugh, a voice raised for a word.
    # Its windows go to the nearest cluster that is a speaker, when there is one.
    groups = [m for m in members if m]
    kept = [m for m in groups if len(m) >= min_windows] or groups
    if len(kept) < len(groups):
        centres = np.stack([embeddings[m].mean(axis=0) for m in kept])
        for small in (m for m in groups if len(m) < min_windows):
            for row in small:
                kept[int(np.argmax(centres @ embeddings[row]))].append(row)
        groups = kept
    labels = np.zeros(count, np.int64)
    ordered = sorted((min(m), m) for m in groups)
    for number, (_first, rows) in enumerate(ordered):
        labels[rows] = number
    return labels


def speaker_turns(windows: Sequence[tuple[int, int]], labels: npt.NDArray[np.int64]) -> list[SpeakerTurn]:
    """Turns from labelled windows: where windows overlap, the boundary is halfway between their centres."""
    turns: list[SpeakerTurn] = []
    for n, ((start, end), label) in enumerate(zip(windows, labels, strict=True)):
        lo, hi = start / SAMPLE_RATE, end / SAMPLE_RATE
        if n > 0 and windows[n - 1][1] > start:
            previous = windows[n - 1]
            lo = ((previous[0] + previous[1]) / 2 + (start + end) / 2) / 2 / SAMPLE_RATE
        if n + 1 < len(windows) and windows[n + 1][0] < end:
            following = windows[n + 1]
            hi = ((start + end) / 2 + (following[0] + following[1]) / 2) / 2 / SAMPLE_RATE
        speaker = int(label)
        if turns and turns[-1].speaker == speaker and lo - turns[-1].end < 0.5:
            turns[-1] = SpeakerTurn(turns[-1].start, max(turns[-1].end, hi), speaker)
        else:
            turns.append(SpeakerTurn(lo, hi, speaker))
    return turns


def assign_speakers(spans: Sequence[tuple[float, float]], turns: Sequence[SpeakerTurn]) -> list[int | None]:
    """For each (start, end) span (a word), the speaker of the turn it overlaps most; the nearest turn where it
    overlaps none; None when there are no turns."""
    if not turns:
        return [None] * len(spans)
    starts = np.array([t.start for t in turns])
    ends = np.array([t.end for t in turns])
    out: list[int | None] = []
    for lo, hi in spans:
        overlap = np.minimum(ends, hi) - np.maximum(starts, lo)
        best = int(np.argmax(overlap))
        if overlap[best] <= 0:
            distance = np.maximum(starts - hi, lo - ends)
            best = int(np.argmin(distance))
        out.append(turns[best].speaker)
    return out


def speaker_name(number: int) -> str:
    """OpenAI's labels: "A", "B", … "Z", then "AA", "AB", …"""
    name = ""
    number += 1
    while number:
        number, rest = divmod(number - 1, 26)
        name = chr(ord("A") + rest) + name
    return name
