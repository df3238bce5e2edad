"""processors.turns: server-VAD turn edges and local agreement."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from processors.speech import FRAME
from processors.turns import TurnDetector, after_committed, agreed_prefix, comparable
from schemas.live import TurnDetection


def test_speech_starts_at_the_threshold_and_stops_after_the_silence() -> None:
    detector = TurnDetector(TurnDetection(threshold=0.5, silence_duration_ms=500))
    silence_frames = 500 // 32 + 1  # 16 frames of 32 ms reach 500 ms
    probs = [0.1] * 10 + [0.9] * 20 + [0.05] * (silence_frames - 1)
    edges = detector.feed(probs)
    assert [(e.started, e.sample) for e in edges] == [(True, 10 * FRAME)]
    assert detector.in_speech
    edges = detector.feed([0.05])
    assert [(e.started, e.sample) for e in edges] == [(False, 30 * FRAME)]  # where speech last was, not now
    assert not detector.in_speech


def test_hysteresis_keeps_a_dip_inside_speech() -> None:
    detector = TurnDetector(TurnDetection(threshold=0.5, silence_duration_ms=100))
    # 0.4 is under the threshold but over threshold - 0.15: still speech once it started.
    edges = detector.feed([0.9] + [0.4] * 10 + [0.9])
    assert [e.started for e in edges] == [True]
    edges = detector.feed([0.2] * 4)
    assert [(e.started, e.sample) for e in edges] == [(False, 12 * FRAME)]


def test_a_quieter_threshold_hears_quieter_speech() -> None:
    assert TurnDetector(TurnDetection(threshold=0.3)).feed([0.35])
    assert not TurnDetector(TurnDetection(threshold=0.5)).feed([0.35])


@given(st.lists(st.floats(min_value=0, max_value=1), max_size=400), st.integers(50, 2000))
def test_edges_alternate_and_move_forward(probs: list[float], silence_ms: int) -> None:
    detector = TurnDetector(TurnDetection(silence_duration_ms=silence_ms))
    edges = []
    for at in range(0, len(probs), 7):  # fed in pieces, as audio arrives
        edges += detector.feed(probs[at : at + 7])
    assert [e.started for e in edges] == [n % 2 == 0 for n in range(len(edges))]
    samples = [e.sample for e in edges]
    assert samples == sorted(samples)
    assert all(0 <= s <= len(probs) * FRAME for s in samples)


def test_agreement_is_the_common_prefix_ignoring_case_and_punctuation() -> None:
    assert agreed_prefix([" And", " so", " my"], [" and", " so,", " my", " fellow"]) == 3
    assert agreed_prefix([" And", " so", " my"], [" And", " sew", " my"]) == 1
    assert agreed_prefix([], [" And"]) == 0
    assert comparable(" Don't!") == "don't"


def test_words_already_final_are_skipped_by_sequence_then_by_time_and_a_repeated_tail() -> None:
    final = [" ask", " not", " what"]
    # A decode of the whole turn that starts with the final words.
    assert after_committed([" Ask", " not,", " what", " your"], [0.3, 0.6, 1.1, 1.4], final, until=1.1) == 3
    # One that heard them differently: what ends by the last final word's end is taken as final again.
    assert after_committed([" is", " not", " what", " your"], [0.3, 0.6, 1.12, 1.4], final, until=1.1) == 3
    # Alignment put the repeated last final word later than it was: the tail repeat still catches it.
    assert after_committed([" what", " your"], [1.3, 1.5], final, until=1.1) == 1
    assert after_committed([" your"], [1.4], final, until=1.1) == 0
    # Nothing final yet: nothing is skipped, however early a word seems to start.
    assert after_committed([" So", " this"], [0.1, 0.4], [], until=2.0) == 0
