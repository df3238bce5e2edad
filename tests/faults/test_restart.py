"""Stopping and starting the embedded stack on the same data folder: nothing stale blocks the second start,
and what the first one accepted is still there."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.audio import shared
from tests.support.stack import RunningStack, start_stack, stop_stack

pytestmark = pytest.mark.e2e


def _finished(stack: RunningStack, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = httpx.get(f"{stack.base_url}/v1/jobs/{job_id}", timeout=10).json()
        if job["status"] in ("completed", "failed"):
            return job
        time.sleep(0.3)
    pytest.fail(f"job {job_id} did not finish:\n{stack.log_tail()}")


def test_second_start_on_the_same_data_dir(tmp_path: Path) -> None:
    first = start_stack(tmp_path)
    try:
        response = httpx.post(
            f"{first.base_url}/v1/jobs", files={"file": ("jfk.flac", shared("jfk.flac").read_bytes())}, timeout=60
        )
        job_id = response.json()["id"]
        done = _finished(first, job_id)
    finally:
        assert stop_stack(first) == 0, first.log_tail()
    assert done["status"] == "completed"

    second = start_stack(tmp_path, bootstrap=None)
    try:
        again = httpx.get(f"{second.base_url}/v1/jobs/{job_id}", timeout=10).json()
        assert again["status"] == "completed" and again["result"]["text"] == done["result"]["text"]
        response = httpx.post(
            f"{second.base_url}/v1/jobs",
            files={"file": ("a.wav", shared("librispeech_dev-clean_1272-128104-0000.wav").read_bytes())},
            timeout=60,
        )
        assert _finished(second, response.json()["id"])["status"] == "completed"
    finally:
        assert stop_stack(second) == 0, second.log_tail()
