"""The pure parts of live transcription: where turns start and end, and which words two decodes agree on.

Turns follow OpenAI's server VAD: speech starts at the first 32 ms frame whose speech probability reaches the
threshold (reported `prefix_padding_ms` earlier), and ends once `silence_duration_ms` of frames fell below it
(with Silero's hysteresis of 0.15, as faster-whisper segments). Finality follows local agreement (LocalAgreement-2
of whisper_streaming): a word is final once two consecutive decodes of the growing turn put it at the same place.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from processors.speech import FRAME
from schemas.live import TurnDetection


@dataclass(frozen=True)
class SpeechEdge:
    started: bool
    """True: speech started at `sample`; False: it stopped there (the end of the last speech frame)."""
    sample: int


class TurnDetector:
    """Feeds on per-frame speech probabilities, in order; reports where speech starts and stops."""

    def __init__(self, options: TurnDetection, *, at_frame: int = 0) -> None:
        self.options = options
        self.in_speech = False
        self._frame = at_frame  # index of the next frame fed
        self._last_voiced = 0  # end (frame index) of the last frame at or above the lower threshold
        self._silent_frames = 0

    @property
    def last_voiced(self) -> int:
        """End (sample) of the last frame heard as speech (at or above the lower threshold)."""
        return self._last_voiced * FRAME

    @property
    def position(self) -> int:
        """Samples fed so far."""
        return self._frame * FRAME

    def feed(self, probabilities: Sequence[float]) -> list[SpeechEdge]:
        threshold = self.options.threshold
        lower = max(threshold - 0.15, 0.01)
        silence_frames = max(1, round(self.options.silence_duration_ms * 16 / FRAME))
        edges = []
        for p in probabilities:
            if not self.in_speech:
                if p >= threshold:
                    self.in_speech = True
                    self._silent_frames = 0
                    self._last_voiced = self._frame + 1
                    edges.append(SpeechEdge(True, self._frame * FRAME))
            elif p >= lower:
                self._silent_frames = 0
                self._last_voiced = self._frame + 1
            else:
                self._silent_frames += 1
                if self._silent_frames >= silence_frames:
                    self.in_speech = False
                    edges.append(SpeechEdge(False, self._last_voiced * FRAME))
            self._frame += 1
        return edges

    def reset(self) -> None:
        """Forget an open turn (the buffer was cleared or committed by the client)."""
        self.in_speech = False
        self._silent_frames = 0


_NOT_WORD = re.compile(r"[^\w']+")


def comparable(word: str) -> str:
    """A word as agreement compares it: case, spacing and punctuation do not count."""
    return _NOT_WORD.sub("", word.lower())


def agreed_prefix(previous: Sequence[str], current: Sequence[str]) -> int:
    """How many leading words of `current` the previous decode had in the same order."""
    count = 0
    for a, b in zip(previous, current, strict=False):
        if comparable(a) != comparable(b):
            break
        count += 1
    return count


def after_committed(words: Sequence[str], ends: Sequence[float], committed: Sequence[str], until: float) -> int:
    """How many leading words of a new decode of a turn repeat its final words (`committed`, the last of them
    ending at `until`).

    Usually the decode starts with exactly the final words. Where it does not (it heard them a little
    differently), the words that end by `until` are taken as the final ones again (by their end: Whisper puts the
    start of a word after a pause early), and then any run that repeats the final words' tail (1 to 5 words)."""
    if not committed:
        return 0
    if len(words) >= len(committed) and all(
        comparable(a) == comparable(b) for a, b in zip(words, committed, strict=False)
    ):
        return len(committed)
    skip = 0
    while skip < len(words) and ends[skip] <= until + 0.05:
        skip += 1
    tail = [comparable(w) for w in committed[-5:]]
    rest = [comparable(w) for w in words[skip:]]
    for n in range(min(len(tail), len(rest)), 0, -1):
        if tail[-n:] == rest[:n]:
            return skip + n
    return skip
