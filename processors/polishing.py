"""The language-model steps over a finished transcript: punctuation, paragraphs, a summary.

The words and their timestamps are the transcript's: punctuation and paragraphs are taken from the model's
output only where it is aligned back to the words (`processors.rewriting`), passage by passage, and a passage
whose output changes, drops or invents more than `max_change` of its words keeps its text, with the reason in the
step's outcome. A model that cannot be reached skips the step; the job completes either way.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from processors.llm import ChatClient, LlmUnavailable
from processors.rewriting import Alignment, OutputWord, align, normal, output_words, paragraph_starts, respelled
from schemas import PostprocessReport, PostStep, Segment, StepOutcome

PUNCTUATION_WORDS = 150
"""Words per passage sent for punctuation: short enough for a small model to copy faithfully."""
PARAGRAPH_WORDS = 300
"""Words per passage sent for paragraphs; a passage always starts a paragraph."""
SUMMARY_WORDS = 1500
"""Words per passage summarised; the passages' summaries are summarised again when there are several."""
SUMMARY_CHARS = 4000
SUMMARY_TOKENS = 300
SUMMARY_GROUNDING = 0.5
"""At least this share of a summary's longer words (four letters or more) must occur in the transcript: a model
that writes about something else (a small one often does) has its summary rejected."""

PUNCTUATION_PROMPT = (
    "You restore punctuation and capital letters in speech transcripts. Reply with the transcript only. "
    "Never add, remove, reorder or change words."
)
PARAGRAPHS_PROMPT = (
    "You split speech transcripts into paragraphs. Reply with the same text, with a blank line between "
    "paragraphs. Never add, remove or change words."
)
SUMMARY_PROMPT = "You summarise speech transcripts in a few sentences. Reply with the summary only."

NOT_CONFIGURED = "no language model is configured (SCRIBEFLOW_LLM__BASE_URL)"


@dataclass
class _Piece:
    """A run of whole segments sent to the model together."""

    segments: list[int]
    words: list[tuple[int, int]]
    """(segment, token) of each word, in order."""


def tokens(segment: Segment) -> list[str]:
    """A segment's words with their leading spaces: its timed words, or its text cut at spaces."""
    if segment.words:
        return [w.word for w in segment.words]
    return [" " + t for t in segment.text.split()]


def with_tokens(segment: Segment, new: Sequence[str]) -> Segment:
    if segment.words:
        words = [w.model_copy(update={"word": t}) for w, t in zip(segment.words, new, strict=True)]
        return segment.model_copy(update={"words": words, "text": "".join(new)})
    return segment.model_copy(update={"text": "".join(new)})


def pieces(segments: Sequence[Segment], limit: int) -> list[_Piece]:
    out: list[_Piece] = []
    for n, segment in enumerate(segments):
        count = len(tokens(segment))
        if not out or (out[-1].words and len(out[-1].words) + count > limit):
            out.append(_Piece([], []))
        out[-1].segments.append(n)
        out[-1].words += [(n, k) for k in range(count)]
    return [p for p in out if p.words]


async def polish(
    segments: list[Segment], steps: Sequence[PostStep], llm: ChatClient | None, max_change: float
) -> tuple[list[Segment], PostprocessReport]:
    if llm is None:
        return segments, PostprocessReport(
            steps=[StepOutcome(step=s, status="skipped", reason=NOT_CONFIGURED) for s in steps]
        )
    outcomes: list[StepOutcome] = []
    summary = None
    for step in steps:
        started = time.perf_counter()
        try:
            if step is PostStep.PUNCTUATION:
                segments, outcome = await _punctuate(segments, llm, max_change)
            elif step is PostStep.PARAGRAPHS:
                segments, outcome = await _paragraphs(segments, llm, max_change)
            else:
                summary, outcome = await _summary(segments, llm)
        except LlmUnavailable as e:
            outcome = StepOutcome(step=step, status="skipped", reason=str(e))
        outcomes.append(outcome.model_copy(update={"seconds": round(time.perf_counter() - started, 2)}))
    return segments, PostprocessReport(steps=outcomes, summary=summary)


def _room(words: Sequence[str]) -> int:
    """Enough tokens for the passage again with its punctuation, and no more: a model that starts rambling is
    cut off (and then rejected) instead of running for minutes."""
    return 3 * len(words) + 64


