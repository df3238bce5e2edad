"""The request pipeline on the real model and a real local store, with an emitter that records what it sends."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel

from ingest import LocalObjectStore
from processors.engine import Transcriber
from processors.pipeline import Resources, Source, handle_request
from processors.settings import ModelSettings
from schemas import (
    AudioRef,
    DeadLetter,
    JobStatus,
    JobStatusChanged,
    SegmentTranscribed,
    TranscriptionOptions,
    TranscriptionRequested,
)
from tests.support.audio import encode, shared


class Recorder:
    def __init__(self) -> None:
        self.events: list[BaseModel] = []

    async def status(self, event: JobStatusChanged) -> None:
        self.events.append(event)

    async def segment(self, event: SegmentTranscribed) -> None:
        self.events.append(event)

    async def dead_letter(self, event: DeadLetter) -> None:
        self.events.append(event)


@pytest.fixture(scope="module")
def transcriber(model_cache: Path) -> Transcriber:
    t = Transcriber(ModelSettings(name="base", cache_dir=model_cache, cpu_threads=2))
    t.load()
    return t


@pytest.fixture
def resources(tmp_path: Path, transcriber: Transcriber) -> Resources:
    store = LocalObjectStore(tmp_path / "objects")
    with shared("jfk.flac").open("rb") as audio:
        store.put("in/jfk.flac", audio, length=-1)
    store.put("in/empty", io.BytesIO(b""), length=0)
    silence = encode(np.zeros((2, 5 * 16_000), np.float32), tmp_path / "silence.wav", rate=16_000, codec="pcm_s16le")
    with silence.open("rb") as audio:
        store.put("in/silence.wav", audio, length=-1)
    return Resources(
        store=store,
        transcriber=transcriber,
        scratch_dir=tmp_path / "scratch",
        max_audio_seconds=3600,
        progress_interval_s=0,
    )


SOURCE = Source(topic="requests", partition=0, offset=7, key=b"j1")


def _run(raw: bytes, resources: Resources) -> list[BaseModel]:
    recorder = Recorder()
    asyncio.run(handle_request(raw, SOURCE, resources, recorder))
    return recorder.events


def _request(key: str, **options: object) -> bytes:
    event = TranscriptionRequested(job_id="j1", audio=AudioRef(key=key), options=TranscriptionOptions(**options))
    return event.model_dump_json().encode()


def test_segments_in_order_then_completion(resources: Resources) -> None:
    events = _run(_request("in/jfk.flac"), resources)
    first, last = events[0], events[-1]
    assert isinstance(first, JobStatusChanged) and first.status is JobStatus.PROCESSING
    assert isinstance(last, JobStatusChanged) and last.status is JobStatus.COMPLETED
    segments = [e for e in events if isinstance(e, SegmentTranscribed)]
    assert [s.segment.id for s in segments] == list(range(len(segments)))
    assert last.segment_count == len(segments) and last.language == "en" and last.duration == 11.0
    assert all(getattr(e, "job_id", None) == "j1" for e in events)
    assert not list(resources.scratch_dir.iterdir())  # scratch copies are cleaned up


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(b"", "empty message"), (b"{not json", "invalid"), (b'{"job_id": "j1"}', "audio")],
)
def test_malformed_requests_are_dead_lettered(resources: Resources, raw: bytes, reason: str) -> None:
    events = _run(raw, resources)
    assert len(events) == 1 and isinstance(events[0], DeadLetter)
    letter = events[0]
    assert reason in letter.reason and letter.source_offset == 7 and letter.key == "j1"


@pytest.mark.parametrize(
    ("key", "options", "code"),
    [
        ("in/missing.wav", {}, "audio_not_found"),
        ("in/empty", {}, "empty_audio"),
        ("in/jfk.flac", {"model": "large-v3"}, "model_not_served"),
    ],
)
def test_failures_end_the_job_with_a_reason(
    resources: Resources, key: str, options: dict[str, object], code: str
) -> None:
    events = _run(_request(key, **options), resources)
    last = events[-1]
    assert isinstance(last, JobStatusChanged) and last.status is JobStatus.FAILED
    assert last.error is not None and last.error.code == code and last.error.message
    assert not [e for e in events if isinstance(e, SegmentTranscribed)]


def test_silence_completes_with_an_empty_transcript(resources: Resources) -> None:
    events = _run(_request("in/silence.wav"), resources)
    last = events[-1]
    assert isinstance(last, JobStatusChanged) and last.status is JobStatus.COMPLETED
    assert last.segment_count == 0 and last.duration == 5.0
    assert not [e for e in events if isinstance(e, SegmentTranscribed)]
