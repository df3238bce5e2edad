"""The API's reader of live output against the real broker: it starts at the end and hands each session its events."""

from __future__ import annotations

import asyncio

import pytest

from api.live_hub import LiveHub
from ingest import EventPublisher, KafkaSettings
from schemas.live import LiveAccepted

pytestmark = pytest.mark.kafka


def test_the_hub_reads_from_the_end_and_delivers_to_the_waiting_session(
    kafka: tuple[KafkaSettings, EventPublisher],
) -> None:
    settings, publisher = kafka
    topics = settings.topics
    hub = LiveHub(settings)

    async def scenario() -> tuple[list[str], bool]:
        # Sent before the hub started: an old session's answer, which nobody may receive.
        await publisher.publish(topics.live_output, "sess_a", LiveAccepted(job_id="sess_a", worker="old"))
        hub.start(asyncio.get_running_loop())
        for _ in range(100):
            if hub.ready:
                break
            await asyncio.sleep(0.1)
        queue = hub.register("sess_a")
        other = hub.register("sess_b")
        await publisher.publish(topics.live_output, "sess_a", LiveAccepted(job_id="sess_a", worker="new"))
        await publisher.publish(topics.live_output, "sess_c", LiveAccepted(job_id="sess_c", worker="nobody's"))
        first = await asyncio.wait_for(queue.get(), 20)
        await asyncio.sleep(0.5)
        assert isinstance(first, LiveAccepted)
        return [first.worker], queue.empty() and other.empty()

    try:
        workers, nothing_else = asyncio.run(scenario())
    finally:
        hub.stop()
    assert workers == ["new"], "only what was said after the hub started, to the session it is for"
    assert nothing_else
    assert not hub.ready, "a stopped hub is not ready"
