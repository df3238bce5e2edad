"""Finding speech that a decode skipped: stretches VAD marked as speech that no word covers.

Whisper sometimes leaves part of a window without text: a quiet voice next to a loud one, or a window that starts in
the middle of a sentence and resumes at the next. Each such stretch, from `min_stretch_s` on, is decoded again on
its own and the words it yields are merged in. Pure functions; the transcribe agent does the decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RecoveryOptions:
    enabled: bool = True
    min_stretch_s: float = 1.0
    """Speech without words shorter than this is a pause, not a loss."""
    word_margin_s: float = 0.3
    """A word accounts for this much speech on each side of its timestamps, which are approximate."""
    pad_s: float = 0.2
    """Audio decoded on each side of a stretch, so its first and last words are whole."""
    rounds: int = 2
    """Passes: what one pass leaves uncovered gets a shorter window of its own in the next."""
    max_word_s: float = 1.5
    """A word timed longer than this covers no speech. When Whisper skips a stretch (a short sentence in another
    voice), the alignment stretches the next words over it: "is" timed across 4.4 s of a sentence that got no words.
    Spoken words rarely last this long; a pause before a sentence's first word often does, and a retry there finds
    that word again, which the merge recognises."""
    min_probability: float = 0.3
    """A retry whose words average a lower probability than this heard no speech. The chunk's decode, which had the
    sentence around it, found no words there; a retry alone that comes back with a single word Whisper hardly
    believes is the pause taken for a word. Measured on the long-recording benchmark's recording and the twelve
    English recordings three times over: of 37 retries, the 14 below 0.3 were each one word ("Okay.", "Yes.",
    "Hugh.", "Uh...", a fifth "words." of "words words words words"), dropping them left both WERs within their
    run-to-run spread; and jfk.flac encoded as AAC got "And..." between "Americans" and "ask not" (0.24: the start
    of "ask" under a retry that ended inside it). The lowest real retry scored 0.35."""


def uncovered(
    speech: Sequence[tuple[float, float]],
    words: Sequence[tuple[float, float]],
    options: RecoveryOptions,
) -> list[tuple[float, float]]:
    """Parts of `speech` at least `min_stretch_s` long that are more than `word_margin_s` from every word no longer
    than `max_word_s`."""
    margin = options.word_margin_s
    covered = sorted((start - margin, end + margin) for start, end in words if end - start <= options.max_word_s)
    stretches = []
    for lo, hi in speech:
        cursor = lo
        for start, end in covered:
            if end <= cursor:
                continue
            if start >= hi:
                break
            if start - cursor >= options.min_stretch_s:
                stretches.append((cursor, start))
            cursor = max(cursor, end)
        if hi - cursor >= options.min_stretch_s:
            stretches.append((cursor, hi))
    return stretches


def clip(spans: Sequence[tuple[float, float]], lo: float, hi: float) -> list[tuple[float, float]]:
    """`spans` cut to [lo, hi)."""
    return [(max(s, lo), min(e, hi)) for s, e in spans if min(e, hi) > max(s, lo)]
