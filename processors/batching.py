"""Decoding many windows as one batch on one model: the engine under the transcribe agent.

Windows of up to 30 s from any jobs are encoded together and decoded with one `generate` call per group of
windows that share a task and prompt, each with its own language token (detected per window when the job did not
fix it). Unlike faster-whisper's `BatchedInferencePipeline`, a window that fails Whisper's quality checks (too
repetitive, too unlikely) is decoded again at the next temperature of the fallback schedule, as sequential Whisper
does, and a window the model calls silent yields no words. Word timings come from faster-whisper's alignment.

Blocking: call from a worker thread. The model is faster-whisper's `WhisperModel`; its batch methods are used as
faster-whisper 1.2 defines them (pinned in pyproject.toml).
"""

from __future__ import annotations

import math
import zlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from processors.audio import SAMPLE_RATE

WINDOW_SECONDS = 30  # Whisper's input: 3000 mel frames
# The encoder's cost grows with its input, and Whisper always pads to 30 s. A short window (a recovered stretch,
# a short clip) is encoded with less padding: measured on the single-speaker English recordings of
# ../shared/audio and espeak-ng sentences, given alone, 15 s inputs kept the WER (11.1 % against 11.4 % at 30 s)
# at two thirds of the time, and on an 11.5-minute recording the service's decode took 20 % less time at the same
# WER. Less than a few seconds of padding after the speech makes the model repeat itself (5 s inputs: 64 % WER).
MIN_INPUT_S = 15
INPUT_TAIL_S = 5
FULL_INPUT_FROM_S = 25
# A window's input length depends on the window alone, never on the other windows of its batch: windows are
# batched by input length, so a chunk decodes the same whichever chunks of other jobs it happens to share a batch
# with (padding a window to a batch-mate's length changed its words). Short windows get their audio and the tail in
# whole seconds, so a short clip pays for no more padding than it needs (with 5 s steps jfk's 11 s took 0.15 s
# longer through the sync endpoint); a window that would need more than 25 s gets Whisper's full 30 s, so the
# chunks of long recordings (cut near 29 s, rarely under 20 s) share one input length and batch together on a GPU.
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
COMPRESSION_RATIO_THRESHOLD = 2.4
LOG_PROB_THRESHOLD = -1.0
NO_SPEECH_THRESHOLD = 0.6
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"


def compression_ratio(text: str) -> float:
    """Whisper's repetition score: UTF-8 length over zlib-compressed length (above 2.4, a loop)."""
    raw = text.encode("utf-8")
    return round(len(raw) / len(zlib.compress(raw)), 4) if raw else 0.0


def input_seconds(samples: int) -> int:
    """The encoder input for a window of `samples`: the audio and `INPUT_TAIL_S` of padding in whole seconds, at
    least `MIN_INPUT_S`; Whisper's 30 s from `FULL_INPUT_FROM_S` on."""
    need = math.ceil(samples / SAMPLE_RATE + INPUT_TAIL_S)
    return WINDOW_SECONDS if need > FULL_INPUT_FROM_S else max(MIN_INPUT_S, need)


def temperatures(requested: float) -> tuple[float, ...]:
    """0 means the whole fallback schedule; any other value starts the schedule there."""
    return tuple(t for t in FALLBACK_TEMPERATURES if t >= requested) or (requested,)


@dataclass(frozen=True)
class DecodeOptions:
    """What the windows of one `generate` call share; the language may differ per window."""

    task: str = "transcribe"
    prompt: str | None = None
    temperature: float = 0.0
    """Start of the fallback schedule."""
    fallback: bool = True
    """False: one decode at `temperature`, whatever its quality (a live session's interim decodes, which only
    count where the next decode agrees)."""
    prefix: str | None = None
    """Text the window's audio begins with, forced as the start of the transcript: only what follows is decoded
    (a live turn after the audio of the turns before it, whose text is known)."""
    retry_unlikely: bool = True
    """False: only a repetition loop is decoded again, not a decode that is merely unlikely (recovered stretches:
    a few seconds of speech that the chunk's decode skipped score low whatever the temperature)."""


@dataclass
class Window:
    audio: npt.NDArray[np.float32]
    """At most 30 s of 16 kHz mono samples."""
    options: DecodeOptions = field(default_factory=DecodeOptions)
    language: str | None = None
    """None: detect it on this window."""


@dataclass(frozen=True)
class DecodedWord:
    word: str
    start: float
    """Seconds from the start of the window."""
    end: float
    probability: float
    tokens: tuple[int, ...]


@dataclass(frozen=True)
class WindowResult:
    words: list[DecodedWord]
    language: str
    language_probability: float
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    temperature: float
    silent: bool
    """The model called the window silence; its words, if any, were dropped."""


@dataclass
class _Decoded:
    tokens: list[int]
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    temperature: float