@dataclass
class _Tally:
    """How a step's passages fared against the guard."""

    step: PostStep
    limit: float
    agreed: float = 0.0
    words: int = 0
    rejected: int = 0
    passages: int = 0
    worst: float = 0.0

    async def ask(self, llm: ChatClient, prompt: str, words: list[str]) -> tuple[list[OutputWord], Alignment] | None:
        """The model's answer for one passage, aligned to its words; None when the guard rejects it."""
        answer = await llm.complete(prompt, "".join(words).strip(), max_tokens=_room(words))
        output = output_words(answer)
        alignment = align(words, output)
        self.passages += 1
        self.words += len(words)
        self.agreed += alignment.agreement * len(words)
        if 1 - alignment.agreement > self.limit:
            self.rejected += 1
            self.worst = max(self.worst, 1 - alignment.agreement)
            return None
        return output, alignment

    def outcome(self) -> StepOutcome:
        agreement = round(self.agreed / self.words, 4) if self.words else 1.0
        changed = f"{100 * self.worst:.1f} % of the words (limit {100 * self.limit:g} %)"
        if self.passages and self.rejected == self.passages:
            why = f"the model changed {changed}; the text is kept"
            return StepOutcome(step=self.step, status="rejected", reason=why, agreement=agreement)
        reason = None
        if self.rejected:
            reason = f"{self.rejected} of {self.passages} passages kept their text: the model changed up to {changed}"
        return StepOutcome(step=self.step, status="done", reason=reason, agreement=agreement)


async def _punctuate(segments: list[Segment], llm: ChatClient, max_change: float) -> tuple[list[Segment], StepOutcome]:
    current = [tokens(s) for s in segments]
    tally = _Tally(PostStep.PUNCTUATION, max_change)
    for piece in pieces(segments, PUNCTUATION_WORDS):
        words = [current[s][k] for s, k in piece.words]
        if (answer := await tally.ask(llm, PUNCTUATION_PROMPT, words)) is None:
            continue
        for (s, k), word in zip(piece.words, respelled(words, *answer), strict=True):
            current[s][k] = word
    return [with_tokens(s, t) for s, t in zip(segments, current, strict=True)], tally.outcome()


async def _paragraphs(segments: list[Segment], llm: ChatClient, max_change: float) -> tuple[list[Segment], StepOutcome]:
    starts: set[int] = set()
    tally = _Tally(PostStep.PARAGRAPHS, max_change)
    for piece in pieces(segments, PARAGRAPH_WORDS):
        starts.add(piece.segments[0])
        words = [tokens(segments[s])[k] for s, k in piece.words]
        if (answer := await tally.ask(llm, PARAGRAPHS_PROMPT, words)) is None:
            continue
        for start in paragraph_starts(words, *answer):
            s, k = piece.words[start]
            # Paragraphs are made of whole segments: a break inside one moves to the nearer segment boundary.
            size = len(tokens(segments[s]))
            starts.add(s if k < size / 2 else min(s + 1, len(segments) - 1))
    # In a diarized transcript a new speaker always starts a paragraph, whatever the model made of the text.
    starts.update(n for n in range(1, len(segments)) if segments[n].speaker != segments[n - 1].speaker)
    numbered = []
    paragraph = -1
    for n, segment in enumerate(segments):
        paragraph += n in starts or n == 0
        numbered.append(segment.model_copy(update={"paragraph": paragraph}))
    return numbered, tally.outcome()


async def _summary(segments: list[Segment], llm: ChatClient) -> tuple[str | None, StepOutcome]:
    passages = pieces(segments, SUMMARY_WORDS)
    if not passages:
        return None, StepOutcome(step=PostStep.SUMMARY, status="skipped", reason="the transcript has no words")
    parts = []
    for piece in passages:
        text = "".join(tokens(segments[s])[k] for s, k in piece.words).strip()
        parts.append((await llm.complete(SUMMARY_PROMPT, text, max_tokens=SUMMARY_TOKENS)).strip())
    if len(parts) > 1:
        parts = [(await llm.complete(SUMMARY_PROMPT, "\n\n".join(parts), max_tokens=SUMMARY_TOKENS)).strip()]
    summary = parts[0]
    if not normal(summary):
        return None, StepOutcome(step=PostStep.SUMMARY, status="rejected", reason="the model's summary was empty")
    said = {normal(t) for segment in segments for t in tokens(segment)}
    longer = [w for w in (normal(t) for t in summary.split()) if len(w) >= 4]
    grounded = round(sum(w in said for w in longer) / len(longer), 4) if longer else 0.0
    if grounded < SUMMARY_GROUNDING:
        reason = (
            f"{100 * grounded:.0f} % of the summary's words occur in the transcript (at least "
            f"{100 * SUMMARY_GROUNDING:.0f} % needed): it is not about what was said"
        )
        return None, StepOutcome(step=PostStep.SUMMARY, status="rejected", reason=reason, agreement=grounded)
    return summary[:SUMMARY_CHARS], StepOutcome(step=PostStep.SUMMARY, status="done", agreement=grounded)
