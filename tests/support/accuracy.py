"""Word error rate with Whisper's English normaliser and jiwer, and the words a service lost that the bare
engine, given each part of a recording alone, got right."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jiwer
from whisper_normalizer.english import EnglishTextNormalizer

_normalise = EnglishTextNormalizer()


def normalise(text: str) -> str:
    return " ".join(_normalise(text).split())


@dataclass(frozen=True)
class Errors:
    wer: float
    """In percent."""
    hits: int
    substitutions: int
    deletions: int
    insertions: int
    reference_words: int


def _hits(reference: str, hypothesis: str) -> tuple[set[int], jiwer.WordOutput]:
    measured = jiwer.process_words(reference or "-", hypothesis or "-")
    hits = {
        i
        for chunk in measured.alignments[0]
        if chunk.type == "equal"
        for i in range(chunk.ref_start_idx, chunk.ref_end_idx)
    }
    return hits, measured


def errors(reference: str, hypothesis: str) -> Errors:
    ref, hyp = normalise(reference), normalise(hypothesis)
    _, measured = _hits(ref, hyp)
    return Errors(
        wer=round(measured.wer * 100, 2),
        hits=measured.hits,
        substitutions=measured.substitutions,
        deletions=measured.deletions,
        insertions=measured.insertions,
        reference_words=len(ref.split()),
    )


def lost_words(references: Sequence[str], alone: Sequence[str], service: str) -> list[list[str]]:
    """Runs of consecutive reference words that the engine got right in each part alone and the service's
    transcript misses: single words are decoding noise either way, long runs are lost speech."""
    parts = [normalise(r) for r in references]
    full = " ".join(p for p in parts if p)
    expected: set[int] = set()
    offset = 0
    for part, heard in zip(parts, alone, strict=True):
        hits, _ = _hits(part, normalise(heard))
        expected |= {offset + i for i in hits}
        offset += len(part.split())
    got, _ = _hits(full, normalise(service))
    words = full.split()
    runs: list[list[int]] = []
    for i in sorted(expected - got):
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return [[words[i] for i in run] for run in runs]


def longest_runs(reference: str, hypothesis: str) -> tuple[int, int]:
    """The longest run of words missing from, and of words added to, `hypothesis` (a lost or doubled stretch)."""
    _, measured = _hits(normalise(reference), normalise(hypothesis))
    deleted = [c.ref_end_idx - c.ref_start_idx for c in measured.alignments[0] if c.type == "delete"]
    inserted = [c.hyp_end_idx - c.hyp_start_idx for c in measured.alignments[0] if c.type == "insert"]
    return max(deleted, default=0), max(inserted, default=0)
