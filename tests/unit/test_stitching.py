"""The stitcher, for any plan and word timeline: each word comes out once, in order, inside the audio.

The model of a transcription: words lie inside speech regions; the planner cuts the recording into chunks; each
chunk hears the words that lie wholly inside its audio and reports them with its own small timing error; results
arrive in any order, some twice, some after a crash that lost the stitcher's last write.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.planning import plan_chunks
from processors.speech import Region
from processors.stitching import merge_words, stitch
from schemas import ChunkTranscribed, ChunkWord, Segment, TimeSpan, WindowStats
from schemas.state import EdgeWord, StitchState, StitchWord

RATE = 1000
VOCABULARY = ["the", "the", "words", "cat", "Mr.", "sat.", "yes?", "on,", "mat"]


@dataclass(frozen=True)
class Spoken:
    text: str
    start: int
    end: int


@st.composite
def timelines(draw: st.DrawFn) -> tuple[list[Region], list[Spoken], int]:
    regions: list[Region] = []
    words: list[Spoken] = []
    at = draw(st.integers(0, 2000))
    for _ in range(draw(st.integers(1, 12))):
        length = draw(st.integers(400, 40_000))
        end = at + length
        cursor = at + draw(st.integers(0, 150))
        while True:
            duration = draw(st.integers(150, 600))
            if cursor + duration > end:
                break
            words.append(Spoken(draw(st.sampled_from(VOCABULARY)), cursor, cursor + duration))
            cursor += duration + draw(st.integers(80, 500))
        gap = draw(st.sampled_from([0, 0, 300, 1200, 4000]))
        regions.append(Region(at, end, gap == 0 and draw(st.booleans())))
        at = end + gap
    return regions, words, at + draw(st.integers(0, 1000))


def _results(regions: list[Region], words: list[Spoken], length: int, seed: int) -> list[ChunkTranscribed]:
    rng = random.Random(seed)
    target, overlap = 28 * RATE, RATE
    chunks = plan_chunks(regions, length, target=target, overlap=overlap, join_gap=500)
    results = []
    for chunk in chunks:
        shift = rng.uniform(-0.06, 0.06)
        heard = [w for w in words if any(s <= w.start and w.end <= e for s, e in chunk.spans)]
        results.append(
            ChunkTranscribed(
                job_id="job",
                index=chunk.index,
                count=len(chunks),
                owned=TimeSpan(start=chunk.owned[0] / RATE, end=chunk.owned[1] / RATE),
                overlap_s=overlap / RATE,
                cut_in_speech=chunk.cut_in_speech,
                words=[
                    ChunkWord(
                        word=" " + w.text,
                        start=max(0.0, w.start / RATE + shift),
                        end=max(0.0, w.end / RATE + shift),
                        probability=0.9,
                        tokens=[len(w.text)],
                    )
                    for w in heard
                ],
                windows=[
                    WindowStats(seek=0, avg_logprob=-0.2, no_speech_prob=0.01, compression_ratio=1.2, temperature=0)
                ],
                language="en",
                duration=length / RATE,
            )
        )
    return results


class _Run:
    """The stitch agent's bookkeeping, in memory: state, parked results, and what reached the broker."""

    def __init__(self) -> None:
        self.state: StitchState | None = None
        self.parked: dict[int, ChunkTranscribed] = {}
        self.segments: dict[int, Segment] = {}
        self.completions = 0

    def deliver(self, result: ChunkTranscribed, *, crash: bool = False) -> None:
        step = stitch(self.state, result, self.parked.get)
        for segment in step.segments:
            assert self.segments.get(segment.id, segment) == segment, "a re-sent segment must be the same fact"
            self.segments[segment.id] = segment
        self.completions += step.completed
        if crash:  # the events went out, the state write did not: the result will come again
            return
        if step.park is not None:
            self.parked[step.park.index] = step.park
        self.state = step.state
        for index in step.unpark:
            del self.parked[index]


def _spoken_in_order(run: _Run) -> list[str]:
    ordered = [run.segments[i] for i in range(len(run.segments))]
    return [w.word.strip() for s in ordered for w in s.words]


@settings(max_examples=250, deadline=None)
@given(timelines(), st.integers(0, 2**32), st.booleans())
def test_every_word_once_in_order_whatever_the_delivery(
    timeline: tuple[list[Region], list[Spoken], int], seed: int, crashes: bool
) -> None:
    regions, words, length = timeline
    results = _results(regions, words, length, seed)
    rng = random.Random(seed)
    deliveries = results + rng.sample(results, k=len(results) // 3)
    rng.shuffle(deliveries)
    run = _Run()
    for result in deliveries:
        crash = crashes and rng.random() < 0.3
        run.deliver(result, crash=crash)
        if crash:
            run.deliver(result)
    for result in results:  # whatever was lost in a crash is redelivered, as Kafka does for uncommitted events
        run.deliver(result)
    assert run.state is not None and run.state.finished
    assert run.completions >= 1
    assert sorted(run.segments) == list(range(len(run.segments)))
    assert _spoken_in_order(run) == [w.text for w in words]
    for segment in run.segments.values():
        assert 0.0 <= segment.start <= segment.end <= length / RATE + 0.1
        assert segment.words and segment.text == "".join(w.word for w in segment.words)


def _word(text: str, start: float, end: float) -> StitchWord:
    return StitchWord(word=" " + text, start=start, end=end, probability=0.9)


def test_words_heard_by_both_chunks_around_a_cut_in_speech_are_kept_once() -> None:
    # the previous chunk kept "a b" (before the cut at 10.0) and also heard "c d" past it
    edge = [
        EdgeWord(**_word("a", 9.0, 9.4).model_dump(), kept=True),
        EdgeWord(**_word("b", 9.5, 9.9).model_dump(), kept=True),
        EdgeWord(**_word("c", 10.0, 10.4).model_dump(), kept=False),
        EdgeWord(**_word("dee", 10.5, 10.8).model_dump(), kept=False),
    ]
    # this chunk heard "b" again, "c" slightly later, "d" spelled differently, and went on
    words = [_word("b", 9.52, 9.92), _word("c", 10.05, 10.45), _word("d", 10.5, 10.8), _word("e", 11.2, 11.5)]
    kept, new_edge = merge_words(edge, words, owned=TimeSpan(start=10.0, end=30.0), overlap=1.0)
    assert [w.word.strip() for w in kept] == ["c", "d", "e"]
    assert new_edge == []


def test_a_word_only_the_previous_chunk_heard_is_not_lost() -> None:
    edge = [EdgeWord(**_word("late", 10.1, 10.5).model_dump(), kept=False)]
    kept, _ = merge_words(edge, [_word("next", 12.0, 12.3)], owned=TimeSpan(start=10.0, end=20.0), overlap=1.0)
    assert [w.word.strip() for w in kept] == ["late", "next"]


def test_a_failed_chunk_fails_the_job_and_later_results_change_nothing() -> None:
    from schemas import ChunkFailed, JobError

    results = _results([Region(0, 40_000), Region(45_000, 80_000)], [Spoken("hi", 1000, 1400)], 80_000, 1)
    failed = ChunkFailed(
        job_id="job", index=1, count=results[0].count, owned=results[1].owned, error=JobError(code="x", message="m")
    )
    first = stitch(None, results[0], lambda _: None)
    step = stitch(first.state, failed, lambda _: None)
    assert step.error is not None and step.state.finished
    assert not stitch(step.state, results[-1], lambda _: None).changed
