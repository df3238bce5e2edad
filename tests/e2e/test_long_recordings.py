"""A long recording of many voices through the stack with two workers: cut, transcribed by both, stitched, and
nothing lost that the bare engine hears in each part alone."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.accuracy import errors, lost_words
from tests.support.audio import SHARED_AUDIO, voices
from tests.support.longform import LongRecording, build, one_by_one
from tests.support.stack import RunningStack, start_stack, stop_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> LongRecording:
    return build(tmp_path_factory.mktemp("long") / "voices.flac", rounds=1)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(
        tmp_path_factory.mktemp("two-workers"),
        # Batches of two, so a job of a few chunks still moves in several steps on each worker.
        env={"SCRIBEFLOW_WORKERS": "2", "SCRIBEFLOW_MODEL__CPU_THREADS": "1", "SCRIBEFLOW_BATCH__SIZE": "2"},
    )
    yield running
    assert stop_stack(running) == 0, running.log_tail()


@pytest.fixture(scope="module")
def finished(two_workers: RunningStack, recording: LongRecording) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The job once completed, and every distinct state a poller saw on the way."""
    response = two_workers.submit(recording.path, language="en")
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job = two_workers.job(job_id)
        view = {k: job.get(k) for k in ("status", "progress", "chunks_done", "chunks_total", "audio_seconds_done")}
        if not seen or seen[-1] != view:
            seen.append(view)
        if job["status"] in ("completed", "failed"):
            return job, seen
        time.sleep(0.1)
    pytest.fail(f"job {job_id} did not finish\n{two_workers.log_tail()}")


def test_nothing_is_lost_that_the_engine_hears_in_each_part_alone(
    finished: tuple[dict[str, Any], list[dict[str, Any]]], recording: LongRecording, model_cache: Path
) -> None:
    job, _ = finished
    assert job["status"] == "completed", job.get("error")
    service = job["result"]["text"]
    alone = one_by_one(recording.parts, model_cache=model_cache)
    lost = lost_words([p.reference for p in recording.parts], alone, service)
    ours, theirs = errors(recording.reference, service), errors(recording.reference, " ".join(alone))
    report = f"service {ours}, parts alone {theirs}, lost {lost}"
    # Recovery decodes again speech from about a second on; shorter slips are decoding noise either way.
    assert max((len(run) for run in lost), default=0) <= 4, f"a stretch of speech was lost: {report}"
    assert sum(len(run) for run in lost) <= ours.reference_words * 3 // 100, report
    assert ours.wer <= theirs.wer + 1.5, report
    assert isinstance(job["recovered_stretches"], int)


def test_the_transcript_is_whole_ordered_and_in_sentences(
    finished: tuple[dict[str, Any], list[dict[str, Any]]], recording: LongRecording
) -> None:
    job, _ = finished
    segments = job["result"]["segments"]
    assert [s["id"] for s in segments] == list(range(len(segments)))
    assert len(segments) >= len(recording.parts) // 2
    for before, after in itertools.pairwise(segments):
        assert before["start"] <= after["start"]
    assert all(0 <= s["start"] <= s["end"] <= job["duration"] + 0.01 for s in segments)
    assert all(s["end"] - s["start"] <= 30.0 for s in segments)
    words = job["result"]["words"]
    assert len(words) >= 0.9 * len(job["result"]["text"].split())


def test_progress_counts_chunks_and_seconds(
    finished: tuple[dict[str, Any], list[dict[str, Any]]], recording: LongRecording
) -> None:
    job, seen = finished
    assert job["chunks_total"] >= 5 and job["chunks_done"] == job["chunks_total"]
    assert job["audio_seconds_done"] == pytest.approx(recording.seconds, abs=1)
    counts = [s["chunks_done"] for s in seen if s["chunks_done"] is not None]
    assert counts == sorted(counts), "chunks done only grow"
    assert len({c for c in counts if 0 < c < job["chunks_total"]}) >= 2, f"progress did not move in steps: {seen}"
    assert all(s["progress"] <= 1 for s in seen)


def test_both_workers_transcribe_chunks(
    finished: tuple[dict[str, Any], list[dict[str, Any]]], two_workers: RunningStack
) -> None:
    log = two_workers.log_path.read_text(errors="replace")
    pids = {int(p) for p in re.findall(r" (\d+) INFO processors.transcribe: decoded \d+ chunk", log)}
    assert len(pids) >= 2, "one worker did all the work"


def test_submit_shows_a_progress_bar(two_workers: RunningStack, recording: LongRecording) -> None:
    command = [sys.executable, "-m", "stack.cli", "submit", str(recording.path), "--url", two_workers.base_url]
    result = subprocess.run(
        [*command, "--api-key", two_workers.api_key or ""],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"completed: 100%\|.*\| [\d.]+/[\d.]+ \[.*chunks (\d+)/\1\]", result.stderr), result.stderr[-500:]
    assert "fellow americans" in result.stdout.lower()
    assert two_workers.get("/health", timeout=5).status_code == 200


