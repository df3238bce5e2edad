"""Which partition each chunk of a job goes to: evenly over the transcribe group's workers, not only its partitions.

Round-robin over partitions is even per partition, not per worker. A job of 22 chunks on 4 partitions puts 6 chunks
on two partitions and 5 on the other two; when both sixes belong to one of two workers, that worker decodes 12
chunks to the other's 10 and the job waits on it alone for its last batch. On a 2-core machine that idle core cost
a ten-minute recording about a tenth of its time in half the runs (which worker got the extra chunks follows the
job id). With more workers than the partitions divide evenly among (3 workers on 4 partitions), round-robin gives
one worker twice the others' share of every job.

So the split asks the broker which member of the group holds which partitions and deals the chunks to the members
in turn, each member's share round-robin over its own partitions. The answer is only a hint: a rebalance after it
moves partitions with their chunks, as before, and without an answer (no broker reply, a group still forming) the
chunks go round-robin over all partitions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

Owners = list[list[int]]


def spread(count: int, start: int, partitions: int, owners: Sequence[Sequence[int]] = ()) -> list[int]:
    """A partition for each of `count` chunks. `owners`: the partitions each member holds; `start` rotates where
    a job begins (members and partitions), so the remainders of many jobs do not all land on the same worker."""
    members = sorted(sorted({p for p in held if 0 <= p < partitions}) for held in owners)
    members = [held for held in members if held] or [list(range(partitions))]
    dealt = [0] * len(members)
    chosen = []
    for index in range(count):
        member = (start + index) % len(members)
        held = members[member]
        chosen.append(held[(start + dealt[member]) % len(held)])
        dealt[member] += 1
    return chosen


class GroupMembers:
    """The partitions of one topic that each member of a consumer group holds, asked of the broker; answers are
    kept for a few seconds, so a burst of jobs costs one request."""

    def __init__(self, bootstrap: str, *, cache_s: float = 5.0, timeout_s: float = 2.0) -> None:
        self._bootstrap = bootstrap
        self._cache_s = cache_s
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._client: Any = None
        self._known: dict[tuple[str, str], tuple[float, Owners]] = {}

    def owners(self, group: str, topic: str) -> Owners:
        """Each member's partitions of `topic` (members holding none left out); empty when the broker cannot say."""
        with self._lock:
            at, owners = self._known.get((group, topic), (0.0, []))
            if at and time.monotonic() - at < self._cache_s:
                return owners
            try:
                owners = self._describe(group, topic)
            except Exception as e:  # a hint only: the chunks still go out, round-robin
                log.warning("could not read the members of %s (chunks go round-robin): %r", group, e)
                owners = []
            self._known[(group, topic)] = (time.monotonic(), owners)
            return owners

    def _describe(self, group: str, topic: str) -> Owners:
        if self._client is None:
            from confluent_kafka.admin import AdminClient

            self._client = AdminClient({"bootstrap.servers": self._bootstrap})
        future = self._client.describe_consumer_groups([group], request_timeout=self._timeout_s)[group]
        description = future.result(timeout=self._timeout_s)
        owners = []
        for member in description.members:
            assigned = member.assignment.topic_partitions if member.assignment else []
            held = sorted(tp.partition for tp in assigned if tp.topic == topic)
            if held:
                owners.append(held)
        return owners
