"""Transcribing chunks: their audio decoded as one batch, times mapped to the recording, skipped speech recovered.

Blocking (the decoder runs the model): the transcribe agent calls `transcribe_chunks` from a worker thread.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from processors.audio import SAMPLE_RATE
from processors.batching import (
    COMPRESSION_RATIO_THRESHOLD,
    BatchDecoder,
    DecodedWord,
    DecodeOptions,
    Window,
    WindowResult,
)
from processors.recovery import RecoveryOptions, clip, uncovered
from processors.stitching import PAIR_TOLERANCE_S, same_word
from processors.timeline import PackedTimeline
from schemas.chunks import ChunkRequested, ChunkTranscribed, ChunkWord, WindowStats


@dataclass
class LoadedChunk:
    request: ChunkRequested
    audio: npt.NDArray[np.float32]
    """The chunk's packed audio, as the split agent stored it."""


@dataclass
class _Retry:
    chunk: int
    stretch: tuple[float, float]
    packed_start: float

    @property
    def key(self) -> tuple[int, float, float]:
        return self.chunk, round(self.stretch[0], 2), round(self.stretch[1], 2)


def transcribe_chunks(
    decoder: BatchDecoder, chunks: Sequence[LoadedChunk], recovery: RecoveryOptions
) -> list[ChunkTranscribed]:
    """One result per chunk, in order: every word its audio produced, in recording time."""
    timelines = [PackedTimeline([(s.start, s.end) for s in c.request.spans]) for c in chunks]
    first = decoder.decode([Window(c.audio, _options(c.request), c.request.options.language) for c in chunks])
    words = [[_word(w, tl.to_recording, 0) for w in result.words] for result, tl in zip(first, timelines, strict=True)]
    stats = [[_stats(result, tl.spans[0][0])] for result, tl in zip(first, timelines, strict=True)]
    recovered = [0] * len(chunks)
    tried: set[tuple[int, float, float]] = set()
    for _round in range(recovery.rounds if recovery.enabled else 0):
        # A stretch decoded on its own can start mid-sentence and skip to the next sentence too: what is still
        # uncovered after one round gets a shorter window of its own in the next.
        retries = [r for r in _retries(chunks, timelines, words, recovery) if r.key not in tried]
        if not retries:
            break
        tried.update(r.key for r in retries)
        windows = []
        for retry in retries:
            chunk = chunks[retry.chunk]
            end = timelines[retry.chunk].to_packed(retry.stretch[1] + recovery.pad_s)
            audio = chunk.audio[int(retry.packed_start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
            # Decoded again hotter only when caught in a loop, not for a low log-probability: a few seconds that
            # score low ran through five sampled decodes of best-of-5 and still came back as the greedy decode
            # (every recovered window on the 11.5-minute recording), which cost about 7 s of a 50 s decode.
            options = replace(_options(chunk.request), retry_unlikely=False)
            windows.append(Window(audio, options, first[retry.chunk].language))
        for retry, result in zip(retries, decoder.decode(windows), strict=True):
            if result.silent or _doubtful(result, recovery):
                continue
            lo, hi = retry.stretch
            convert = _shifted(timelines[retry.chunk], retry.packed_start)
            candidates = [_word(w, convert, len(stats[retry.chunk])) for w in result.words]
            found = [w for w in candidates if lo <= w.middle < hi and not _heard(w, words[retry.chunk])]
            if found:
                stats[retry.chunk].append(_stats(result, lo))
                words[retry.chunk] += found
                recovered[retry.chunk] += 1
    return [
        _result(chunk.request, first[n], _in_order(words[n], recovery.max_word_s), stats[n], recovered[n])
        for n, chunk in enumerate(chunks)
    ]


def _shifted(timeline: PackedTimeline, offset: float) -> Callable[[float], float]:
    return lambda t: timeline.to_recording(offset + t)


def _options(request: ChunkRequested) -> DecodeOptions:
    options = request.options
    return DecodeOptions(task=options.task.value, prompt=options.prompt, temperature=options.temperature)


def _retries(
    chunks: Sequence[LoadedChunk],
    timelines: Sequence[PackedTimeline],
    words: Sequence[Sequence[ChunkWord]],
    recovery: RecoveryOptions,
) -> list[_Retry]:
    retries = []
    for n, chunk in enumerate(chunks):
        owned = chunk.request.owned
        speech = clip(timelines[n].spans, owned.start, owned.end)
        for stretch in uncovered(speech, [(w.start, w.end) for w in words[n]], recovery):
            start = timelines[n].to_packed(max(owned.start, stretch[0] - recovery.pad_s))
            retries.append(_Retry(n, stretch, start))
    return retries


def _doubtful(result: WindowResult, recovery: RecoveryOptions) -> bool:
    """A recovery decode caught in a repetition loop even after the fallback is invented, not heard; so are words
    the model hardly believes (`RecoveryOptions.min_probability`). A low log-probability alone is not enough to
    drop it: the bare engine keeps such text too (and silence, where the model says so, is already dropped)."""
    if result.compression_ratio > COMPRESSION_RATIO_THRESHOLD:
        return True
    if not result.words:
        return False
    return sum(w.probability for w in result.words) / len(result.words) < recovery.min_probability


def _in_order(words: list[_Word], max_word_s: float) -> list[_Word]:
    """The chunk's words in spoken order. A first-pass word timed longer than `max_word_s` was stretched over
    audio its text does not account for (a pause, or a sentence the decode skipped and a retry recovered): it stays
    with the next word of its decode, after any recovered words under it, and starts (or is) where they end."""
    keys: dict[int, float] = {}
    following = math.inf
    for word in reversed([w for w in words if w.window == 0]):
        if word.end - word.start <= max_word_s:
            following = word.middle
        keys[id(word)] = following if math.isfinite(following) else word.middle
    # Stable: first-pass words come first in `words`, in decode order, so a stretched word stays before its next.
    ordered = sorted(words, key=lambda w: keys.get(id(w), w.middle))
    out: list[_Word] = []
    for word in ordered:
        if out and word.window == 0 and word.end - word.start > max_word_s and word.start < out[-1].end:
            word = word.model_copy(update={"start": out[-1].end, "end": max(word.end, out[-1].end)})
        out.append(word)
    return out


def _heard(word: ChunkWord, heard: Sequence[ChunkWord]) -> bool:
    """A recovered word that an earlier decode already has at about the same time is that word decoded again (the
    retry's padding, or a first word timed across the pause before it), not another one."""
    near = PAIR_TOLERANCE_S
    return any(same_word(h.word, word.word) and h.start - near < word.end and word.start < h.end + near for h in heard)


class _Word(ChunkWord):
    @property
    def middle(self) -> float:
        return (self.start + self.end) / 2


def _word(word: DecodedWord, to_recording: Callable[[float], float], window: int) -> _Word:
    start, end = to_recording(word.start), to_recording(word.end)
    return _Word(
        word=word.word,
        start=round(start, 3),
        end=round(max(start, end), 3),
        probability=round(word.probability, 4),
        tokens=list(word.tokens),
        window=window,
    )


def _stats(result: WindowResult, start: float) -> WindowStats:
    return WindowStats(
        seek=round(start * 100),
        avg_logprob=result.avg_logprob,
        no_speech_prob=result.no_speech_prob,
        compression_ratio=result.compression_ratio,
        temperature=result.temperature,
    )


def _result(
    request: ChunkRequested,
    first: WindowResult,
    words: list[_Word],
    stats: list[WindowStats],
    recovered: int,
) -> ChunkTranscribed:
    fixed = request.options.language is not None
    return ChunkTranscribed.model_validate(
        {
            **request.placement(),
            "words": [ChunkWord(**w.model_dump()) for w in words],
            "windows": stats,
            "language": first.language,
            "language_probability": request.language_probability if fixed else first.language_probability,
            "duration": request.duration,
            "word_timestamps": request.options.word_timestamps,
            "recovered_stretches": recovered,
            "diarization": request.options.diarization,
            "postprocess": request.options.postprocess,
        }
    )
