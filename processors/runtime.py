"""Running agents on Kafka: a consumer loop per agent, and tables kept in compacted changelog topics.

Each agent is a thread with its own confluent-kafka consumer (its own consumer group), its own asyncio loop for
the step it runs, and the process's one producer. The contract is librdkafka's, used plainly:

- a batch of up to `batch_size` events is taken within `batch_window_s`, handed to the step, and only once the
  step returned (everything it produced confirmed by the broker, table writes included) are its offsets stored
  for the next commit; a step that raises ends the process, so nothing it half did is acknowledged;
- partitions are only ever taken away between two batches (the rebalance callbacks run inside `consume`), and
  offsets stored so far are committed before they go;
- with an instance id, a restarted worker rejoins its group under static membership and gets its own partitions
  back without a rebalance of the others.

A table is a dictionary per partition of its changelog topic, read from the beginning when the partition is
assigned to the agent that owns the table and forgotten when it is taken away; writes go to the changelog
partition of the event being processed and are confirmed before that event's offset is stored.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ingest.publisher import EventPublisher, Record

log = logging.getLogger(__name__)

EXIT_FOR_REDELIVERY = 75  # EX_TEMPFAIL: the supervisor restarts the worker
POLL_INTERVAL_S = 0.5
RESTORE_TIMEOUT_S = 120.0


def agent_group(group_id: str, agent: str) -> str:
    """The consumer group of one agent of the workers' group `group_id`."""
    return f"{group_id}-{agent}"


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class ChangelogTable:
    """A key-value table per partition, durable in a compacted topic with the partitions of its source topic."""

    def __init__(self, *, topic: str, bootstrap: str, publisher: EventPublisher) -> None:
        self.topic = topic
        self._bootstrap = bootstrap
        self._publisher = publisher
        self._data: dict[int, dict[bytes, bytes]] = {}
        self._pending: list[Record] = []

    def restore(self, partitions: Sequence[int]) -> None:
        """Read each partition's changelog from its start; blocking, called when the partitions are assigned."""
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        if not partitions:
            return
        reader = Consumer(
            {"bootstrap.servers": self._bootstrap, "group.id": f"{self.topic}-restore", "enable.auto.commit": False}
        )
        try:
            for partition in partitions:
                data: dict[bytes, bytes] = {}
                low, high = _watermarks(reader, TopicPartition(self.topic, partition))
                if high > low:
                    reader.assign([TopicPartition(self.topic, partition, OFFSET_BEGINNING)])
                    position = low
                    deadline = time.monotonic() + RESTORE_TIMEOUT_S
                    while position < high:
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"{self.topic}[{partition}] could not be read to its end")
                        message = reader.poll(5.0)
                        offset = None if message is None or message.error() else message.offset()
                        if message is None or offset is None:
                            continue
                        position = offset + 1
                        key, value = message.key(), message.value()
                        if key is None:
                            continue
                        if value is None:
                            data.pop(key, None)
                        else:
                            data[key] = value
                self._data[partition] = data
                log.info("restored %d keys of %s[%d]", len(data), self.topic, partition)
        finally:
            reader.close()

    def forget(self, partitions: Sequence[int]) -> None:
        for partition in partitions:
            self._data.pop(partition, None)

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self._data.get(partition, {}).get(key)

    def set(self, partition: int, key: bytes, value: bytes | None) -> None:
        """`None` deletes. Durable once `flush()` returned; writes of one partition keep their order."""
        data = self._data.setdefault(partition, {})
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
        self._pending.append(Record(self.topic, key, value, partition))

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            await self._publisher.publish_raw(pending)


Handler = Callable[[list[Message]], Awaitable[None]]


@dataclass
class Agent:
    name: str
    topic: str
    handle: Handler
    batch_size: int = 1
    batch_window_s: float = POLL_INTERVAL_S
    tables: tuple[ChangelogTable, ...] = ()
    """Tables restored for the partitions this agent is assigned, and flushed after each batch."""
    latest: bool = False
    """A new consumer group starts at the end of the topic, not its beginning (for input that goes stale)."""


