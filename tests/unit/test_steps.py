"""The three agents' steps without Kafka: the real model and a real local store, with an emitter that records
what it sends and tables kept in dictionaries."""

from __future__ import annotations

import asyncio
import io
import itertools
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest

from ingest import LocalObjectStore
from processors.engine import Transcriber
from processors.llm import ChatClient
from processors.polishing import PUNCTUATION_PROMPT
from processors.postprocess import PostprocessResources, handle_postprocess
from processors.recovery import RecoveryOptions
from processors.settings import ChunkingSettings, ModelSettings
from processors.split import SplitResources, handle_request
from processors.stitch import StitchResources, handle_result
from processors.transcribe import TranscribeResources, attempt_key, handle_chunks
from processors.transport import Source
from processors.voices import LazyEncoder
from schemas import (
    AudioRef,
    ChunkFailed,
    ChunkRequested,
    ChunkTranscribed,
    DeadLetter,
    JobStatus,
    JobStatusChanged,
    PostStep,
    SegmentTranscribed,
    TranscriptionOptions,
    TranscriptionRequested,
)
from schemas.postprocess import PostprocessRequested
from schemas.state import HeldSegments, StitchState
from tests.support.audio import encode, long_speech, read_stereo, shared
from tests.support.chat_server import chat_server
from tests.support.recorder import Recorder

T = TypeVar("T")


class Tables:
    """The stitch and attempt tables, as dictionaries."""

    def __init__(self) -> None:
        self.states: dict[str, StitchState] = {}
        self.parked_results: dict[tuple[str, int], ChunkTranscribed] = {}
        self.held_segments: dict[tuple[str, int], HeldSegments] = {}
        self.attempt_counts: dict[str, int] = {}

    def load(self, job_id: str) -> StitchState | None:
        return self.states.get(job_id)

    def parked(self, job_id: str, index: int) -> ChunkTranscribed | None:
        return self.parked_results.get((job_id, index))

    def save(self, state: StitchState) -> None:
        self.states[state.job_id] = state

    def park(self, result: ChunkTranscribed) -> None:
        self.parked_results[(result.job_id, result.index)] = result

    def unpark(self, job_id: str, index: int) -> None:
        del self.parked_results[(job_id, index)]

    def held(self, job_id: str, index: int) -> HeldSegments | None:
        return self.held_segments.get((job_id, index))

    def hold(self, held: HeldSegments) -> None:
        self.held_segments[(held.job_id, held.index)] = held

    def release(self, job_id: str, index: int) -> None:
        self.held_segments.pop((job_id, index), None)

    def get(self, key: str, partition: int) -> int:
        return self.attempt_counts.get(key, 0)

    def set(self, key: str, partition: int, count: int) -> None:
        self.attempt_counts[key] = count

    def clear(self, key: str, partition: int) -> None:
        self.attempt_counts.pop(key, None)

    async def flush(self) -> None:
        return None


@pytest.fixture(scope="module")
def transcriber(model_cache: Path) -> Transcriber:
    t = Transcriber(ModelSettings(name="base", cache_dir=model_cache, cpu_threads=2))
    t.load()
    return t