class BatchDecoder:
    def __init__(
        self,
        model: Any,
        *,
        beam_size: int = 5,
        best_of: int = 5,
        batch_size: int = 8,
        step: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> None:
        self.model = model
        self.beam_size = beam_size
        self.best_of = best_of
        self.batch_size = batch_size
        self._step = step
        """Held around each call into the model (encode, generate, alignment): where another decoder may go first."""

    @property
    def multilingual(self) -> bool:
        return bool(self.model.model.is_multilingual)

    def decode(self, windows: Sequence[Window]) -> list[WindowResult]:
        """Results in the order of `windows`; windows of different tasks, prompts or input lengths go in separate
        batches."""
        results: list[WindowResult | None] = [None] * len(windows)
        groups: defaultdict[tuple[DecodeOptions, int], list[int]] = defaultdict(list)
        for n, window in enumerate(windows):
            groups[(window.options, input_seconds(min(window.audio.size, WINDOW_SECONDS * SAMPLE_RATE)))].append(n)
        for (options, seconds), members in groups.items():
            for at in range(0, len(members), self.batch_size):
                batch = members[at : at + self.batch_size]
                decoded = self._decode([windows[i] for i in batch], options, seconds)
                for n, result in zip(batch, decoded, strict=True):
                    results[n] = result
        return [r for r in results if r is not None]

    def detect_language(self, audio: npt.NDArray[np.float32]) -> tuple[str, float]:
        """The language of the first window of `audio`, with its probability."""
        if not self.multilingual:
            return "en", 1.0
        first = audio[: WINDOW_SECONDS * SAMPLE_RATE]
        features = self._features([first], input_seconds(first.size))
        with self._step():
            return self._languages(self.model.encode(features))[0]

    def _features(self, audios: Sequence[npt.NDArray[np.float32]], seconds: int) -> npt.NDArray[np.float32]:
        """The windows' log-mel features, each padded (or cut) to `seconds`."""
        extract = self.model.feature_extractor
        mels = [extract(audio)[..., :-1] for audio in audios]
        frames = seconds * self.model.frames_per_second
        padded = [np.pad(m[..., :frames], ((0, 0), (0, max(0, frames - m.shape[-1])))) for m in mels]
        return np.stack(padded).astype(np.float32)

    def _languages(self, encoded: Any) -> list[tuple[str, float]]:
        ranked = self.model.model.detect_language(encoded)
        return [(top[0][0][2:-2], round(float(top[0][1]), 4)) for top in ranked]

    def _decode(self, windows: Sequence[Window], options: DecodeOptions, seconds: int) -> list[WindowResult]:
        features = self._features([w.audio for w in windows], seconds)
        with self._step():
            encoded = self.model.encode(features)
        languages: list[tuple[str, float]] = [(w.language, 1.0) if w.language else ("", 0.0) for w in windows]
        if not self.multilingual:
            languages = [("en", 1.0)] * len(windows)
        elif any(not w.language for w in windows):
            with self._step():
                detected = self._languages(encoded)
            languages = [known if known[0] else found for known, found in zip(languages, detected, strict=True)]
        by_language: defaultdict[str, list[int]] = defaultdict(list)
        for n, (language, _p) in enumerate(languages):
            by_language[language].append(n)
        results: list[WindowResult | None] = [None] * len(windows)
        for language, members in by_language.items():
            # One alignment needs one language token; a batch that mixes languages is encoded again per language.
            if len(by_language) == 1:
                sub_encoded = encoded
            else:
                with self._step():
                    sub_encoded = self.model.encode(features[members])
            decoded = self._generate(sub_encoded, features[members], language, options)
            words = self._align(sub_encoded, [windows[i] for i in members], decoded, language, options)
            for i, item, item_words in zip(members, decoded, words, strict=True):
                silent = item.no_speech_prob > NO_SPEECH_THRESHOLD and item.avg_logprob < LOG_PROB_THRESHOLD
                results[i] = WindowResult(
                    words=[] if silent else item_words,
                    language=language,
                    language_probability=languages[i][1],
                    avg_logprob=round(item.avg_logprob, 4),
                    no_speech_prob=round(item.no_speech_prob, 4),
                    compression_ratio=round(item.compression_ratio, 4),
                    temperature=item.temperature,
                    silent=silent,
                )
        return [r for r in results if r is not None]

    def _tokenizer(self, language: str, options: DecodeOptions) -> Any:
        from faster_whisper.tokenizer import Tokenizer

        return Tokenizer(self.model.hf_tokenizer, self.multilingual, task=options.task, language=language)

    def _generate(
        self, encoded: Any, features: npt.NDArray[np.float32], language: str, options: DecodeOptions
    ) -> list[_Decoded]:
        """Whisper's fallback, per window: windows that fail the checks are decoded again, hotter, as a batch."""
        from faster_whisper.transcribe import get_suppressed_tokens

        tokenizer = self._tokenizer(language, options)
        previous = tokenizer.encode(" " + options.prompt.strip()) if options.prompt else []
        # Whisper's prefix goes after the task tokens, as `get_prompt(prefix=...)` puts it.
        forced = _prefix_tokens(tokenizer, options, self.model.max_length)
        prompt = self.model.get_prompt(tokenizer, previous_tokens=previous, without_timestamps=True) + forced
        suppress = get_suppressed_tokens(tokenizer, [-1])
        count = features.shape[0]
        attempts: list[list[_Decoded]] = [[] for _ in range(count)]
        final: list[_Decoded | None] = [None] * count
        pending = list(range(count))
        schedule = temperatures(options.temperature) if options.fallback else (options.temperature,)
        for temperature in schedule:
            if len(pending) == count:
                batch = encoded
            else:
                with self._step():
                    batch = self.model.encode(features[pending])
            if temperature > 0:
                sampling: dict[str, Any] = {
                    "beam_size": 1,
                    "num_hypotheses": self.best_of,
                    "sampling_topk": 0,
                    "sampling_temperature": temperature,
                }
            else:
                sampling = {"beam_size": self.beam_size, "patience": 1.0}
            with self._step():
                outputs = self.model.model.generate(
                    batch,
                    [list(prompt) for _ in pending],
                    length_penalty=1.0,
                    repetition_penalty=1.0,
                    no_repeat_ngram_size=0,
                    max_length=self.model.max_length,
                    return_scores=True,
                    return_no_speech_prob=True,
                    suppress_blank=True,
                    suppress_tokens=suppress,
                    **sampling,
                )
            still = []
            for n, output in zip(pending, outputs, strict=True):
                tokens = list(output.sequences_ids[0])
                if forced and tokens[: len(forced)] == forced:
                    tokens = tokens[len(forced) :]  # CTranslate2 returns the forced prefix with what follows
                avg_logprob = output.scores[0] * len(tokens) / (len(tokens) + 1)
                item = _Decoded(
                    tokens=tokens,
                    avg_logprob=float(avg_logprob),
                    no_speech_prob=float(output.no_speech_prob),
                    compression_ratio=compression_ratio(tokenizer.decode(tokens).strip()),
                    temperature=temperature,
                )
                attempts[n].append(item)
                unlikely = options.retry_unlikely and item.avg_logprob < LOG_PROB_THRESHOLD
                failed = item.compression_ratio > COMPRESSION_RATIO_THRESHOLD or unlikely
                silence = item.no_speech_prob > NO_SPEECH_THRESHOLD and item.avg_logprob < LOG_PROB_THRESHOLD
                if failed and not silence:
                    still.append(n)
                else:
                    final[n] = item
            pending = still
            if not pending:
                break
        for n in pending:
            # Every temperature failed: the likeliest decode that is not a repetition loop, as Whisper picks.
            tried = attempts[n]
            usable = [a for a in tried if a.compression_ratio <= COMPRESSION_RATIO_THRESHOLD] or tried
            final[n] = max(usable, key=lambda a: a.avg_logprob)
        return [item for item in final if item is not None]

    def _align(
        self,
        encoded: Any,
        windows: Sequence[Window],
        decoded: Sequence[_Decoded],
        language: str,
        options: DecodeOptions,
    ) -> list[list[DecodedWord]]:
        tokenizer = self._tokenizer(language, options)
        prefix = _prefix_tokens(tokenizer, options, self.model.max_length)
        fps = self.model.frames_per_second
        segments = []
        sizes = []
        offsets = []
        offset = 0  # windows sit one after another on a virtual timeline, as in faster-whisper's batched pipeline
        for window, item in zip(windows, decoded, strict=True):
            duration = window.audio.size / SAMPLE_RATE
            size = int(math.ceil(duration) * fps)
            start = offset / fps
            segment = [{"seek": offset, "start": start, "end": start + duration, "tokens": item.tokens}]
            if prefix:
                # Aligned with the rest (the audio holds both), but its words are the prefix's: a part of its own.
                segment.insert(0, {**segment[0], "tokens": prefix})
            segments.append(segment)
            sizes.append(size)
            offsets.append(start)
            offset += size
        with self._step():
            self.model.add_word_timestamps(
                segments, tokenizer, encoded, sizes, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS, 0.0
            )
        out = []
        for window, segment, start in zip(windows, segments, offsets, strict=True):
            limit = window.audio.size / SAMPLE_RATE
            out.append(
                [
                    DecodedWord(
                        word=w["word"],
                        start=min(max(0.0, w["start"] - start), limit),
                        end=min(max(0.0, w["end"] - start), limit),
                        probability=float(w["probability"]),
                        tokens=tuple(tokenizer.encode(w["word"])),
                    )
                    for w in segment[-1].get("words", [])
                ]
            )
        return out


def _prefix_tokens(tokenizer: Any, options: DecodeOptions, max_length: int) -> list[int]:
    """The prefix's tokens, cut as Whisper cuts a prefix (to half the decoder's length)."""
    if not options.prefix:
        return []
    tokens: list[int] = tokenizer.encode(" " + options.prefix.strip())
    return tokens[: max_length // 2 - 1] if len(tokens) >= max_length // 2 else tokens