class AgentRunner(threading.Thread):
    def __init__(
        self,
        agent: Agent,
        *,
        bootstrap: str,
        group_id: str,
        instance_id: str | None,
        stopping: threading.Event,
        ready: Callable[[], None],
    ) -> None:
        super().__init__(name=f"agent-{agent.name}", daemon=True)
        self.agent = agent
        self._servers = bootstrap
        self._group_id = agent_group(group_id, agent.name)
        self._instance_id = f"{instance_id}-{agent.name}" if instance_id else None
        self._stopping = stopping
        self._ready = ready

    def run(self) -> None:
        try:
            self._run()
        except Exception:
            log.exception("agent %s failed; exiting so its events are redelivered", self.agent.name)
            os._exit(EXIT_FOR_REDELIVERY)

    def _run(self) -> None:
        from confluent_kafka import Consumer, KafkaError

        config: dict[str, Any] = {
            "bootstrap.servers": self._servers,
            "group.id": self._group_id,
            "client.id": self._group_id,
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 1_000,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "latest" if self.agent.latest else "earliest",
            # A batch is processed between two polls: splitting hours of audio on a CPU takes minutes.
            "max.poll.interval.ms": 3_600_000,
            # A killed worker's partitions move to the others after this long.
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 3_000,
        }
        if self._instance_id:
            config["group.instance.id"] = self._instance_id
        consumer = Consumer(config)
        consumer.subscribe([self.agent.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        loop = asyncio.new_event_loop()
        self._ready()
        try:
            while not self._stopping.is_set():
                batch = consumer.consume(num_messages=self.agent.batch_size, timeout=self.agent.batch_window_s)
                messages = []
                for m in batch:
                    error = m.error()
                    # librdkafka reports a fatal error as an event with code _FATAL whose own `fatal()` is
                    # false (the cause is behind it), so both are checked.
                    if error is not None and (error.fatal() or error.code() == KafkaError._FATAL):
                        # e.g. fenced after a broker restart under static membership: this consumer is done for;
                        # a restarted process rejoins under the same instance id.
                        raise RuntimeError(f"{self.agent.name} consumer failed: {error}")
                    topic, partition, offset = m.topic(), m.partition(), m.offset()
                    if error is not None or topic is None or partition is None or offset is None:
                        log.warning("%s consumer: %s", self.agent.name, error)
                        continue
                    messages.append(Message(topic, partition, offset, m.key(), m.value()))
                if not messages:
                    continue
                loop.run_until_complete(self._handle(messages))
                consumer.store_offsets(offsets=_next_offsets(messages))
        finally:
            consumer.close()  # commits the stored offsets and leaves (or, with an instance id, keeps) the group
            loop.close()

    async def _handle(self, messages: list[Message]) -> None:
        await self.agent.handle(messages)
        for table in self.agent.tables:
            await table.flush()

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        numbers = [tp.partition for tp in partitions]
        log.info("%s assigned %s%s", self.agent.name, self.agent.topic, numbers)
        for table in self.agent.tables:
            table.restore(numbers)

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        numbers = [tp.partition for tp in partitions]
        log.info("%s revoked %s%s", self.agent.name, self.agent.topic, numbers)
        try:
            consumer.commit(asynchronous=False)
        except Exception as e:  # nothing stored since the last commit
            log.debug("no commit on revoke: %s", e)
        for table in self.agent.tables:
            table.forget(numbers)


def _watermarks(reader: Any, partition: Any) -> tuple[int, int]:
    """The partition's first and next offsets; retried while the broker elects a leader (after a restart)."""
    from confluent_kafka import KafkaException

    deadline = time.monotonic() + RESTORE_TIMEOUT_S
    while True:
        try:
            low, high = reader.get_watermark_offsets(partition, timeout=10)
            return int(low), int(high)
        except KafkaException as e:
            transient = e.args[0].retriable() or "leader" in str(e).lower()
            if not transient or time.monotonic() > deadline:
                raise
            log.warning("waiting for %s[%d]: %s", partition.topic, partition.partition, e.args[0].str())
            time.sleep(1.0)


def _next_offsets(messages: Sequence[Message]) -> list[Any]:
    from confluent_kafka import TopicPartition

    highest: defaultdict[tuple[str, int], int] = defaultdict(lambda: -1)
    for m in messages:
        highest[(m.topic, m.partition)] = max(highest[(m.topic, m.partition)], m.offset)
    return [TopicPartition(topic, partition, offset + 1) for (topic, partition), offset in highest.items()]
