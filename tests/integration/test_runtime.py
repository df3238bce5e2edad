"""The workers' runtime against the real broker: tables restored from their changelog, agents that store offsets
only after the work and hand partitions over between batches."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer

from ingest import EventPublisher, KafkaSettings
from processors.runtime import Agent, AgentRunner, ChangelogTable, Message
from processors.spreading import GroupMembers

pytestmark = pytest.mark.kafka


def test_a_table_comes_back_from_its_changelog(kafka: tuple[KafkaSettings, EventPublisher]) -> None:
    settings, publisher = kafka
    topic = settings.topics.stitch_state
    table = ChangelogTable(topic=topic, bootstrap=settings.bootstrap_servers, publisher=publisher)
    table.restore([0, 1])
    table.set(0, b"a", b"1")
    table.set(0, b"a", b"2")
    table.set(1, b"b", b"3")
    table.set(1, b"gone", b"4")
    table.set(1, b"gone", None)
    asyncio.run(table.flush())
    again = ChangelogTable(topic=topic, bootstrap=settings.bootstrap_servers, publisher=publisher)
    again.restore([0, 1])
    assert again.get(0, b"a") == b"2" and again.get(1, b"b") == b"3"
    assert again.get(1, b"gone") is None and again.get(0, b"b") is None, "keys stay in their partition"
    again.forget([1])
    assert again.get(1, b"b") is None and again.get(0, b"a") == b"2"


def _run(agent: Agent, settings: KafkaSettings, group: str, until: threading.Event) -> None:
    stopping = threading.Event()
    runner = AgentRunner(
        agent,
        bootstrap=settings.bootstrap_servers,
        group_id=group,
        instance_id=None,
        stopping=stopping,
        ready=lambda: None,
    )
    runner.start()
    until.wait(60)
    stopping.set()
    runner.join(30)
    assert not runner.is_alive()


def test_an_agent_takes_batches_and_commits_only_what_it_handled(kafka: tuple[KafkaSettings, EventPublisher]) -> None:
    settings, _ = kafka
    topic = settings.topics.chunks
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    for n in range(10):
        producer.produce(topic, key=f"k{n}".encode(), value=f"v{n}".encode(), partition=n % 2)
    producer.flush(10)
    seen: list[list[Message]] = []
    enough = threading.Event()

    async def handle(messages: list[Message]) -> None:
        seen.append(messages)
        if sum(len(b) for b in seen) >= 10:
            enough.set()

    agent = Agent("test", topic, handle, batch_size=4, batch_window_s=0.5)
    _run(agent, settings, "runtime-test", enough)
    assert all(len(batch) <= 4 for batch in seen)
    assert sorted(m.value or b"" for batch in seen for m in batch) == sorted(f"v{n}".encode() for n in range(10))

    # The same group starts where the last run committed: only new events arrive.
    producer.produce(topic, key=b"late", value=b"late", partition=0)
    producer.flush(10)
    seen.clear()
    later = threading.Event()

    async def handle_later(messages: list[Message]) -> None:
        seen.append(messages)
        later.set()

    started = time.monotonic()
    _run(Agent("test", topic, handle_later, batch_size=4, batch_window_s=0.5), settings, "runtime-test", later)
    assert [m.value for batch in seen for m in batch] == [b"late"], time.monotonic() - started


def test_the_broker_says_which_member_holds_which_partitions(kafka: tuple[KafkaSettings, EventPublisher]) -> None:
    settings, _ = kafka
    topic = settings.topics.chunks
    group = f"members-{uuid.uuid4().hex[:8]}"
    consumers = [
        Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": group, "client.id": f"c{n}"})
        for n in range(2)
    ]
    members = GroupMembers(settings.bootstrap_servers, cache_s=0)
    try:
        for consumer in consumers:
            consumer.subscribe([topic])
        owners: list[list[int]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for consumer in consumers:
                consumer.poll(0.2)
            owners = members.owners(group, topic)
            if len(owners) == 2:
                break
        assert sorted(p for held in owners for p in held) == [0, 1], owners
        assert all(len(held) == 1 for held in owners), "each member holds one of the two partitions"
        assert members.owners(group, settings.topics.segments) == [], "members hold nothing of another topic"
    finally:
        for consumer in consumers:
            consumer.close()
    assert GroupMembers("127.0.0.1:1", cache_s=0, timeout_s=0.5).owners(group, topic) == [], "no broker: no hint"
