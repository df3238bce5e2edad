"""faster-whisper behind a small interface: load once per process, transcribe in the calling thread.

`transcribe()` blocks for as long as decoding takes (the segment generator does the work lazily, so it is
consumed here, in the caller's thread); async callers run it with `asyncio.to_thread`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from processors.audio import SAMPLE_RATE
from processors.models import resolve_model
from processors.settings import ModelSettings
from schemas import Segment, TranscriptionOptions, Word

log = logging.getLogger(__name__)

# Whisper's own fallback schedule: a window that fails the compression or log-prob checks is retried hotter.
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class TranscriptionSummary:
    language: str
    language_probability: float
    duration: float
    segment_count: int


def to_segment(index: int, raw: Any) -> Segment:
    """Map one faster-whisper segment to ours; pure, so the mapping is tested without a model."""
    words = [
        Word(word=w.word, start=round(w.start, 3), end=round(max(w.end, w.start), 3), probability=w.probability)
        for w in (raw.words or [])
    ]
    return Segment(
        id=index,
        seek=int(raw.seek),
        start=round(raw.start, 3),
        end=round(raw.end, 3),
        text=raw.text,
        avg_logprob=raw.avg_logprob,
        no_speech_prob=raw.no_speech_prob,
        compression_ratio=raw.compression_ratio,
        temperature=raw.temperature if raw.temperature is not None else 0.0,
        tokens=list(raw.tokens),
        words=words,
    )


def temperatures(requested: float) -> tuple[float, ...]:
    """0 means the fallback schedule; any other value starts the schedule there."""
    return tuple(t for t in FALLBACK_TEMPERATURES if t >= requested) or (requested,)


class Transcriber:
    """Owns one WhisperModel; `load()` is explicit so importing or constructing never touches the model."""

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self.settings.name

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            from faster_whisper import WhisperModel

            source = resolve_model(self.settings.name, self.settings.cache_dir)
            log.info("loading model %s from %s on %s", self.settings.name, source, self.settings.device)
            self._model = WhisperModel(
                source,
                device=self.settings.device,
                compute_type=self.settings.compute_type,
                cpu_threads=self.settings.cpu_threads,
                download_root=str(self.settings.cache_dir / "hub"),
            )

    def transcribe(
        self,
        audio: npt.NDArray[np.float32],
        options: TranscriptionOptions,
        on_segment: Callable[[Segment, str], None],
    ) -> TranscriptionSummary:
        """Run the model over 16 kHz mono samples, calling `on_segment(segment, language)` for each final segment."""
        self.load()
        segments, info = self._model.transcribe(
            audio,
            language=options.language,
            task=options.task.value,
            initial_prompt=options.prompt,
            word_timestamps=options.word_timestamps,
            temperature=temperatures(options.temperature),
            beam_size=self.settings.beam_size,
            vad_filter=self.settings.vad_filter,
            condition_on_previous_text=self.settings.condition_on_previous_text,
        )
        count = 0
        for raw in segments:
            on_segment(to_segment(count, raw), info.language)
            count += 1
        return TranscriptionSummary(
            language=info.language,
            language_probability=round(info.language_probability, 4),
            duration=round(audio.size / SAMPLE_RATE, 3),
            segment_count=count,
        )
