"""Faults: a worker killed mid-job and a broker restarted mid-job must leave every accepted job completed once,
with no missing and no duplicated segment."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    response = stack.submit(path, language="en")
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def _started(job: dict[str, Any]) -> bool:
    return bool(job["status"] == "processing" and job["progress"] > 0)


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
    job = stack.wait(_submit(stack, long_audio))
    assert job["status"] == "completed" and len(job["result"]["segments"]) >= 4, job
    return job


def test_killed_worker_redoes_the_job_once(stack: RunningStack, long_audio: Path, reference: dict[str, Any]) -> None:
    job_id = _submit(stack, long_audio)
    stack.wait(job_id, _started)
    os.kill(stack.child_pid("worker-0"), signal.SIGKILL)
    job = stack.wait(job_id)
    _assert_same_transcript(job, reference)
    assert "restarted worker-0" in stack.log_path.read_text()


def test_broker_restart_mid_job_loses_nothing(
    stack: RunningStack, broker: KafkaBroker, long_audio: Path, reference: dict[str, Any]
) -> None:
    job_id = _submit(stack, long_audio)
    stack.wait(job_id, _started)
    broker.stop()
    time.sleep(2)
    broker.start()
    job = stack.wait(job_id)
    _assert_same_transcript(job, reference)
    after = stack.wait(_submit(stack, shared("jfk.flac")))
    assert after["status"] == "completed"
