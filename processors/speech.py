"""Where the speech is, and bringing it to one level: Silero VAD (shipped with faster-whisper) and a gain per region.

Two things measured on long recordings shape this module. Silero's recurrent state, carried across a long file,
goes deaf for seconds after some changes of voice or room (a 26 s recording that VAD finds whole on its own loses
half of its speech inside a long file), so every long stretch VAD calls silence is listened to again with a fresh
state. And Whisper's log-mel features keep only 80 dB below the loudest sound of a window, so a quiet speaker next
to a loud one reads as silence; each speech region is therefore brought to a common level before decoding.
A long recording is heard in fixed pieces, each with a fresh state warmed up on the audio before it, so that the
pieces can run on several cores; the recheck is still needed (a piece's state goes deaf too).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from processors.audio import SAMPLE_RATE

FRAME = 512  # samples per Silero VAD decision: 32 ms at 16 kHz
_SPLIT_SILENCE = int(0.098 * SAMPLE_RATE)  # a region over the maximum is split at a silence at least this long
# Pieces of a long recording for VAD, and the audio before each that warms its fresh state up (its frames are
# dropped). The split's VAD of the 11.5-minute benchmark recording took 1.22 s instead of 1.46 s on 2 cores; a GPU
# worker has more cores for it, and a single long job there waited on this step. About 2 % of frames fall on the
# other side of the threshold, and the service's WER moved within its spread: 11.90 against 12.66 % on that
# recording's samples, 13.04 against 12.28 % on the same recording as its FLAC file decodes, 6.90 against 6.80 %
# on the twelve English recordings three times over (other piece sizes: 11.71 to 12.41 and 6.71 to 7.69 %).
PIECE_FRAMES = 1875  # 60 s
WARMUP_FRAMES = 125  # 4 s


@dataclass(frozen=True)
class SpeechOptions:
    threshold: float = 0.5
    """Frames with a speech probability at or above this start speech."""
    min_silence_s: float = 0.16
    """A silence shorter than this does not end a region."""
    max_region_s: float = 28.0
    """Longer regions are split, at a short silence where there is one, else inside the speech."""
    pad_s: float = 0.4
    """Regions are widened by this much on each side (shared halfway where two regions are closer)."""
    recheck_gap_s: float = 1.0
    """Non-speech stretches at least this long are run through VAD again with a fresh state."""
    threads: int = 1
    """The pieces of a long recording are heard on this many threads; the result is the same for any number."""


@dataclass(frozen=True)
class Region:
    """Speech from `start` to `end` (samples), padding included."""

    start: int
    end: int
    split_in_speech: bool = False
    """The region ends where a longer one was cut with no silence to cut at: the next one continues the speech."""
    voice: tuple[int, int] | None = None
    """Where VAD heard speech, before padding; the silence between two regions is measured between these."""

    @property
    def voiced(self) -> tuple[int, int]:
        return self.voice or (self.start, self.end)


def speech_probabilities(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """One probability per 32 ms frame, from a fresh VAD state."""
    from faster_whisper.vad import get_vad_model  # deferred: loads the ONNX model once per process

    # Always a copy: faster-whisper's `SileroVADModel` zeroes the last 64 samples of the array it is given (its
    # frame context is built in place), which silenced 4 ms of a live session's buffer at every VAD pass and of a
    # recording at the end of every stretch VAD heard again, before the same audio was decoded.
    padded = np.pad(audio, (0, (-audio.size) % FRAME))
    if padded.size == 0:
        return np.zeros(0, np.float32)
    probs: npt.NDArray[np.float32] = np.asarray(get_vad_model()(padded), np.float32).reshape(-1)
    return probs


def piecewise_probabilities(audio: npt.NDArray[np.float32], threads: int = 1) -> npt.NDArray[np.float32]:
    """`speech_probabilities` of `PIECE_FRAMES` pieces, each heard after `WARMUP_FRAMES` of the audio before it.

    The pieces are fixed by the recording alone, so the thread count changes only the time (the VAD session runs
    each call on one thread, and releases the GIL while it does)."""
    piece, warmup = PIECE_FRAMES * FRAME, WARMUP_FRAMES * FRAME
    if audio.size <= piece:
        return speech_probabilities(audio)

    def hear(start: int) -> npt.NDArray[np.float32]:
        since = max(0, start - warmup)
        return speech_probabilities(audio[since : start + piece])[(start - since) // FRAME :]

    starts = range(0, audio.size, piece)
    if threads <= 1:
        return np.concatenate([hear(start) for start in starts])
    with ThreadPoolExecutor(min(threads, len(starts)), thread_name_prefix="vad") as pool:
        return np.concatenate(list(pool.map(hear, starts)))


def regions_from_probabilities(probs: npt.NDArray[np.float32], length: int, options: SpeechOptions) -> list[Region]:
    """Silero's own segmentation (as faster-whisper's `get_speech_timestamps`), keeping where it had to split."""
    threshold = options.threshold
    negative = max(threshold - 0.15, 0.01)
    pad = int(options.pad_s * SAMPLE_RATE)
    min_silence = options.min_silence_s * SAMPLE_RATE
    max_speech = options.max_region_s * SAMPLE_RATE - FRAME - 2 * pad
    raw: list[tuple[int, int, bool]] = []
    triggered = False
    start = temp_end = prev_end = next_start = 0
    for i, p in enumerate(probs):
        position = i * FRAME
        if p >= threshold and temp_end:
            temp_end = 0
            if next_start < prev_end:
                next_start = position
        if p >= threshold and not triggered:
            triggered, start = True, position
            continue
        if triggered and position - start > max_speech:
            if prev_end:
                raw.append((start, prev_end, False))
                if next_start < prev_end:
                    triggered = False
                else:
                    start = next_start
                prev_end = next_start = temp_end = 0
            else:
                raw.append((start, position, True))
                prev_end = next_start = temp_end = 0
                triggered = False
                continue
        if p < negative and triggered:
            if not temp_end:
                temp_end = position
            if position - temp_end > _SPLIT_SILENCE:
                prev_end = temp_end
            if position - temp_end < min_silence:
                continue
            raw.append((start, temp_end, False))
            prev_end = next_start = temp_end = 0
            triggered = False
    if triggered and length > start:
        raw.append((start, length, False))
    return _pad(raw, length, pad)


def _pad(raw: list[tuple[int, int, bool]], length: int, pad: int) -> list[Region]:
    bounds = [[start, end] for start, end, _ in raw]
    for i, bound in enumerate(bounds):
        if i == 0:
            bound[0] = max(0, bound[0] - pad)
        if i + 1 < len(bounds):
            following = bounds[i + 1]
            silence = following[0] - bound[1]
            if silence < 2 * pad:
                bound[1] += silence // 2
                following[0] = max(0, following[0] - silence // 2)
            else:
                bound[1] = min(length, bound[1] + pad)
                following[0] = max(0, following[0] - pad)
        else:
            bound[1] = min(length, bound[1] + pad)
    return [Region(s, e, forced, (vs, ve)) for (s, e), (vs, ve, forced) in zip(bounds, raw, strict=True) if e > s]


def find_speech(audio: npt.NDArray[np.float32], options: SpeechOptions | None = None) -> list[Region]:
    """Speech regions of the whole recording, in order, non-overlapping; long silences are checked twice."""
    options = options or SpeechOptions()
    regions = regions_from_probabilities(piecewise_probabilities(audio, options.threads), audio.size, options)
    recheck = int(options.recheck_gap_s * SAMPLE_RATE)
    found: list[Region] = []
    for start, end in _gaps(regions, audio.size):
        if end - start >= recheck:
            gap = audio[start:end]
            found += [
                Region(r.start + start, r.end + start, r.split_in_speech, (r.voiced[0] + start, r.voiced[1] + start))
                for r in regions_from_probabilities(piecewise_probabilities(gap, options.threads), gap.size, options)
            ]
    return sorted(regions + found, key=lambda r: r.start)


def _gaps(regions: Sequence[Region], length: int) -> list[tuple[int, int]]:
    edges = [0, *(x for r in regions for x in (r.start, r.end)), length]
    return [(edges[i], edges[i + 1]) for i in range(0, len(edges), 2) if edges[i + 1] > edges[i]]


def level_speech(
    audio: npt.NDArray[np.float32],
    regions: Sequence[Region],
    *,
    target_dbfs: float = -20.0,
    max_gain_db: float = 50.0,
) -> npt.NDArray[np.float32]:
    """A copy with each region at `target_dbfs` of active speech level; the gain ramps across the gaps between."""
    out = np.array(audio, dtype=np.float32, copy=True)
    if not regions:
        return out
    gains = [_gain(audio[r.start : r.end], target_dbfs, max_gain_db) for r in regions]
    out[: regions[0].start] *= gains[0]
    out[regions[-1].end :] *= gains[-1]
    seams: list[tuple[int, float, float]] = []
    for i, region in enumerate(regions):
        out[region.start : region.end] *= gains[i]
        if i + 1 < len(regions):
            following = regions[i + 1]
            if following.start > region.end:
                gap = following.start - region.end
                out[region.end : following.start] *= np.linspace(gains[i], gains[i + 1], gap, endpoint=False)
            else:
                seams.append((region.end, gains[i], gains[i + 1]))
    fade = 80  # samples each side of a seam between touching regions: a step in gain would click
    for at, before, after in seams:
        lo, hi = max(0, at - fade), min(audio.size, at + fade)
        out[lo:hi] = audio[lo:hi] * np.linspace(before, after, hi - lo, dtype=np.float32)
    np.clip(out, -1.0, 1.0, out=out)
    return out


def _gain(samples: npt.NDArray[np.float32], target_dbfs: float, max_gain_db: float) -> float:
    """Gain that brings the active level (the louder half of 20 ms frames) to the target, within limits."""
    frame = SAMPLE_RATE // 50
    usable = samples[: samples.size - samples.size % frame] if samples.size >= frame else samples
    if usable.size == 0:
        return 1.0
    power = np.mean(usable.reshape(-1, min(frame, usable.size)).astype(np.float64) ** 2, axis=1)
    loud = np.sort(power)[power.size // 2 :]
    level = float(np.mean(loud))
    if level <= 1e-12:
        return 1.0
    gain_db = min(target_dbfs - 10 * np.log10(level), max_gain_db)
    peak = float(np.percentile(np.abs(usable), 99.9))
    if peak > 0:
        gain_db = min(gain_db, 20 * np.log10(0.99 / peak) + 6.0)  # allow the top 0.1% to clip by up to 6 dB
    return float(10 ** (max(gain_db, -30.0) / 20))
