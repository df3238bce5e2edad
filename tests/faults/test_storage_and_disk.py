"""The object store going down and the workers' scratch folder filling up: a clear error for the caller, nothing
half-created, and service again once the fault is gone."""

from __future__ import annotations

import os
import subprocess
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.audio import shared
from tests.support.rgw import CephRgw, ensure_rgw_installed
from tests.support.stack import RunningStack, start_stack, stop_stack

pytestmark = [pytest.mark.e2e, pytest.mark.s3]
ACCESS, SECRET = "scribeflow-faults", "scribeflow-faults-secret"
SCRATCH_BYTES = 2 << 20


@pytest.fixture(scope="module")
def rgw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[CephRgw]]:
    """A list so a test can replace the server with a fresh one on the same port."""
    ensure_rgw_installed()
    server = CephRgw(workdir=tmp_path_factory.mktemp("rgw-faults"), access_key=ACCESS, secret_key=SECRET)
    server.start()
    servers = [server]
    yield servers
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 2 MiB file system for the workers' scratch folder, so it can really be full."""
    folder = tmp_path_factory.mktemp("tiny-scratch")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SCRATCH_BYTES}", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture(scope="module")
def stack(rgw: list[CephRgw], scratch: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    env = {
        "SCRIBEFLOW_STORAGE__BACKEND": "s3",
        "SCRIBEFLOW_STORAGE__S3_ENDPOINT": rgw[0].netloc,
        "SCRIBEFLOW_STORAGE__S3_BUCKET": "scribeflow-faults",
        "SCRIBEFLOW_STORAGE__S3_ACCESS_KEY": ACCESS,
        "SCRIBEFLOW_STORAGE__S3_SECRET_KEY": SECRET,
        "SCRIBEFLOW_SCRATCH_DIR": str(scratch),
    }
    running = start_stack(tmp_path_factory.mktemp("storage-fault-stack"), env=env)
    yield running
    assert stop_stack(running) == 0, running.log_tail()


def _jobs(stack: RunningStack) -> list[str]:
    return [job["id"] for job in stack.get("/v1/jobs", params={"limit": 100}).json()["data"]]


def test_storage_down_is_a_clear_503_and_no_half_created_job(
    stack: RunningStack, rgw: list[CephRgw], tmp_path_factory: pytest.TempPathFactory
) -> None:
    first = stack.wait(stack.submit(shared("jfk.flac")).json()["id"])
    assert first["status"] == "completed", first
    before = _jobs(stack)
    port = rgw[0].port
    rgw[0].stop()

    refused = stack.submit(shared("jfk.flac"))
    assert refused.status_code == 503, refused.text
    error = refused.json()["error"]
    assert error["code"] == "service_unavailable" and error["type"] == "server_error"
    assert ACCESS not in error["message"] and "127.0.0.1" not in error["message"]
    by_key = stack.post("/v1/jobs", data={"audio_key": "incoming/anything.wav"})
    assert by_key.status_code == 503 and by_key.json()["error"]["code"] == "service_unavailable"
    ready = stack.get("/ready")
    assert ready.status_code == 503 and ready.json()["storage"].startswith("error")
    assert _jobs(stack) == before  # nothing was accepted, so nothing is listed or queued

    fresh = CephRgw(workdir=tmp_path_factory.mktemp("rgw-again"), access_key=ACCESS, secret_key=SECRET, port=port)
    fresh.start()
    rgw.append(fresh)
    deadline = time.monotonic() + 60
    while stack.get("/ready").status_code != 200:  # the check also makes the bucket on the fresh server
        assert time.monotonic() < deadline, stack.get("/ready").text
        time.sleep(1)
    again = stack.wait(stack.submit(shared("jfk.flac")).json()["id"])
    assert again["status"] == "completed" and "ask not" in again["result"]["text"].lower()


def test_a_full_scratch_folder_fails_the_job_with_a_reason_and_the_worker_goes_on(
    stack: RunningStack, tmp_path: Path
) -> None:
    big = tmp_path / "two-minutes.wav"
    with wave.open(str(big), "wb") as out:  # 3.8 MB: more than the scratch folder holds
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        rng = np.random.default_rng(1)
        out.writeframes((rng.standard_normal(16_000 * 120) * 3000).astype("<i2").tobytes())
    failed = stack.wait(stack.submit(big).json()["id"])
    assert failed["status"] == "failed", failed
    assert failed["error"]["code"] == "scratch_full" and "scratch folder is full" in failed["error"]["message"]
    worker = stack.child_pid("worker-0")
    assert os.path.exists(f"/proc/{worker}")  # the same worker, still running
    after = stack.wait(stack.submit(shared("jfk.flac")).json()["id"])
    assert after["status"] == "completed", after
    assert stack.child_pid("worker-0") == worker
