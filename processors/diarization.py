"""Who spoke when: speech cut into short windows, a voice embedding per window, windows clustered into speakers.

Pure functions over audio and embeddings, so the same code serves a file decoded whole and a job transcribed in
chunks on several workers: the embeddings of every window are what must come together, and clustering them all
at once, per job, is what keeps speaker "A" the same voice at minute 1 and minute 90.

- `speech_windows`: 1.5 s windows every 0.75 s over the speech VAD found (a shorter stretch is one window);
  `chunk_windows`: those of the speech a chunk owns, with their audio cut from the chunk's packed samples.
- `cluster`: agglomerative clustering, average linkage on cosine similarity, merging while the closest two
  clusters are more alike than `threshold`, within `min_speakers`/`max_speakers` when given; clusters of fewer
  than `min_windows` windows then join the nearest larger one. Both depend on the voice model
  (`processors.voices.CALIBRATIONS`, from sweeps on the benchmark's recordings).
- `speaker_turns`: each window's share of the timeline goes to its cluster; runs of one speaker become turns.
- `assign_speakers`: each word to the turn it overlaps most, or the nearest turn where it overlaps none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from processors.audio import SAMPLE_RATE
from processors.recovery import clip
from processors.timeline import PackedTimeline

WINDOW_S = 1.5
STEP_S = 0.75
MIN_WINDOWS = 4


@dataclass(frozen=True)
class VoiceTurn:
    start: float
    end: float
    speaker: int
    """Cluster number, in order of first appearance (0 speaks first)."""


def speech_windows(
    spans: Sequence[tuple[float, float]], *, window_s: float = WINDOW_S, step_s: float = STEP_S
) -> list[tuple[float, float]]:
    """(start, end) seconds of the windows to embed, covering every span of speech (a shorter span is one window)."""
    out: list[tuple[float, float]] = []
    for start, end in spans:
        if end - start <= window_s:
            out.append((start, end))
            continue
        at = start
        while at + window_s < end:
            out.append((round(at, 3), round(at + window_s, 3)))
            at += step_s
        out.append((round(max(start, end - window_s), 3), end))
    return out


def chunk_windows(
    audio: npt.NDArray[np.float32], spans: Sequence[tuple[float, float]], start: float, end: float
) -> tuple[list[tuple[float, float]], list[npt.NDArray[np.float32]]]:
    """The windows over the speech of a chunk's packed `audio` (its `spans` back to back) between `start` and `end`
    seconds of the recording, and each window's samples."""
    timeline = PackedTimeline(spans)
    windows = speech_windows(clip(timeline.spans, start, end))
    stretches = []
    for lo, hi in windows:
        at = round(timeline.to_packed(lo) * SAMPLE_RATE)
        stretches.append(audio[at : at + round((hi - lo) * SAMPLE_RATE)])
    return windows, stretches


def cluster(
    embeddings: npt.NDArray[np.float32],
    *,
    threshold: float,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    min_windows: int = MIN_WINDOWS,
) -> npt.NDArray[np.int64]:
    """A cluster number per row of L2-normalised `embeddings`, numbered by first appearance."""
    from scipy.cluster.hierarchy import fcluster, linkage  # deferred: scipy's import is slow

    count = embeddings.shape[0]
    if count < 2:
        return np.zeros(count, np.int64)
    lowest = min(count, max(1, min_speakers or 1))
    highest = max(lowest, min(count, max_speakers or count))
    # scipy's average linkage (nearest-neighbour chain, O(n²)) on cosine distance: merging while the distance is
    # under 1 - threshold is merging while the average similarity is above the threshold.
    rows = embeddings.astype(np.float64)
    rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    distances = np.clip(1.0 - rows @ rows.T, 0.0, 2.0)[np.triu_indices(count, 1)]
    tree = linkage(distances, method="average")
    wanted = count - int(np.sum(tree[:, 2] <= 1.0 - threshold))
    wanted = min(highest, max(lowest, wanted))
    raw = fcluster(tree, wanted, criterion="maxclust")
    groups = [list(np.flatnonzero(raw == label)) for label in np.unique(raw)]
    # A cluster of a few windows is rarely a speaker of its own: a cough, a laugh, a voice raised for a word.
    # Its windows go to the nearest cluster that is a speaker (when any is), unless that would leave fewer than
    # `min_speakers`.
    kept = [m for m in groups if len(m) >= min_windows] or groups
    if len(kept) < lowest:
        kept = sorted(groups, key=len, reverse=True)[:lowest]
    if len(kept) < len(groups):
        centres = np.stack([rows[m].mean(axis=0) for m in kept])
        chosen = {id(m) for m in kept}
        for small in (m for m in groups if id(m) not in chosen):
            for row in small:
                kept[int(np.argmax(centres @ rows[row]))].append(row)
        groups = kept
    labels = np.zeros(count, np.int64)
    for number, (_first, members) in enumerate(sorted((min(m), m) for m in groups)):
        labels[members] = number
    return labels


def speaker_turns(windows: Sequence[tuple[float, float]], labels: npt.NDArray[np.int64]) -> list[VoiceTurn]:
    """Turns from labelled windows ((start, end) seconds, in time order): where windows overlap, the boundary is
    halfway between their centres."""
    turns: list[VoiceTurn] = []
    for n, ((start, end), label) in enumerate(zip(windows, labels, strict=True)):
        lo, hi = start, end
        if n > 0 and windows[n - 1][1] > start:
            previous = windows[n - 1]
            lo = ((previous[0] + previous[1]) / 2 + (start + end) / 2) / 2
        if n + 1 < len(windows) and windows[n + 1][0] < end:
            following = windows[n + 1]
            hi = ((start + end) / 2 + (following[0] + following[1]) / 2) / 2
        speaker = int(label)
        if turns and turns[-1].speaker == speaker and lo - turns[-1].end < 0.5:
            turns[-1] = VoiceTurn(turns[-1].start, max(turns[-1].end, hi), speaker)
        else:
            turns.append(VoiceTurn(lo, hi, speaker))
    return turns


def assign_speakers(spans: Sequence[tuple[float, float]], turns: Sequence[VoiceTurn]) -> list[int | None]:
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
