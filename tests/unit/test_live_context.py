"""A live turn that follows closely on the last one is decoded after that one's audio, with its known words forced
as the start of the transcript (Whisper's prefix): only the new turn's words are decoded, and none is doubled."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from processors.audio import SAMPLE_RATE, decode_audio
from processors.batching import Window, WindowResult
from processors.engine import Transcriber
from processors.live_session import FinishedTurn, LivePolicy, LiveSession
from processors.settings import ModelSettings
from schemas.live import LiveOptions
from tests.support.accuracy import errors
from tests.support.audio import shared
from tests.support.longform import english_recordings

CLIPS = ["librispeech_test-clean_672-122797-0000.flac", "jfk.flac", "ljspeech_LJ001-0001.wav"]


@pytest.fixture(scope="module")
def transcriber(model_cache: Path) -> Transcriber:
    return Transcriber(ModelSettings(name="base", cache_dir=model_cache, cpu_threads=2))


def test_close_turns_are_decoded_after_the_known_words_before_them(transcriber: Transcriber) -> None:
    clips = [decode_audio(shared(name)) for name in CLIPS]
    gap = np.zeros(int(1.0 * SAMPLE_RATE), np.float32)
    audio = np.concatenate([x for clip in clips for x in (clip, gap)])
    seen: list[Window] = []

    def decode(window: Window) -> WindowResult:
        seen.append(window)
        return transcriber.live_decoder.decode([window])[0]

    options = LiveOptions(rate=SAMPLE_RATE, language="en")
    session = LiveSession("sess_context", options, policy=LivePolicy(), decode=decode)
    turns: list[FinishedTurn] = []
    for at in range(0, audio.size, SAMPLE_RATE // 10):
        pcm = (np.clip(audio[at : at + SAMPLE_RATE // 10], -1, 1) * 32767).astype("<i2")
        for edge in session.append(base64.b64encode(pcm.tobytes()).decode()):
            if edge.started and session.turn is None:
                session.open_turn(edge.sample)
            elif not edge.started and session.turn is not None:
                turns.append(session.finish(edge.sample))
        if session.interim_due():
            session.interim()
    if session.turn is not None:
        turns.append(session.finish())

    said = "".join(w.word for t in turns for w in t.words)
    prefixes = [w.options.prefix for w in seen if w.options.prefix]
    assert prefixes, "turns a second apart are decoded with the turn before them"
    for prefix in prefixes:
        assert prefix in said, f"a prefix is words already said: {prefix!r}"
    references = {part.name: part.reference for part in english_recordings()}
    reference = " ".join(references[name] for name in CLIPS)
    measured = errors(reference, said)
    assert measured.insertions <= 2 and measured.wer < 12, measured  # measured: 5.1 %, no insertion