class Steps:
    def __init__(self, tmp: Path, transcriber: Transcriber) -> None:
        voices = LazyEncoder()
        self.store = LocalObjectStore(tmp / "objects")
        self.scratch = tmp / "scratch"
        self.split = SplitResources(
            store=self.store,
            transcriber=transcriber,
            scratch_dir=self.scratch,
            max_audio_seconds=3600,
            chunking=ChunkingSettings(target_s=20.0),
            partitions=4,
            priority_chunks=2,
        )
        self.transcribe = TranscribeResources(
            store=self.store,
            transcriber=transcriber,
            scratch_dir=self.scratch,
            recovery=RecoveryOptions(),
            max_attempts=3,
            batch_size=8,
            batch_window_s=0.0,
            voices=voices,
        )
        self.stitch = StitchResources(store=self.store, voices=voices, scratch_dir=self.scratch)
        self.tables = Tables()
        self.recorder = Recorder()

    def put(self, key: str, path: Path | None = None, data: bytes = b"") -> None:
        if path is not None:
            with path.open("rb") as audio:
                self.store.put(key, audio, length=-1)
        else:
            self.store.put(key, io.BytesIO(data), length=len(data))

    def run(self, raw: bytes) -> Recorder:
        """Split, then transcribe every chunk in one batch, then stitch the results in reverse order."""
        asyncio.run(self._run(raw))
        return self.recorder

    async def _run(self, raw: bytes) -> None:
        await handle_request(raw, Source("requests", 0, 7, b"j1"), self.split, self.recorder)
        messages = [
            (c.model_dump_json().encode(), Source("chunks", p, n, None))
            for n, (c, p) in enumerate(self.recorder.chunk_events)
        ]
        # As the workers route them: a short recording's chunks to the agent with the priority decoder.
        transcribe = replace(self.transcribe, priority=bool(self.recorder.priority_chunks))
        await handle_chunks(messages, transcribe, self.recorder, self.tables)
        results = [e for e in self.recorder.events if isinstance(e, ChunkTranscribed | ChunkFailed)]
        for n, result in enumerate(reversed(results)):
            await handle_result(
                result.model_dump_json().encode(),
                Source("results", 0, n, b"j1"),
                self.stitch,
                self.recorder,
                self.tables,
            )


@pytest.fixture
def steps(tmp_path: Path, transcriber: Transcriber) -> Steps:
    return Steps(tmp_path, transcriber)


def _request(key: str, **options: object) -> bytes:
    event = TranscriptionRequested(job_id="j1", audio=AudioRef(key=key), options=TranscriptionOptions(**options))
    return event.model_dump_json().encode()


def _last_status(recorder: Recorder) -> JobStatusChanged:
    statuses = recorder.of(JobStatusChanged)
    assert statuses
    last = statuses[-1]
    assert isinstance(last, JobStatusChanged)
    return last


def test_a_recording_in_chunks_comes_out_whole_and_in_order(steps: Steps, tmp_path: Path) -> None:
    steps.put("in/long.flac", long_speech(tmp_path / "long.flac"))
    recorder = steps.run(_request("in/long.flac"))
    chunks = recorder.of(ChunkRequested)
    assert len(chunks) > 2, "a 50 s recording with 20 s chunks is cut"
    assert not recorder.priority_chunks, "a recording of more than 2 chunks queues with the other long ones"
    assert all(isinstance(c, ChunkRequested) and c.options.language == "en" for c in chunks), "detected once"
    assert {p for _, p in recorder.chunk_events} == {(recorder.chunk_events[0][1] + n) % 4 for n in range(len(chunks))}
    segments = [e.segment for e in recorder.of(SegmentTranscribed) if isinstance(e, SegmentTranscribed)]
    assert [s.id for s in segments] == list(range(len(segments)))
    text = re.sub(r"[^a-z ]", "", " ".join(s.text.strip() for s in segments).lower())
    assert text.count("ask not what your country can do for you") == 2
    assert "apostle of the middle classes" in text
    last = _last_status(recorder)
    assert last.status is JobStatus.COMPLETED and last.segment_count == len(segments)
    assert last.chunks_total == len(chunks) and last.language == "en" and last.duration == pytest.approx(50, abs=3)
    assert not any(steps.store.exists(c.audio_key) for c in chunks if isinstance(c, ChunkRequested)), (
        "scratch audio kept"
    )
    assert not list(steps.scratch.iterdir())
    assert steps.tables.attempt_counts == {} and steps.tables.parked_results == {}


def test_a_short_recording_goes_to_the_short_recordings_topic_and_is_decoded_first(
    steps: Steps, monkeypatch: pytest.MonkeyPatch
) -> None:
    transcriber = steps.transcribe.transcriber
    used: list[str] = []
    for name in ("decoder", "priority_decoder"):
        decoder = getattr(transcriber, name)
        monkeypatch.setattr(decoder, "decode", _noting(decoder.decode, used, name))
    asked: list[bool] = []
    steps.split = replace(steps.split, owners=_two_workers(asked))
    steps.put("in/jfk.flac", shared("jfk.flac"))
    recorder = steps.run(_request("in/jfk.flac"))
    chunks = recorder.of(ChunkRequested)
    assert len(chunks) == 1 and recorder.priority_chunks == chunks
    assert asked == [], "one chunk goes out without asking the broker who holds what"
    assert used and set(used) == {"priority_decoder"}, "decoded by the decoder whose model calls go first"
    text = " ".join(e.segment.text for e in recorder.of(SegmentTranscribed) if isinstance(e, SegmentTranscribed))
    assert "ask not what your country can do for you" in text.lower()
    assert _last_status(recorder).status is JobStatus.COMPLETED


