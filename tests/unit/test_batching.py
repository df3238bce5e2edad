"""The batch decoder on the real bundled model: windows of different jobs and languages in one batch."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from processors.audio import SAMPLE_RATE, decode_audio
from processors.batching import BatchDecoder, DecodeOptions, Window, input_seconds, temperatures
from processors.engine import Transcriber
from processors.settings import ModelSettings
from tests.support.audio import shared


@pytest.fixture(scope="module")
def decoder(model_cache: Path) -> BatchDecoder:
    return Transcriber(ModelSettings(name="base", cache_dir=model_cache, cpu_threads=2)).decoder


def test_temperature_schedule() -> None:
    assert temperatures(0.0) == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert temperatures(0.5) == (0.6, 0.8, 1.0)
    assert temperatures(1.0) == (1.0,)


def test_one_batch_of_windows_from_different_jobs(decoder: BatchDecoder) -> None:
    jfk = decode_audio(shared("jfk.flac"))
    german = decode_audio(shared("fleurs_de_000.ogg"))
    silence = np.zeros(5 * SAMPLE_RATE, np.float32)
    results = decoder.decode(
        [
            Window(jfk),
            Window(german),
            Window(german, DecodeOptions(task="translate")),
            Window(jfk, language="en"),
            Window(silence, language="en"),
        ]
    )
    english, detected, translated, fixed, quiet = results
    assert english.language == "en" and english.language_probability > 0.5
    assert detected.language == "de"
    text = "".join(w.word for w in english.words).lower()
    assert "ask not what your country can do for you" in text
    assert "hongkong" in "".join(w.word for w in detected.words).lower()
    assert "hong kong" in "".join(w.word for w in translated.words).lower()
    assert [w.word for w in fixed.words] == [w.word for w in english.words]
    assert quiet.words == [] and quiet.silent
    for result, audio in [(english, jfk), (detected, german)]:
        assert all(0 <= w.start <= w.end <= audio.size / SAMPLE_RATE for w in result.words)
        assert all(a.start <= b.start for a, b in itertools.pairwise(result.words))
        assert all(w.tokens for w in result.words)


def test_detect_language_once_on_first_speech(decoder: BatchDecoder) -> None:
    language, probability = decoder.detect_language(decode_audio(shared("fleurs_pt_006.ogg")))
    assert language == "pt" and 0.5 < probability <= 1.0


def test_a_window_decodes_the_same_whatever_it_is_batched_with(decoder: BatchDecoder) -> None:
    short = decode_audio(shared("librispeech_test-clean_672-122797-0000.flac"))  # 4 s: a 15 s input
    long = decode_audio(shared("mfa_acoustic_corpus.wav"))[: 27 * SAMPLE_RATE]  # a 30 s input
    alone = decoder.decode([Window(short, language="en")])[0]
    batched = decoder.decode([Window(long, language="en"), Window(short, language="en")])[1]
    assert [(w.word, w.start, w.end) for w in batched.words] == [(w.word, w.start, w.end) for w in alone.words]
    assert input_seconds(short.size) == 15 and input_seconds(long.size) == 30 and input_seconds(12 * SAMPLE_RATE) == 17
    assert input_seconds(21 * SAMPLE_RATE) == 30, "chunks of long recordings share one input length"


def test_a_prefix_is_forced_and_only_what_follows_it_comes_back(decoder: BatchDecoder) -> None:
    jfk = decode_audio(shared("jfk.flac"))
    whole = decoder.decode([Window(jfk, language="en")])[0].words
    head = next(n for n, w in enumerate(whole) if w.word.strip() == "ask")
    prefix = "".join(w.word for w in whole[:head])
    assert prefix.strip() == "And so my fellow Americans,"
    rest = decoder.decode([Window(jfk, DecodeOptions(prefix=prefix), language="en")])[0].words
    assert [w.word for w in rest] == [w.word for w in whole[head:]]
    # Aligned over the whole window: the first word after the prefix is where the audio says it, not at 0.
    assert abs(rest[0].start - whole[head].start) < 0.5 and rest[-1].end <= jfk.size / SAMPLE_RATE
