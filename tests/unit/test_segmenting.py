"""Segments rebuilt from words: sentence-sized, closed at pauses, never longer than a window."""

from __future__ import annotations

import pytest

from processors.batching import compression_ratio
from processors.segmenting import HARD_MAX_S, ends_sentence, segment_words, to_segment
from schemas.state import StitchWord


def _words(spec: str, *, step: float = 0.4, start: float = 0.0) -> list[StitchWord]:
    out, at = [], start
    for text in spec.split():
        if text == "|":  # a long pause
            at += 2.0
            continue
        out.append(StitchWord(word=" " + text, start=at, end=at + step * 0.8, probability=0.9, tokens=[1]))
        at += step
    return out


@pytest.mark.parametrize(
    ("word", "ends"),
    [
        (" end.", True),
        (" why?", True),
        (" stop!", True),
        (' said."', True),
        ("好。", True),
        (" Mr.", False),
        (" Dr.", False),
        (" U.S.", False),
        (" on,", False),
        (" and", False),
        (" etc.", True),
    ],
)
def test_sentence_ends(word: str, ends: bool) -> None:
    assert ends_sentence(word) is ends


def test_segments_close_at_sentences_and_pauses_and_keep_the_rest_open() -> None:
    result = segment_words([], _words("Mr. Quilter is here. He came | and then went"))
    texts = ["".join(w.word for w in group).strip() for group in result.closed]
    assert texts == ["Mr. Quilter is here.", "He came"]
    assert "".join(w.word for w in result.tail).strip() == "and then went"


def test_an_open_segment_closes_when_silence_follows_up_to_the_horizon() -> None:
    words = _words("and then went")
    assert segment_words([], words, horizon=words[-1].end + 0.5).tail
    assert not segment_words([], words, horizon=words[-1].end + 2.0).tail


def test_an_open_segment_continues_across_calls() -> None:
    first = segment_words([], _words("this sentence goes"))
    second = segment_words(first.tail, _words("on and ends.", start=1.2))
    assert ["".join(w.word for w in g).strip() for g in second.closed] == ["this sentence goes on and ends."]


def test_no_segment_outgrows_a_window() -> None:
    result = segment_words([], _words(" ".join(["word"] * 200)), final=True)
    assert len(result.closed) > 1
    assert all(g[-1].end - g[0].start <= HARD_MAX_S for g in result.closed)
    assert sum(len(g) for g in result.closed) == 200


def test_segment_fields_come_from_its_words() -> None:
    words = _words("hello there.")
    segment = to_segment(7, words, with_words=True)
    assert segment.id == 7 and segment.text == " hello there."
    assert segment.start == round(words[0].start, 3) and segment.end == round(words[-1].end, 3)
    assert segment.tokens == [1, 1] and [w.word for w in segment.words] == [" hello", " there."]
    assert to_segment(7, words, with_words=False).words == []
    assert compression_ratio("ha " * 50) > 2.4 > compression_ratio("a plain sentence of words")
