"""Faults: a worker killed mid-job and a broker restarted mid-job must leave every accepted job completed once,
with no missing and no duplicated segment."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stack.broker import KafkaBroker, ensure_broker_jars
from tests.support.audio import long_speech, shared
from tests.support.ports import free_port
from tests.support.stack import RunningStack, start_stack, stop_stack

pytestmark = pytest.mark.e2e
CACHE = Path(__file__).resolve().parents[2] / ".cache"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    data = tmp_path_factory.mktemp("fault-kafka")
    broker = KafkaBroker(
        libs_dir=ensure_broker_jars(CACHE / "kafka"), data_dir=data, port=free_port(), log_file=data / "kafka.log"
    )
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def stack(broker: KafkaBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(tmp_path_factory.mktemp("fault-stack"), bootstrap=broker.bootstrap)
    yield running
    assert stop_stack(running) == 0, running.log_tail()


@pytest.fixture(scope="module")
def long_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return long_speech(tmp_path_factory.mktemp("audio") / "long.flac")


def _submit(stack: RunningStack, path: Path) -> str:
    response = httpx.post(
        f"{stack.base_url}/v1/jobs", files={"file": (path.name, path.read_bytes())}, data={"language": "en"}, timeout=60
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def _job(stack: RunningStack, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = httpx.get(f"{stack.base_url}/v1/jobs/{job_id}", timeout=10).json()
    return job


def _wait_until(stack: RunningStack, job_id: str, done: Any, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = _job(stack, job_id)
        if done(job):
            return job
        time.sleep(0.2)
    pytest.fail(f"job {job_id} never reached the expected state: {_job(stack, job_id)}\n{stack.log_tail()}")


def _finished(job: dict[str, Any]) -> bool:
    return job["status"] in ("completed", "failed")


def _assert_same_transcript(job: dict[str, Any], reference: dict[str, Any]) -> None:
    assert job["status"] == "completed", job
    segments = job["result"]["segments"]
    assert [s["id"] for s in segments] == list(range(len(segments)))
    starts = [s["start"] for s in segments]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert job["result"]["text"] == reference["result"]["text"]


@pytest.fixture(scope="module")
def reference(stack: RunningStack, long_audio: Path) -> dict[str, Any]:
    """The same audio transcribed without interference: what every faulted run must reproduce."""
    job = _wait_until(stack, _submit(stack, long_audio), _finished)
    assert job["status"] == "completed" and len(job["result"]["segments"]) >= 4, job
    return job


def test_killed_worker_redoes_the_job_once(stack: RunningStack, long_audio: Path, reference: dict[str, Any]) -> None:
    job_id = _submit(stack, long_audio)
    _wait_until(stack, job_id, lambda j: j["status"] == "processing" and j["progress"] > 0)
    os.kill(stack.child_pid("worker-0"), signal.SIGKILL)
    job = _wait_until(stack, job_id, _finished)
    _assert_same_transcript(job, reference)
    assert "restarted worker-0" in stack.log_path.read_text()


def test_broker_restart_mid_job_loses_nothing(
    stack: RunningStack, broker: KafkaBroker, long_audio: Path, reference: dict[str, Any]
) -> None:
    job_id = _submit(stack, long_audio)
    _wait_until(stack, job_id, lambda j: j["status"] == "processing" and j["progress"] > 0)
    broker.stop()
    time.sleep(2)
    broker.start()
    job = _wait_until(stack, job_id, _finished)
    _assert_same_transcript(job, reference)
    after = _wait_until(stack, _submit(stack, shared("jfk.flac")), _finished)
    assert after["status"] == "completed"
