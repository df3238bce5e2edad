"""The chunk planner, for any speech regions: chunks tile the recording, hold all the speech, fit a window."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.chunk_plan import PlannedRecording
from processors.planning import PlannedChunk, plan_chunks
from processors.speech import Region
from processors.timeline import within

RATE = 1000  # samples per second in these tests: small numbers, same arithmetic


@st.composite
def recordings(draw: st.DrawFn) -> tuple[list[Region], int]:
    """Speech regions as VAD gives them: ordered, apart or touching, some split inside speech."""
    regions = []
    at = draw(st.integers(0, 3 * RATE))
    for _ in range(draw(st.integers(0, 40))):
        length = draw(st.integers(50, 28 * RATE))
        gap = draw(st.sampled_from([0, 0, 10, 300, 900, 1500, 5000]))
        forced = gap == 0 and draw(st.booleans())
        regions.append(
            Region(at, at + length, forced, (at + min(100, length // 4), at + length - min(100, length // 4)))
        )
        at += length + gap
    return regions, at + draw(st.integers(0, 2 * RATE))


TARGET, OVERLAP = 28 * RATE, RATE


def _speech(chunk: PlannedChunk) -> int:
    return sum(e - s for s, e in chunk.spans)


@settings(max_examples=300, deadline=None)
@given(recordings(), st.sampled_from([0, 500, RATE]))
def test_chunks_tile_the_recording_and_hold_every_region(recording: tuple[list[Region], int], join: int) -> None:
    regions, length = recording
    chunks = plan_chunks(regions, length, target=TARGET, overlap=OVERLAP, join_gap=join)
    if not regions:
        assert chunks == []
        return
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert chunks[0].owned[0] == 0 and chunks[-1].owned[1] == length
    for before, after in itertools.pairwise(chunks):
        assert before.owned[1] == after.owned[0]
    for chunk in chunks:
        lo, hi = chunk.owned
        assert lo < hi
        assert all(0 <= s < e <= length for s, e in chunk.spans)
        assert all(a[1] < b[0] for a, b in itertools.pairwise(chunk.spans)), "spans are ordered and apart"
        assert _speech(chunk) <= TARGET + 2 * OVERLAP, "a chunk fits one window"
        # context beyond the owned span only where the cut is inside speech
        if not chunk.cut_in_speech:
            assert chunk.spans[0][0] >= lo
    for region in regions:
        # every sample of speech is in the audio of the chunk that owns it
        for sample in {region.start, (region.start + region.end) // 2, region.end - 1}:
            owner = next(c for c in chunks if c.owned[0] <= sample < c.owned[1])
            assert any(s <= sample < e for s, e in owner.spans), (sample, owner)


@given(recordings())
def test_cuts_fall_between_regions_unless_speech_runs_on(recording: tuple[list[Region], int]) -> None:
    regions, length = recording
    chunks = plan_chunks(regions, length, target=TARGET, overlap=OVERLAP)
    for chunk in chunks[1:]:
        cut = chunk.owned[0]
        inside = [r for r in regions if r.start < cut < r.end]
        if not chunk.cut_in_speech:
            assert not inside, f"cut {cut} is inside {inside}"


def test_a_short_recording_is_one_chunk() -> None:
    chunks = plan_chunks([Region(300, 9000)], 11_000, target=TARGET, overlap=OVERLAP)
    assert len(chunks) == 1
    assert chunks[0].owned == (0, 11_000) and chunks[0].spans == ((300, 9000),)


def test_the_cut_goes_to_the_longest_pause_near_the_end() -> None:
    # five 5 s regions; the pause after the fourth is long, the others short
    starts = [0, 5200, 10_400, 15_600, 22_000]
    regions = [Region(s, s + 5000, False, (s + 100, s + 4900)) for s in starts]
    chunks = plan_chunks(regions, 27_000, target=22 * RATE, overlap=OVERLAP)
    assert chunks[0].owned[1] == (20_600 + 22_000) // 2, "cut in the long pause, not after the third region"


def test_speech_longer_than_a_chunk_is_cut_with_context_on_both_sides() -> None:
    chunks = plan_chunks([Region(0, 60 * RATE)], 60 * RATE, target=TARGET, overlap=OVERLAP)
    assert len(chunks) == 3 and all(_speech(c) <= TARGET + 2 * OVERLAP for c in chunks)
    second = chunks[1]
    assert second.cut_in_speech and second.spans[0][0] == second.owned[0] - OVERLAP
    assert second.spans[-1][1] == second.owned[1] + OVERLAP


@settings(max_examples=200, deadline=None)
@given(recordings(), st.sampled_from([0, 500, RATE]))
def test_a_chunks_voiced_speech_is_the_speech_inside_its_spans(recording: tuple[list[Region], int], join: int) -> None:
    regions, length = recording
    chunks = plan_chunks(regions, length, target=TARGET, overlap=OVERLAP, join_gap=join)
    planned = PlannedRecording(np.zeros(0, np.float32), chunks, tuple(sorted(r.voiced for r in regions)))
    heard = 0
    for chunk in chunks:
        voiced = planned.voiced(chunk)
        assert voiced == sorted(voiced) and all(s < e for s, e in voiced)
        assert all(any(a <= s and e <= b for a, b in chunk.spans) for s, e in voiced), "inside one span"
        assert all(any(a <= s and e <= b for a, b in planned.speech) for s, e in voiced), "inside the speech"
        heard += sum(e - s for s, e in voiced)
    # Chunks share only the overlap around cuts inside speech, so every voiced sample is in some chunk.
    assert heard >= sum(e - s for s, e in planned.speech)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 50), st.integers(1, 50)), max_size=30),
    st.integers(0, 3000),
    st.integers(0, 3000),
)
def test_within_finds_what_a_scan_finds(steps: list[tuple[int, int]], lo: int, hi: int) -> None:
    ordered, at = [], 0
    for gap, length in steps:  # spans in order, apart (touching allowed)
        ordered.append((at + gap, at + gap + length))
        at += gap + length
    scanned = [(max(s, lo), min(e, hi)) for s, e in ordered if min(e, hi) > max(s, lo)]
    assert within(ordered, lo, hi) == scanned