def test_a_recording_a_caller_waits_on_goes_ahead_whatever_its_length(steps: Steps, tmp_path: Path) -> None:
    steps.put("in/long.flac", long_speech(tmp_path / "long.flac"))
    event = TranscriptionRequested(job_id="j1", audio=AudioRef(key="in/long.flac"), interactive=True)
    recorder = Recorder()
    asked: list[bool] = []
    split = replace(steps.split, owners=_two_workers(asked))
    asyncio.run(handle_request(event.model_dump_json().encode(), Source("requests", 0, 1, b"j1"), split, recorder))
    chunks = recorder.of(ChunkRequested)
    assert len(chunks) > 2 and recorder.priority_chunks == chunks
    assert asked == [True], "the holders of the short recordings' topic"
    members = [p // 2 for _, p in recorder.chunk_events]
    assert all(a != b for a, b in itertools.pairwise(members)), "dealt to the two workers in turn"


def _two_workers(asked: list[bool]) -> Callable[[bool], list[list[int]]]:
    """What the broker would say of two workers holding two partitions each; each question noted."""

    def owners(priority: bool) -> list[list[int]]:
        asked.append(priority)
        return [[0, 1], [2, 3]]

    return owners


def _noting(call: Callable[..., T], used: list[str], name: str) -> Callable[..., T]:
    def noted(*args: object, **kwargs: object) -> T:
        used.append(name)
        return call(*args, **kwargs)

    return noted


def test_a_diarized_recording_names_each_voice_once_across_its_chunks(steps: Steps, tmp_path: Path) -> None:
    rate = 16_000
    parts = ["jfk.flac", "ljspeech_LJ001-0001.wav", "jfk.flac"]  # a man, a woman, the man again: 3 chunks of 20 s
    bounds, audio, at = [], [], 0.0
    for name in parts:
        samples = read_stereo(shared(name), rate)
        bounds.append((at, at + samples.shape[1] / rate))
        audio += [samples, np.zeros((2, rate), np.float32)]
        at += samples.shape[1] / rate + 1
    steps.put(
        "in/voices.flac", encode(np.concatenate(audio, axis=1), tmp_path / "voices.flac", rate=rate, codec="flac")
    )
    recorder = steps.run(_request("in/voices.flac", diarization={"max_speakers": 4}))
    assert len(recorder.of(ChunkRequested)) >= 2
    segments = [e.segment for e in recorder.of(SegmentTranscribed) if isinstance(e, SegmentTranscribed)]
    assert [s.id for s in segments] == list(range(len(segments)))
    heard = [{w.speaker for s in segments for w in s.words if lo <= (w.start + w.end) / 2 < hi} for lo, hi in bounds]
    assert heard == [{"A"}, {"B"}, {"A"}], heard
    assert all(s.speaker == s.words[0].speaker and {w.speaker for w in s.words} == {s.speaker} for s in segments)
    last = _last_status(recorder)
    assert last.status is JobStatus.COMPLETED and last.segment_count == len(segments)
    assert steps.tables.held_segments == {}, "held segments are released once the job is out"


def test_language_model_steps_run_after_the_last_chunk_and_then_the_job_completes(steps: Steps, tmp_path: Path) -> None:
    steps.put("in/long.flac", long_speech(tmp_path / "long.flac"))
    recorder = steps.run(_request("in/long.flac", postprocess=["summary", "punctuation"]))
    assert not recorder.of(SegmentTranscribed) and not any(
        isinstance(e, JobStatusChanged) and e.status is JobStatus.COMPLETED for e in recorder.events
    ), "the transcript waits for its steps"
    [request] = recorder.of(PostprocessRequested)
    assert request.steps == [PostStep.PUNCTUATION, PostStep.SUMMARY] and steps.store.exists(request.draft_key)
    assert steps.tables.held_segments == {}

    def answer(system: str, user: str) -> str:
        return user.upper() if system == PUNCTUATION_PROMPT else "Americans ask what they can do for the country."

    with chat_server(answer) as url:
        res = PostprocessResources(
            store=steps.store, llm=ChatClient(base_url=url, model="m"), max_change=0.03, scratch_dir=steps.scratch
        )
        done = Recorder()
        raw = request.model_dump_json().encode()
        asyncio.run(handle_postprocess(raw, Source("postprocess", 0, 0, b"j1"), res, done))
        again = Recorder()
        asyncio.run(handle_postprocess(raw, Source("postprocess", 0, 0, b"j1"), res, again))
    segments = [e.segment for e in done.of(SegmentTranscribed) if isinstance(e, SegmentTranscribed)]
    assert [s.id for s in segments] == list(range(len(segments))) and "ASK NOT WHAT YOUR COUNTRY" in segments[0].text
    last = _last_status(done)
    assert last.status is JobStatus.COMPLETED and last.segment_count == len(segments) and last.postprocess
    assert [o.status for o in last.postprocess.steps] == [
        "done",
        "done",
    ] and last.postprocess.summary == "Americans ask what they can do for the country."
    assert not steps.store.exists(request.draft_key) and again.events == [], "a repeated request changes nothing"


def test_silence_completes_with_an_empty_transcript(steps: Steps, tmp_path: Path) -> None:
    silence = encode(np.zeros((2, 5 * 16_000), np.float32), tmp_path / "silence.wav", rate=16_000, codec="pcm_s16le")
    steps.put("in/silence.wav", silence)
    recorder = steps.run(_request("in/silence.wav"))
    last = _last_status(recorder)
    assert last.status is JobStatus.COMPLETED and last.segment_count == 0 and last.duration == 5.0
    assert not recorder.of(ChunkRequested)


@pytest.mark.parametrize(
    ("key", "options", "code"),
    [
        ("in/missing.wav", {}, "audio_not_found"),
        ("in/empty", {}, "empty_audio"),
        ("in/junk", {}, "undecodable_audio"),
        ("in/jfk.flac", {"model": "large-v3"}, "model_not_served"),
    ],
)
def test_failures_end_the_job_with_a_reason(steps: Steps, key: str, options: dict[str, object], code: str) -> None:
    steps.put("in/jfk.flac", shared("jfk.flac"))
    steps.put("in/empty")
    steps.put("in/junk", data=b"not audio at all" * 100)
    recorder = steps.run(_request(key, **options))
    last = _last_status(recorder)
    assert last.status is JobStatus.FAILED and last.error is not None and last.error.code == code
    assert not recorder.of(SegmentTranscribed)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(b"", "empty message"), (b"{not json", "invalid"), (b'{"job_id": "j1"}', "audio")],
)
def test_malformed_requests_are_dead_lettered(steps: Steps, raw: bytes, reason: str) -> None:
    events = steps.run(raw).events
    assert len(events) == 1 and isinstance(events[0], DeadLetter)
    assert reason in events[0].reason and events[0].source_offset == 7 and events[0].key == "j1"


def test_a_chunk_that_keeps_killing_workers_fails_its_job_with_where_it_is(steps: Steps) -> None:
    steps.put("in/jfk.flac", shared("jfk.flac"))
    recorder = Recorder()
    asyncio.run(handle_request(_request("in/jfk.flac"), Source("requests", 0, 1, None), steps.split, recorder))
    [(chunk, partition)] = recorder.chunk_events
    steps.tables.attempt_counts[attempt_key(chunk)] = 3  # three workers died while decoding it
    message = (chunk.model_dump_json().encode(), Source("chunks", partition, 0, None))
    asyncio.run(handle_chunks([message], steps.transcribe, recorder, steps.tables))
    [failed] = recorder.of(ChunkFailed)
    assert isinstance(failed, ChunkFailed) and failed.error.code == "chunk_poisoned"
    assert "chunk 1 of 1 (00:00:00-00:00:11)" in failed.error.message
    asyncio.run(
        handle_result(failed.model_dump_json().encode(), Source("r", 0, 0, None), steps.stitch, recorder, steps.tables)
    )
    last = _last_status(recorder)
    assert last.status is JobStatus.FAILED and last.error == failed.error
