"""When a synchronous request outlives its wait, the client learns the job id and the job still completes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.audio import long_speech
from tests.support.openai_schemas import validate
from tests.support.stack import RunningStack, start_stack, stop_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def impatient_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(tmp_path_factory.mktemp("timeout-stack"), env={"SCRIBEFLOW_SYNC_TIMEOUT_S": "1"})
    yield running
    assert stop_stack(running) == 0, running.log_tail()


def test_timeout_names_the_job_which_still_completes(impatient_stack: RunningStack, tmp_path: Path) -> None:
    audio = long_speech(tmp_path / "long.flac")
    response = impatient_stack.post(
        "/v1/audio/transcriptions",
        files={"file": (audio.name, audio.read_bytes())},
        data={"model": "whisper-1"},
        timeout=60,
    )
    assert response.status_code == 504
    validate(response.json(), "ErrorResponse")
    assert response.json()["error"]["code"] == "timeout"
    job_id = response.headers["x-job-id"]
    assert job_id in response.json()["error"]["message"]
    assert impatient_stack.wait(job_id)["status"] == "completed"


def test_stream_timeout_ends_with_an_error_event(impatient_stack: RunningStack, tmp_path: Path) -> None:
    audio = long_speech(tmp_path / "long.flac")
    with httpx.stream(
        "POST",
        f"{impatient_stack.base_url}/v1/audio/transcriptions",
        headers=impatient_stack.headers,
        files={"file": (audio.name, audio.read_bytes())},
        data={"model": "whisper-1", "stream": "true"},
        timeout=60,
    ) as response:
        assert response.status_code == 200
        job_id = response.headers["x-job-id"]
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    assert "error" in events[-1] and events[-1]["error"]["code"] == "timeout"
    assert impatient_stack.wait(job_id)["status"] == "completed"