def test_a_clip_is_not_held_up_behind_a_long_recording(two_workers: RunningStack, recording: LongRecording) -> None:
    long_id = two_workers.submit(recording.path, language="en").json()["id"]
    deadline = time.monotonic() + 120
    while not two_workers.job(long_id).get("chunks_total"):
        assert time.monotonic() < deadline, two_workers.log_tail()
        time.sleep(0.1)
    went_first = re.compile(r"decoded 1 priority chunks of 1 jobs")
    earlier = len(went_first.findall(two_workers.log_path.read_text(errors="replace")))
    with (SHARED_AUDIO / "jfk.flac").open("rb") as clip:
        response = two_workers.post(
            "/v1/audio/transcriptions", files={"file": ("jfk.flac", clip, "audio/flac")}, data={"model": "whisper-1"}
        )
    behind = two_workers.job(long_id)
    assert response.status_code == 200, response.text
    assert "ask not what your country can do for you" in response.json()["text"].lower()
    # Its one chunk went ahead of the long recording's, which were queued first and are mostly still to do.
    assert behind["status"] == "processing" and behind["chunks_done"] < behind["chunks_total"] - 1, behind
    log = two_workers.log_path.read_text(errors="replace")
    assert len(went_first.findall(log)) == earlier + 1, "the clip went the long recordings' way"
    assert two_workers.wait(long_id, timeout=300)["status"] == "completed"


def test_a_diarized_job_keeps_each_voice_one_speaker_across_chunks_and_workers(
    two_workers: RunningStack, tmp_path: Path
) -> None:
    names = ["jfk.flac", "ljspeech_LJ001-0001.wav", "librispeech_test-clean_237-126133-0000.flac"] * 2
    bounds = voices(tmp_path / "three.flac", names)  # about 70 s: three chunks, on both workers
    response = two_workers.submit(tmp_path / "three.flac", language="en", diarize="true", max_speakers="6")
    assert response.status_code == 202, response.text
    job = two_workers.wait(response.json()["id"], timeout=300)
    assert job["status"] == "completed" and job["chunks_total"] >= 3, job
    verbose = two_workers.get(f"/v1/jobs/{job['id']}", params={"format": "verbose_json"}).json()
    words = verbose["words"]
    majority = []
    for lo, hi in bounds:
        labels = [w["speaker"] for w in words if lo <= (w["start"] + w["end"]) / 2 < hi]
        top = max(set(labels), key=labels.count)
        assert labels.count(top) >= 0.9 * len(labels), (lo, hi, labels)
        majority.append(top)
    assert majority == ["A", "B", "C", "A", "B", "C"], majority
    assert all(s["speaker"] for s in verbose["segments"])
    srt = two_workers.get(f"/v1/jobs/{job['id']}", params={"format": "srt"}).text
    assert re.search(r"^A: ", srt, re.MULTILINE) and re.search(r"^C: ", srt, re.MULTILINE), srt[:400]
    # Who spoke when, from the voices: each part is its speaker's, with the same names as the words.
    listed = two_workers.get(f"/v1/jobs/{job['id']}/speakers")
    assert listed.status_code == 200, listed.text
    turns = listed.json()["data"]
    assert listed.json()["speakers"] == ["A", "B", "C"] and job["speaker_turns"] == turns
    assert all(t["start"] < t["end"] for t in turns)
    assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(turns))
    for (lo, hi), speaker in zip(bounds, majority, strict=True):
        heard: dict[str, float] = {}
        for t in turns:
            heard[t["speaker"]] = heard.get(t["speaker"], 0.0) + max(0.0, min(hi, t["end"]) - max(lo, t["start"]))
        assert max(heard, key=lambda name: heard[name]) == speaker and heard[speaker] >= 0.8 * sum(heard.values())
    rttm = two_workers.get(f"/v1/jobs/{job['id']}/speakers", params={"format": "rttm"})
    assert rttm.headers["content-type"].startswith("text/x-rttm")
    rows = [line.split() for line in rttm.text.splitlines()]
    assert [(r[0], r[1], r[7]) for r in rows] == [("SPEAKER", job["id"], t["speaker"]) for t in turns]
    assert all(abs(float(r[3]) - t["start"]) < 1e-3 for r, t in zip(rows, turns, strict=True))
    # What diarizing cost each worker shows in its metrics: both embedded the voices of their own chunks.
    for n in range(2):
        worker = two_workers.worker_metrics(n)
        windows = [line for line in worker.splitlines() if line.startswith("scribeflow_voice_windows_total ")]
        assert windows and float(windows[0].split()[1]) > 0, worker[-2000:]
        assert "scribeflow_voice_embedding_seconds_sum" in worker
    # The CLI asks for a diarized job when it is to print who spoke when.
    jfk = SHARED_AUDIO / "jfk.flac"
    command = [sys.executable, "-m", "stack.cli", "submit", str(jfk), "--url", two_workers.base_url, "--format", "rttm"]
    printed = subprocess.run(
        [*command, "--api-key", two_workers.api_key or ""], capture_output=True, text=True, timeout=300, check=False
    )
    assert printed.returncode == 0, printed.stderr
    lines = [line.split() for line in printed.stdout.splitlines()]
    assert lines and all(line[0] == "SPEAKER" and line[7] == "A" for line in lines), printed.stdout
