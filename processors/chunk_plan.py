"""What the split agent makes of a decoded recording, without I/O: its speech found and levelled, the chunks
planned, and one chunk event per chunk. Kept apart from the agent so benchmarks run these very steps on a machine
without Kafka clients or a store."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from processors.audio import SAMPLE_RATE
from processors.planning import PlannedChunk, plan_chunks
from processors.speech import SpeechOptions, find_speech, level_speech
from processors.timeline import within
from schemas.chunks import ChunkRequested, TimeSpan
from schemas.transcript import TranscriptionOptions

if TYPE_CHECKING:  # the settings module reads pydantic-settings and the Kafka settings; the plan needs neither
    from processors.settings import ChunkingSettings


@dataclass(frozen=True)
class PlannedRecording:
    audio: npt.NDArray[np.float32]
    """The recording with its speech levelled (unless the settings leave levels as recorded)."""
    chunks: list[PlannedChunk]
    speech: tuple[tuple[int, int], ...] = ()
    """Where VAD heard speech (samples, before padding), in order."""

    @property
    def duration(self) -> float:
        return round(self.audio.size / SAMPLE_RATE, 3)

    def voiced(self, chunk: PlannedChunk) -> list[tuple[int, int]]:
        """The speech inside the chunk's spans: its audio without the padding and the short pauses it keeps."""
        return [part for start, end in chunk.spans for part in within(self.speech, start, end)]

    def packed(self, chunk: PlannedChunk) -> npt.NDArray[np.float32]:
        """The chunk's audio as stored: its spans back to back."""
        return np.concatenate([self.audio[s:e] for s, e in chunk.spans]).astype(np.float32, copy=False)


def plan_recording(audio: npt.NDArray[np.float32], settings: ChunkingSettings) -> PlannedRecording:
    threads = settings.vad_threads or os.cpu_count() or 1
    options = SpeechOptions(max_region_s=settings.target_s, recheck_gap_s=settings.recheck_gap_s, threads=threads)
    speech = find_speech(audio, options)
    if settings.level_dbfs is not None:
        audio = level_speech(audio, speech, target_dbfs=settings.level_dbfs)
    plan = plan_chunks(
        speech,
        audio.size,
        target=int(settings.target_s * SAMPLE_RATE),
        overlap=int(settings.overlap_s * SAMPLE_RATE),
        join_gap=int(settings.join_gap_s * SAMPLE_RATE),
    )
    return PlannedRecording(audio, plan, tuple(sorted(r.voiced for r in speech)))


def chunk_requested(
    job_id: str,
    recording: PlannedRecording,
    chunk: PlannedChunk,
    *,
    overlap_s: float,
    model: str,
    audio_key: str,
    options: TranscriptionOptions,
    language_probability: float | None,
) -> ChunkRequested:
    return ChunkRequested(
        job_id=job_id,
        index=chunk.index,
        count=len(recording.chunks),
        owned=TimeSpan(start=chunk.owned[0] / SAMPLE_RATE, end=chunk.owned[1] / SAMPLE_RATE),
        overlap_s=overlap_s,
        cut_in_speech=chunk.cut_in_speech,
        model=model,
        audio_key=audio_key,
        spans=[TimeSpan(start=s / SAMPLE_RATE, end=e / SAMPLE_RATE) for s, e in chunk.spans],
        speech=[TimeSpan(start=s / SAMPLE_RATE, end=e / SAMPLE_RATE) for s, e in recording.voiced(chunk)],
        options=options,
        duration=recording.duration,
        language_probability=language_probability,
    )
