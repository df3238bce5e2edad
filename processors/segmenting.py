"""Sentence-sized segments from a stream of timed words: pure, incremental and deterministic.

Windows are decoded without timestamp tokens, so Whisper's own segments would be a whole window long; the
transcript's segments are rebuilt from the words instead, the same way for every chunk and across every cut. A
segment ends after a sentence-ending word, before a pause, or once it is long enough to close at a clause; the
words of a segment still open wait, in the stitcher's state, for the next chunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from processors.batching import compression_ratio
from schemas import Segment, Word
from schemas.state import StitchWord

PAUSE_S = 1.5
"""A silence this long between two words always ends a segment."""
SOFT_MAX_S = 15.0
"""Past this length a segment ends at the next clause mark or short pause."""
HARD_MAX_S = 30.0
"""No segment is longer than one of Whisper's windows."""
CLAUSE_PAUSE_S = 0.4

_SENTENCE_MARKS = "!?。！？…"
_CLAUSE_MARKS = ",;:，、；："
_CLOSING = "\"'”’)]}»"


def _core(word: str) -> str:
    return word.strip().rstrip(_CLOSING)


def ends_sentence(word: str) -> bool:
    """True after `end.`, `why?`, `好。`; false after abbreviations such as `Mr.`, `Dr.` or `U.S.`."""
    text = _core(word)
    if not text:
        return False
    if text[-1] in _SENTENCE_MARKS:
        return True
    if not text.endswith("."):
        return False
    stem = text.rstrip(".")
    if not stem or "." in stem:
        return False
    return not (len(stem) <= 3 and stem[0].isupper())


def ends_clause(word: str) -> bool:
    text = _core(word)
    return bool(text) and text[-1] in _CLAUSE_MARKS


@dataclass
class Segmented:
    closed: list[list[StitchWord]]
    tail: list[StitchWord]


def segment_words(
    tail: Sequence[StitchWord], words: Iterable[StitchWord], *, horizon: float | None = None, final: bool = False
) -> Segmented:
    """Extend the open segment `tail` with `words`; return the segments that closed and the one still open.

    `horizon` is how far the words are known to be complete: an open segment followed by a pause up to it closes
    now instead of waiting for the next chunk. `final` closes whatever is open.
    """
    closed: list[list[StitchWord]] = []
    current = list(tail)
    for word in words:
        if current:
            gap = word.start - current[-1].end
            length = current[-1].end - current[0].start
            if (
                gap >= PAUSE_S
                or (length >= SOFT_MAX_S and gap >= CLAUSE_PAUSE_S)
                or word.end - current[0].start > HARD_MAX_S
            ):
                closed.append(current)
                current = []
        current.append(word)
        length = current[-1].end - current[0].start
        if ends_sentence(word.word) or (length >= SOFT_MAX_S and ends_clause(word.word)):
            closed.append(current)
            current = []
    if current and (final or (horizon is not None and horizon - current[-1].end >= PAUSE_S)):
        closed.append(current)
        current = []
    return Segmented(closed=closed, tail=current)


def to_segment(position: int, words: Sequence[StitchWord], *, with_words: bool) -> Segment:
    """One transcript segment from its words, scored from the windows they came from."""
    text = "".join(w.word for w in words)
    count = len(words)
    return Segment(
        id=position,
        seek=words[0].seek,
        start=round(words[0].start, 3),
        end=round(max(words[-1].end, words[0].start), 3),
        text=text,
        avg_logprob=round(sum(w.avg_logprob for w in words) / count, 4),
        no_speech_prob=round(sum(w.no_speech_prob for w in words) / count, 4),
        compression_ratio=compression_ratio(text.strip()),
        temperature=max(w.temperature for w in words),
        tokens=[token for w in words for token in w.tokens],
        words=(
            [
                Word(word=w.word, start=round(w.start, 3), end=round(max(w.end, w.start), 3), probability=w.probability)
                for w in words
            ]
            if with_words
            else []
        ),
    )
