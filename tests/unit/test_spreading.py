"""Chunks dealt to workers: even per worker, whatever partitions each one holds."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from processors.spreading import spread


@st.composite
def assignments(draw: st.DrawFn) -> tuple[int, list[list[int]]]:
    """A topic's partitions shared out among some members, as a group's assignor may (not all need be held)."""
    partitions = draw(st.integers(1, 12))
    members = draw(st.integers(1, partitions))
    owner = draw(st.lists(st.integers(-1, members - 1), min_size=partitions, max_size=partitions))
    return partitions, [[p for p in range(partitions) if owner[p] == m] for m in range(members)]


@given(assignments(), st.integers(0, 60), st.integers(0, 2**32 - 1))
def test_each_worker_gets_its_share_on_partitions_it_holds(
    assignment: tuple[int, list[list[int]]], count: int, start: int
) -> None:
    partitions, owners = assignment
    chosen = spread(count, start, partitions, owners)
    assert len(chosen) == count
    holders = [held for held in owners if held]
    if not holders:  # nobody holds anything yet: round-robin over the topic
        assert chosen == [(start + i) % partitions for i in range(count)]
        return
    member_of = {p: m for m, held in enumerate(holders) for p in held}
    assert all(p in member_of for p in chosen), "only partitions somebody holds"
    shares = Counter(member_of[p] for p in chosen)
    counts = [shares.get(m, 0) for m in range(len(holders))]
    assert max(counts) - min(counts) <= 1, counts
    for m, held in enumerate(holders):
        mine = Counter(p for p in chosen if member_of[p] == m)
        assert max(mine.values(), default=0) - min((mine.get(p, 0) for p in held), default=0) <= 1


def test_the_case_round_robin_got_wrong() -> None:
    # 22 chunks, 4 partitions, two workers with two each: round-robin from partition 0 gave one worker 12.
    round_robin = Counter(p // 2 for p in spread(22, 0, 4))
    assert sorted(round_robin.values()) == [10, 12]
    dealt = Counter(p // 2 for p in spread(22, 0, 4, [[0, 1], [2, 3]]))
    assert sorted(dealt.values()) == [11, 11]
    three = Counter(spread(30, 7, 4, [[0, 1], [2], [3]]))
    assert three[0] + three[1] == three[2] == three[3] == 10


def test_jobs_start_on_different_workers() -> None:
    firsts = {spread(1, start, 4, [[0, 1], [2, 3]])[0] // 2 for start in range(8)}
    assert firsts == {0, 1}
