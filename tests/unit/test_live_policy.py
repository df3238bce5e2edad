"""When a live turn's words become final, driven by a decoder that hears a known word every 0.4 s.

The audio is real speech (the session's VAD opens and holds the turn on it); the decoder is scripted so that what
each decode returns is known, and the test can say which words must be final after it."""

from __future__ import annotations

import base64

import numpy as np
import numpy.typing as npt

from processors.audio import SAMPLE_RATE, decode_audio
from processors.batching import DecodedWord, Window, WindowResult
from processors.live_session import LivePolicy, LiveSession
from schemas.live import LiveOptions
from schemas.transcript import Word
from tests.support.audio import shared

WORD_S = 0.4


def speech() -> npt.NDArray[np.float32]:
    """12.8 s of one sentence, read without a pause long enough to end a turn."""
    return decode_audio(shared("librispeech_test-clean_237-126133-0000.flac"))


class Script:
    """Word k of the session is "wk", from 0.4 k s to 0.4 (k + 1) s, up to `spoken` seconds; a decode returns
    the words its window overlaps, the last one stretched to the window's end as Whisper does. `garbled`: each
    decode hears every word differently, so no two decodes agree."""

    def __init__(self) -> None:
        self.session: LiveSession | None = None
        self.spoken = float("inf")
        self.garbled = False
        self.decodes = 0

    def __call__(self, window: Window) -> WindowResult:
        assert self.session is not None and self.session.turn is not None
        self.decodes += 1
        begin = self.session.turn.start / SAMPLE_RATE  # no context (policy context_s=0)
        end = begin + window.audio.size / SAMPLE_RATE
        heard = f"x{self.decodes}" if self.garbled else ""
        words = []
        for k in range(int(begin // WORD_S), int(np.ceil(min(end, self.spoken) / WORD_S))):
            start, stop = max(k * WORD_S, begin), min((k + 1) * WORD_S, end)
            if stop - start > 0.05:
                words.append(DecodedWord(f" w{k}{heard}", start - begin, stop - begin, 0.9, ()))
        if words:
            last = words[-1]
            words[-1] = DecodedWord(last.word, last.start, end - begin, last.probability, ())
        return WindowResult(words, "en", 1.0, -0.2, 0.01, 1.2, 0.0, silent=False)


def session(policy: LivePolicy) -> tuple[LiveSession, Script]:
    script = Script()
    live = LiveSession("sess_policy", LiveOptions(rate=SAMPLE_RATE, language="en"), policy=policy, decode=script)
    script.session = live
    return live, script


def append(live: LiveSession, audio: npt.NDArray[np.float32]) -> None:
    step = SAMPLE_RATE // 10
    for at in range(0, audio.size, step):
        pcm = (np.clip(audio[at : at + step], -1, 1) * 32767).astype("<i2")
        for edge in live.append(base64.b64encode(pcm.tobytes()).decode()):
            if edge.started and live.turn is None:
                live.open_turn(edge.sample)


def words(found: list[Word]) -> list[str]:
    return [w.word for w in found]


def test_the_last_word_waits_for_a_decode_past_it_unless_the_speaker_paused() -> None:
    live, script = session(LivePolicy(context_s=0.0))
    append(live, speech()[: 2 * SAMPLE_RATE])
    script.spoken = 2.0
    assert live.turn is not None
    live.interim()
    live.interim()
    # Two decodes agree on every word, but the last ends at the edge of the audio heard while speech goes on.
    assert live.turn.final and len(live.turn.pending) == 1
    last = live.turn.pending[0].word
    append(live, np.zeros(SAMPLE_RATE // 10, np.float32))
    live.interim()
    assert words(live.turn.pending) == [last], "0.1 s of silence is not a pause yet"
    append(live, np.zeros(3 * SAMPLE_RATE // 10, np.float32))
    assert live.turn is not None, "still open: 500 ms of silence end a turn"
    assert words(live.interim()) == [last] and not live.turn.pending


def test_a_cut_turn_hands_the_words_heard_after_the_cut_to_the_turn_that_goes_on() -> None:
    live, _ = session(LivePolicy(context_s=0.0, max_turn_s=5.0))
    audio = speech()
    at = 0
    while not live.too_long():
        append(live, audio[at : at + SAMPLE_RATE // 10])
        at += SAMPLE_RATE // 10
        if live.interim_due():
            live.interim()
    before = live.turn
    assert before is not None and before.pending
    finished = live.cut()
    assert finished is not None and words(finished.words) == words(before.final)
    following = live.turn
    assert following is not None and following is not before and following.continues
    assert following.start == round(finished.end * SAMPLE_RATE)
    append(live, audio[at : at + SAMPLE_RATE])
    # The next decode agrees with what the cut turn had heard after its last final word: those words go out now,
    # not two decodes later.
    assert words(live.interim()) == words(before.pending)


def test_a_turn_without_final_words_is_decoded_sooner_only_when_the_worker_has_time() -> None:
    live, script = session(LivePolicy(context_s=0.0, first_interim_s=0.5, interim_s=1.0))
    audio = speech()
    at = 0
    half = SAMPLE_RATE // 2

    def more(samples: int) -> None:
        nonlocal at
        append(live, audio[at : at + samples])
        at += samples

    while live.turn is None or not live.interim_due():
        more(SAMPLE_RATE // 10)
    script.garbled = True
    live.interim()
    more(half)
    assert live.interim_due(), "the second decode comes half a second after the first"
    live.interim()
    more(half)
    assert live.turn is not None and not live.turn.final, "the two decodes disagreed"
    assert not live.interim_due() and live.interim_due(spare=True)
    script.garbled = False
    live.interim()
    live.interim()
    more(half)
    assert live.turn.final, "two decodes agreed"
    assert not live.interim_due(spare=True), "with final words, a turn is decoded once a second"
