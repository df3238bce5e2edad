"""The engine on the real bundled model and real recordings."""

import itertools
from pathlib import Path
from types import SimpleNamespace

import pytest

from processors.audio import decode_audio
from processors.engine import Transcriber, temperatures, to_segment
from processors.settings import ModelSettings
from schemas import Segment, Task, TranscriptionOptions
from tests.support.audio import shared


@pytest.fixture(scope="module")
def transcriber(model_cache: Path) -> Transcriber:
    t = Transcriber(ModelSettings(name="base", cache_dir=model_cache, cpu_threads=2))
    t.load()
    return t


def test_temperature_schedule() -> None:
    assert temperatures(0.0) == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert temperatures(0.5) == (0.6, 0.8, 1.0)
    assert temperatures(1.0) == (1.0,)


def test_segment_mapping_keeps_words_ordered() -> None:
    word = SimpleNamespace(word=" hi", start=1.23456, end=1.2, probability=0.5)
    raw = SimpleNamespace(
        seek=100,
        start=1.0,
        end=2.0,
        text=" hi",
        avg_logprob=-0.3,
        no_speech_prob=0.1,
        compression_ratio=1.1,
        temperature=None,
        tokens=[1, 2],
        words=[word],
    )
    segment = to_segment(4, raw)
    assert segment.id == 4 and segment.temperature == 0.0
    assert segment.words[0].start == 1.235 and segment.words[0].end == 1.235  # end never before start


def test_jfk(transcriber: Transcriber) -> None:
    audio = decode_audio(shared("jfk.flac"))
    seen: list[tuple[Segment, str]] = []
    summary = transcriber.transcribe(audio, TranscriptionOptions(), lambda s, lang: seen.append((s, lang)))
    text = " ".join(s.text for s, _ in seen).lower()
    assert "ask not what your country can do for you" in text
    assert summary.language == "en" and summary.language_probability > 0.5
    assert summary.segment_count == len(seen) and summary.duration == 11.0
    words = [w for s, _ in seen for w in s.words]
    assert len(words) >= 20
    assert all(0 <= w.start <= w.end <= summary.duration for w in words)
    assert all(a.start <= b.start for a, b in itertools.pairwise(words))


def test_german_is_detected_and_translated(transcriber: Transcriber) -> None:
    audio = decode_audio(shared("fleurs_de_000.ogg"))
    texts: list[str] = []
    summary = transcriber.transcribe(audio, TranscriptionOptions(), lambda s, _: texts.append(s.text))
    assert summary.language == "de"
    assert "hongkong" in " ".join(texts).lower()
    english: list[str] = []
    transcriber.transcribe(audio, TranscriptionOptions(task=Task.TRANSLATE), lambda s, _: english.append(s.text))
    assert "hong kong" in " ".join(english).lower()
