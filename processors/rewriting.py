"""Holding a language model to the words that were said: its output aligned back to the transcript's words.

A model asked to punctuate or to paragraph a passage returns text; that text is cut into words and aligned with
the passage's words (difflib's longest matching blocks over the words reduced to letters and digits). Where the
two agree on a word, the transcript's word takes the model's spelling of it (case and punctuation) and keeps its
timestamps; a word the model changed, dropped or invented is not taken. When more than `max_change` of the words
disagree, the whole output is rejected and the passage keeps its text. Pure functions.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def normal(word: str) -> str:
    """A word reduced to what a spelling change cannot touch: lower-case letters and digits."""
    return "".join(c for c in word.casefold() if c.isalnum())


@dataclass(frozen=True)
class OutputWord:
    text: str
    paragraph: int
    """Which paragraph of the output (blank lines apart) the word is in."""


def output_words(text: str) -> list[OutputWord]:
    """The model's text as words; punctuation standing alone joins the word before it."""
    out: list[OutputWord] = []
    for number, block in enumerate(p for p in _PARAGRAPH_BREAK.split(text.strip()) if p.strip()):
        for piece in block.split():
            if not normal(piece) and out:
                out[-1] = OutputWord(out[-1].text + piece, out[-1].paragraph)
            elif normal(piece):
                out.append(OutputWord(piece, number))
    return out


@dataclass(frozen=True)
class Alignment:
    pairs: dict[int, int]
    """Transcript word index → output word index, for the words both agree on."""
    agreement: float
    """Agreeing words over the longer of the two."""


def align(words: Sequence[str], output: Sequence[OutputWord]) -> Alignment:
    ours = [normal(w) for w in words]
    theirs = [normal(w.text) for w in output]
    matcher = difflib.SequenceMatcher(a=ours, b=theirs, autojunk=False)
    pairs: dict[int, int] = {}
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            pairs[block.a + k] = block.b + k
    counted = sum(1 for w in ours if w)
    longest = max(counted, len(theirs))
    return Alignment(pairs, len(pairs) / longest if longest else 1.0)


def respelled(words: Sequence[str], output: Sequence[OutputWord], alignment: Alignment) -> list[str]:
    """Each transcript word in the model's spelling where they agree, its own elsewhere; leading spaces kept."""
    out = []
    for n, word in enumerate(words):
        if n in alignment.pairs:
            lead = word[: len(word) - len(word.lstrip())]
            out.append(lead + output[alignment.pairs[n]].text)
        else:
            out.append(word)
    return out


def paragraph_starts(words: Sequence[str], output: Sequence[OutputWord], alignment: Alignment) -> set[int]:
    """Transcript word indices where the model started a new paragraph (the first word of each paragraph after
    the first that the two agree on)."""
    starts: set[int] = set()
    seen: set[int] = set()
    for n in range(len(words)):
        j = alignment.pairs.get(n)
        if j is None:
            continue
        paragraph = output[j].paragraph
        if paragraph not in seen:
            seen.add(paragraph)
            if paragraph > 0 and n > 0:
                starts.add(n)
    return starts
