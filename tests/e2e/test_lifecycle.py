"""Following a job live over server-sent events, and deleting jobs (finished, and still running), on the stack."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.audio import long_speech, shared
from tests.support.stack import REPO, RunningStack


def _events(stack: RunningStack, job_id: str, last_event_id: str | None = None) -> list[tuple[str, str, Any]]:
    """(id, event, data) of every event until the server ends the stream."""
    headers = {**stack.headers, **({"Last-Event-ID": last_event_id} if last_event_id else {})}
    found: list[tuple[str, str, Any]] = []
    with httpx.stream(
        "GET", f"{stack.base_url}/v1/jobs/{job_id}/events", headers=headers, timeout=httpx.Timeout(30, read=60)
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if not line:
                if "event" in fields:
                    found.append((fields.get("id", ""), fields["event"], json.loads(fields["data"])))
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
    return found


def test_a_listener_sees_the_job_grow_and_end_and_can_resume(stack: RunningStack, tmp_path: Path) -> None:
    job_id = stack.submit(long_speech(tmp_path / "long.flac")).json()["id"]
    events = _events(stack, job_id)  # subscribes while the job is queued or running, and returns when it ends
    kinds = [kind for _id, kind, _data in events]
    assert kinds[0] == "status" and kinds[-1] == "status"
    assert events[-1][2]["status"] == "completed" and events[-1][2]["result"] is None
    segments = [data for _id, kind, data in events if kind == "segment"]
    assert [s["id"] for s in segments] == list(range(len(segments))) and len(segments) >= 3
    job = stack.job(job_id)
    assert [s["text"] for s in segments] == [s["text"] for s in job["result"]["segments"]]
    assert [int(i) for i, kind, _ in events if kind == "segment"] == list(range(1, len(segments) + 1))

    late = _events(stack, job_id)  # after the end: the whole history, then the end
    assert [d["id"] for _i, k, d in late if k == "segment"] == [s["id"] for s in segments]
    resumed = _events(stack, job_id, last_event_id="2")
    assert [d["id"] for _i, k, d in resumed if k == "segment"] == [s["id"] for s in segments[2:]]
    assert resumed[-1][1] == "status" and resumed[-1][2]["status"] == "completed"


def test_deleting_a_finished_job_removes_its_audio_rows_and_transcript(stack: RunningStack) -> None:
    job = stack.wait(stack.submit(shared("jfk.flac")).json()["id"])
    upload = stack.data_dir / "objects" / "uploads" / job["id"] / "audio"
    assert job["status"] == "completed" and upload.exists()
    # A finished job's audio is served as uploaded (the transcript viewer plays it), with byte ranges for seeking.
    audio = stack.get(f"/v1/jobs/{job['id']}/audio")
    assert audio.status_code == 200 and audio.content == shared("jfk.flac").read_bytes()
    assert audio.headers["content-type"] == "audio/flac" and audio.headers["accept-ranges"] == "bytes"
    deleted = stack.request("DELETE", f"/v1/jobs/{job['id']}")
    assert deleted.status_code == 200 and deleted.json() == {
        "id": job["id"],
        "object": "transcription.job",
        "deleted": True,
    }
    assert not upload.exists()
    assert stack.get(f"/v1/jobs/{job['id']}").status_code == 404
    gone = stack.get(f"/v1/jobs/{job['id']}/audio")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "job_not_found"
    assert job["id"] not in [j["id"] for j in stack.get("/v1/jobs", params={"limit": 100}).json()["data"]]
    assert stack.request("DELETE", f"/v1/jobs/{job['id']}").status_code == 404


def test_deleting_a_running_job_cancels_it(stack: RunningStack, tmp_path: Path) -> None:
    job_id = stack.submit(long_speech(tmp_path / "long.flac")).json()["id"]
    stack.wait(job_id, lambda job: job["status"] == "processing" and bool(job.get("chunks_total")))
    assert stack.request("DELETE", f"/v1/jobs/{job_id}").status_code == 200
    chunks = stack.data_dir / "objects" / "chunks" / job_id
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the workers go on sending events about it for a moment
        time.sleep(2)
        assert stack.get(f"/v1/jobs/{job_id}").status_code == 404  # and none brings it back
        if not chunks.exists() or not any(chunks.iterdir()):
            break
    assert not chunks.exists() or not any(chunks.iterdir())
    # The workers moved on: the next job is served.
    assert stack.wait(stack.submit(shared("jfk.flac")).json()["id"])["status"] == "completed"


def test_jobs_are_listed_as_summaries_and_filtered(stack: RunningStack) -> None:
    done = stack.wait(stack.submit(shared("jfk.flac")).json()["id"])
    listed = stack.get("/v1/jobs", params={"status": ["completed"], "limit": 100}).json()["data"]
    assert done["id"] in [j["id"] for j in listed]
    assert all(j["status"] == "completed" and j["result"] is None for j in listed)
    created = done["created_at"]
    later = stack.get("/v1/jobs", params={"created_after": created, "limit": 100}).json()["data"]
    assert done["id"] in [j["id"] for j in later]
    earlier = stack.get("/v1/jobs", params={"created_before": created, "limit": 100}).json()["data"]
    assert done["id"] not in [j["id"] for j in earlier]
    assert stack.get("/v1/jobs", params={"status": "dancing"}).status_code == 400


def test_deleting_a_queued_job_means_it_never_runs(stack: RunningStack, tmp_path: Path) -> None:
    busy = stack.submit(long_speech(tmp_path / "long.flac")).json()["id"]  # keeps the one worker busy
    stack.wait(busy, lambda job: job["status"] == "processing")
    queued = stack.submit(shared("jfk.flac")).json()["id"]
    assert stack.job(queued)["status"] == "queued"
    assert stack.request("DELETE", f"/v1/jobs/{queued}").status_code == 200
    assert stack.wait(busy)["status"] == "completed"
    time.sleep(3)  # the worker reaches the deleted job's request, finds no audio, and its failure is ignored
    assert stack.get(f"/v1/jobs/{queued}").status_code == 404
    assert not (stack.data_dir / "objects" / "uploads" / queued / "audio").exists()


def test_scribeflow_follow_prints_the_segments_as_they_arrive(stack: RunningStack, tmp_path: Path) -> None:
    job_id = stack.submit(long_speech(tmp_path / "long.flac")).json()["id"]
    follower = subprocess.run(
        [sys.executable, "-m", "stack.cli", "follow", job_id, "--timeout", "300"],
        cwd=REPO,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=330,
        check=False,
    )
    assert follower.returncode == 0, follower.stderr
    job = stack.job(job_id)
    lines = follower.stdout.strip().splitlines()
    assert len(lines) == len(job["result"]["segments"])
    assert [line.split("] ", 1)[1] for line in lines] == [s["text"].strip() for s in job["result"]["segments"]]
    assert lines[0].startswith("[00:00:00.000 --> 00:00:")
