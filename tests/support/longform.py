"""Long recordings made of many voices, with what was said where, and how the bare engine hears each part alone.

The parts are the single-speaker English recordings of ../shared/audio (several corpora, rooms and levels, one at
-59 dBFS) and sentences spoken by espeak-ng in several accents, joined with short pauses. Shared by the end-to-end
tests and `benchmarks/longform.py`.
"""

from __future__ import annotations

import csv
import random
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from processors.audio import SAMPLE_RATE, decode_audio
from tests.support.audio import SHARED_AUDIO, encode

SENTENCES = [
    ("en-us", "please call stella and ask her to bring these things with her from the store"),
    ("en-gb-scotland+f3", "the birch canoe slid on the smooth planks"),
    ("en-029", "glue the sheet to the dark blue background"),
    ("en-gb-x-rp+m4", "it is easy to tell the depth of a well"),
    ("en-us-nyc+f2", "these days a chicken leg is a rare dish"),
    ("en-gb-x-gbclan", "rice is often served in round bowls"),
]


@dataclass(frozen=True)
class Part:
    name: str
    reference: str
    samples: npt.NDArray[np.float32]


@dataclass(frozen=True)
class LongRecording:
    path: Path
    parts: list[Part]
    """In the order they are heard."""
    pause_s: float

    @property
    def reference(self) -> str:
        return " ".join(p.reference for p in self.parts)

    @property
    def seconds(self) -> float:
        return sum(p.samples.size for p in self.parts) / SAMPLE_RATE + len(self.parts) * self.pause_s


def english_recordings() -> list[Part]:
    """Every single-speaker English recording of ../shared/audio that has a reference transcript."""
    with (SHARED_AUDIO / "MANIFEST.tsv").open(newline="") as manifest:
        rows = list(csv.DictReader(manifest, delimiter="\t"))
    return [
        Part(row["file"], row["reference_text"], decode_audio(SHARED_AUDIO / row["file"]))
        for row in rows
        if row["language"] == "en" and row["speakers"] == "1" and row["reference_text"]
    ]


def spoken(voice: str, text: str) -> Part:
    """`text` said by espeak-ng's `voice` (installed by `make install`)."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed; `make install` installs it")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), text], check=True)
        return Part(f"espeak:{voice}", text, decode_audio(wav))


def build(
    path: Path, *, rounds: int, pause_s: float = 0.8, voices: int = len(SENTENCES), seed: int = 7
) -> LongRecording:
    """`rounds` passes over the recordings (shuffled differently each time) with espeak-ng sentences between
    them, `pause_s` of silence after each part, written to `path` as FLAC."""
    recordings = english_recordings()
    synthetic = [spoken(voice, text) for voice, text in SENTENCES[:voices]]
    rng = random.Random(seed)
    parts: list[Part] = []
    for n in range(rounds):
        order = list(recordings)
        if n:
            rng.shuffle(order)
        for k, part in enumerate(order):
            parts.append(part)
            if synthetic and k % 2 == 1:
                parts.append(synthetic[(n * len(order) + k) // 2 % len(synthetic)])
    gap = np.zeros(int(pause_s * SAMPLE_RATE), np.float32)
    audio = np.concatenate([x for part in parts for x in (part.samples, gap)])
    encode(np.stack([audio, audio]), path, rate=SAMPLE_RATE, codec="flac")
    return LongRecording(path, parts, pause_s)


def as_heard(recording: LongRecording) -> list[Part]:
    """The parts cut from the recording's file as a decoder hears it. Not the parts' own samples: the file is
    16-bit, and its two identical channels downmix 3 dB louder, and the engine's transcript of a part moves with
    such inaudible differences (10.89 %, 10.63 % and 11.65 % WER on the 11.5-minute recording for the parts as
    made, as heard and rounded to 16 bits at their own level)."""
    heard = decode_audio(recording.path)
    gap = int(recording.pause_s * SAMPLE_RATE)
    parts, at = [], 0
    for part in recording.parts:
        parts.append(Part(part.name, part.reference, heard[at : at + part.samples.size]))
        at += part.samples.size + gap
    return parts


def one_by_one(parts: Sequence[Part], *, model_cache: Path, threads: int = 2, beam_size: int = 5) -> list[str]:
    """What the bare engine hears in each part given alone, with the service's model and decoding settings."""
    from faster_whisper import WhisperModel

    from processors.batching import temperatures
    from processors.models import resolve_model

    model = WhisperModel(resolve_model("base", model_cache), device="cpu", compute_type="int8", cpu_threads=threads)
    heard: dict[str, str] = {}
    for part in parts:
        if part.name not in heard:
            segments, _ = model.transcribe(
                part.samples,
                language="en",
                beam_size=beam_size,
                temperature=temperatures(0.0),
                vad_filter=True,
                condition_on_previous_text=False,
            )
            heard[part.name] = " ".join(s.text.strip() for s in segments)
    return [heard[part.name] for part in parts]
