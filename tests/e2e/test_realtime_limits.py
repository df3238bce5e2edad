"""A realtime session's limits on a stack of its own with a short maximum length: a quiet client is kept (pings,
no timeout) and still served, and the session ends at its maximum length even when the client sends nothing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from tests.e2e.test_realtime import pcm16, stream, ws_url
from tests.support.accuracy import normalise
from tests.support.stack import RunningStack, start_stack, stop_stack

pytestmark = pytest.mark.e2e

MAX_SESSION_S = 25.0


@pytest.fixture(scope="module")
def short_sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    env = {"SCRIBEFLOW_REALTIME__MAX_SESSION_S": str(MAX_SESSION_S), "SCRIBEFLOW_REALTIME__PING_S": "1"}
    running = start_stack(tmp_path_factory.mktemp("short-sessions"), env=env)
    yield running
    assert stop_stack(running) == 0, running.log_tail()


def test_a_quiet_session_stays_up_then_ends_at_its_maximum_length(short_sessions: RunningStack) -> None:
    stack = short_sessions
    stack.wait_ready()

    async def session() -> tuple[dict[str, Any], list[dict[str, Any]], float, float]:
        url = ws_url(stack, f"intent=transcription&api_key={stack.api_key}")
        # A fresh stack is ready before its worker's live agent has joined its group: until then a session is
        # refused (`no_worker`), which is not what this test is about.
        deadline = time.monotonic() + 120
        while True:
            ws = await websockets.connect(url, ping_interval=None)
            created = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if created["type"] == "session.created":
                break
            await ws.close()
            assert time.monotonic() < deadline, (created, stack.log_tail())
            await asyncio.sleep(2)
        opened = time.time()
        async with ws:
            # Nothing sent for many of the server's ping intervals: the connection and the session hold.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 6)
            events: list[dict[str, Any]] = []
            await stream(lambda e: ws.send(json.dumps(e)), pcm16(1.5), 24_000, speed=4.0)
            while not events or events[-1]["type"] != "error":
                events.append(json.loads(await asyncio.wait_for(ws.recv(), MAX_SESSION_S + 30)))
            ended = time.time() - opened
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            return created, events, ended, opened

    created, events, ended, opened = asyncio.run(session())
    assert created["type"] == "session.created"
    assert abs(created["session"]["expires_at"] - (opened + MAX_SESSION_S)) < 3
    completed = [e for e in events if e["type"].endswith("transcription.completed")]
    assert completed and "ask what you can do for your country" in normalise(completed[-1]["transcript"])
    error = events[-1]["error"]
    assert error["code"] == "session_expired" and f"{MAX_SESSION_S:.0f} s" in error["message"], events[-1]
    # The client went quiet after its turn (well before the end): the session ended on time all the same.
    assert MAX_SESSION_S - 2 < ended < MAX_SESSION_S + 5, ended
