"""The live agent's step on the real model, driven with events as the API sends them (no Kafka)."""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from ingest import LocalObjectStore
from processors.audio import SAMPLE_RATE, decode_audio
from processors.batching import Window, WindowResult
from processors.engine import Transcriber
from processors.live import LiveEngine, LiveResources
from processors.live_session import LivePolicy
from processors.settings import ModelSettings
from processors.transport import Source
from schemas import JobStatus, JobStatusChanged, SegmentTranscribed
from schemas.live import (
    LiveAccepted,
    LiveAudio,
    LiveClear,
    LiveCleared,
    LiveClose,
    LiveCommit,
    LiveCommitted,
    LiveCompleted,
    LiveDelta,
    LiveEnded,
    LiveEvent,
    LiveFailed,
    LiveOpened,
    LiveOptions,
    LiveSpeechStarted,
    LiveSpeechStopped,
    live_audio_key,
)
from tests.support.accuracy import errors, normalise
from tests.support.audio import shared
from tests.support.longform import english_recordings
from tests.support.recorder import Recorder

SOURCE = Source(topic="transcription.live-input.v1", partition=0, offset=0, key=None)
SID = "sess_test"


@pytest.fixture(scope="module")
def transcriber(model_cache: Path) -> Transcriber:
    return Transcriber(ModelSettings(name="base", cache_dir=model_cache, cpu_threads=2))


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects")


def engine(transcriber: Transcriber, store: LocalObjectStore, max_sessions: int = 4) -> tuple[LiveEngine, Recorder]:
    recorder = Recorder()
    resources = LiveResources(store=store, transcriber=transcriber, worker="w0", max_sessions=max_sessions)
    return LiveEngine(resources, recorder), recorder


def pieces(audio: npt.NDArray[np.float32], rate: int = SAMPLE_RATE, step_s: float = 0.1) -> list[str]:
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    step = int(rate * step_s)
    return [base64.b64encode(pcm[at : at + step].tobytes()).decode() for at in range(0, pcm.size, step)]


def feed(live: LiveEngine, *events: LiveEvent) -> None:
    asyncio.run(live.handle([(e.model_dump_json().encode(), SOURCE) for e in events]))


def stream(live: LiveEngine, audio: npt.NDArray[np.float32], *, sid: str = SID, first_seq: int = 0) -> int:
    """Appends audio in 100 ms events, one handle call each (as a worker keeping up with a client)."""
    seq = first_seq
    for piece in pieces(audio):
        feed(live, LiveAudio(job_id=sid, seq=seq, pcm16=piece))
        seq += 1
    return seq


def jfk_with_silence() -> npt.NDArray[np.float32]:
    return np.concatenate([decode_audio(shared("jfk.flac")), np.zeros(SAMPLE_RATE, np.float32)])


def test_a_session_streams_turns_with_deltas_that_add_up_to_each_completed_turn(
    transcriber: Transcriber, store: LocalObjectStore
) -> None:
    live, out = engine(transcriber, store)
    feed(live, LiveOpened(job_id=SID, options=LiveOptions(rate=16_000, language="en"), max_seconds=600))
    assert out.of(LiveAccepted) and out.of(JobStatusChanged)[0].status is JobStatus.PROCESSING
    audio = jfk_with_silence()
    stream(live, audio)
    feed(live, LiveClose(job_id=SID))

    started = out.of(LiveSpeechStarted)
    completed = out.of(LiveCompleted)
    assert len(started) == len(out.of(LiveSpeechStopped)) == len(out.of(LiveCommitted)) == len(completed) >= 2
    for turn in completed:
        deltas = "".join(d.delta for d in out.of(LiveDelta) if d.item_id == turn.item_id)
        assert deltas == turn.transcript  # a delta never takes anything back
    text = normalise(" ".join(t.transcript for t in completed))
    assert "ask what you can do for your country" in text
    assert "my fellow americans" in text
    # Turns in order, inside the audio, with words inside their turn.
    assert [t.start for t in completed] == sorted(t.start for t in completed)
    for turn in completed:
        assert 0 <= turn.start < turn.end <= audio.size / SAMPLE_RATE + 0.5
        assert all(turn.start - 0.05 <= w.start <= w.end <= turn.end + 0.05 for w in turn.words)
    # Each turn with words is a segment of the session's job, numbered from 0; the job completes with them.
    segments = out.of(SegmentTranscribed)
    assert [s.segment.id for s in segments] == list(range(len(segments)))
    assert [s.segment.text for s in segments] == [t.transcript for t in completed if t.words]
    final = out.of(JobStatusChanged)[-1]
    assert final.status is JobStatus.COMPLETED and final.segment_count == len(segments)
    assert out.of(LiveEnded)[0].segment_count == len(segments)
    # The session's audio is kept beside its job, as received.
    stored = tmp_wav(store, SID)
    assert abs(stored.size - audio.size) < SAMPLE_RATE // 10
    assert SID not in live.sessions


def tmp_wav(store: LocalObjectStore, sid: str) -> npt.NDArray[np.int16]:
    path = store.root / live_audio_key(sid)
    with wave.open(io.BytesIO(path.read_bytes())) as reader:
        assert reader.getframerate() == SAMPLE_RATE and reader.getnchannels() == 1
        return np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")


def test_24_khz_input_is_resampled_and_repeated_pieces_are_ignored(
    transcriber: Transcriber, store: LocalObjectStore
) -> None:
    import av

    live, out = engine(transcriber, store)
    feed(live, LiveOpened(job_id=SID, options=LiveOptions(rate=24_000, language="en"), max_seconds=600))
    audio16 = jfk_with_silence()
    resampler = av.AudioResampler(format="flt", layout="mono", rate=24_000)
    frame = av.AudioFrame.from_ndarray(audio16.reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = SAMPLE_RATE
    audio24 = np.concatenate(
        [f.to_ndarray().reshape(-1) for f in (*resampler.resample(frame), *resampler.resample(None))]
    )
    chunks = pieces(audio24, rate=24_000)
    for seq, piece in enumerate(chunks):
        # Every piece delivered twice (a redelivery after a rebalance, say): the second copy changes nothing.
        feed(live, LiveAudio(job_id=SID, seq=seq, pcm16=piece), LiveAudio(job_id=SID, seq=seq, pcm16=piece))
    feed(live, LiveClose(job_id=SID))
    text = normalise(" ".join(t.transcript for t in out.of(LiveCompleted)))
    assert "ask what you can do for your country" in text
    assert abs(tmp_wav(store, SID).size - audio16.size) < SAMPLE_RATE // 10


def test_without_turn_detection_the_client_commits_and_silence_gives_no_text(
    transcriber: Transcriber, store: LocalObjectStore
) -> None:
    live, out = engine(transcriber, store)
    options = LiveOptions(rate=16_000, language="en", turn_detection=None)
    feed(live, LiveOpened(job_id=SID, options=options, max_seconds=600))
    seq = stream(live, np.zeros(2 * SAMPLE_RATE, np.float32))
    feed(live, LiveCommit(job_id=SID))
    failed = out.of(LiveFailed)
    assert [f.code for f in failed] == ["input_audio_buffer_commit_empty"]
    assert not failed[0].fatal
    librispeech = decode_audio(shared("librispeech_test-clean_672-122797-0000.flac"))
    seq = stream(live, librispeech, first_seq=seq)
    assert not out.of(LiveSpeechStarted) and not out.of(LiveCompleted)  # no server VAD: no turn ends by itself
    feed(live, LiveCommit(job_id=SID))
    completed = out.of(LiveCompleted)
    assert len(completed) == 1 and len(out.of(LiveCommitted)) == 1
    heard = normalise(completed[0].transcript)
    assert "out in the woods" in heard and "nice little fir tree" in heard
    stream(live, librispeech[: SAMPLE_RATE * 2], first_seq=seq)
    feed(live, LiveClear(job_id=SID), LiveClose(job_id=SID))
    assert out.of(LiveCleared) and len(out.of(LiveCompleted)) == 1  # cleared audio is never transcribed


def test_input_for_a_session_this_worker_does_not_hold_is_answered_once_with_session_lost(
    transcriber: Transcriber, store: LocalObjectStore
) -> None:
    live, out = engine(transcriber, store)
    piece = pieces(np.zeros(1600, np.float32))[0]
    feed(live, LiveAudio(job_id="sess_gone", seq=7, pcm16=piece), LiveAudio(job_id="sess_gone", seq=8, pcm16=piece))
    failed = out.of(LiveFailed)
    assert [(f.code, f.fatal) for f in failed] == [("session_lost", True)]
    # Old input (a worker catching up on the topic after a long stop) is history: nobody is waiting for it.
    stale = LiveAudio(job_id="sess_old", seq=0, pcm16=piece, occurred_at=datetime.now(UTC) - timedelta(minutes=5))
    feed(live, stale)
    assert len(out.of(LiveFailed)) == 1


def test_a_full_worker_refuses_a_session_and_a_session_ends_at_its_maximum_length(
    transcriber: Transcriber, store: LocalObjectStore
) -> None:
    live, out = engine(transcriber, store, max_sessions=1)
    feed(live, LiveOpened(job_id="sess_a", options=LiveOptions(rate=16_000), max_seconds=1.0))
    feed(live, LiveOpened(job_id="sess_b", options=LiveOptions(rate=16_000), max_seconds=600))
    assert [(f.job_id, f.code, f.fatal) for f in out.of(LiveFailed)] == [("sess_b", "server_busy", True)]
    stream(live, np.zeros(int(1.5 * SAMPLE_RATE), np.float32), sid="sess_a")
    assert [(f.job_id, f.code) for f in out.of(LiveFailed)][-1] == ("sess_a", "session_expired")
    assert out.of(JobStatusChanged)[-1].status is JobStatus.COMPLETED
    assert not live.sessions


def test_long_continuous_speech_is_cut_into_turns_without_losing_or_doubling_words(
    transcriber: Transcriber, store: LocalObjectStore
) -> None:
    recorder = Recorder()
    resources = LiveResources(store=store, transcriber=transcriber, worker="w0", policy=LivePolicy(max_turn_s=5.0))
    live = LiveEngine(resources, recorder)
    feed(live, LiveOpened(job_id=SID, options=LiveOptions(rate=16_000, language="en"), max_seconds=600))
    # 12.8 s of one sentence, read without a pause long enough to end a turn.
    audio = decode_audio(shared("librispeech_test-clean_237-126133-0000.flac"))
    stream(live, np.concatenate([audio, np.zeros(SAMPLE_RATE, np.float32)]))
    feed(live, LiveClose(job_id=SID))
    completed = recorder.of(LiveCompleted)
    assert len(completed) >= 2  # cut at least once
    assert all(a.end <= b.start + 0.01 for a, b in itertools.pairwise(completed))
    words = normalise(" ".join(t.transcript for t in completed)).split()
    reference = normalise(
        "here she would stay comforted and soothed among the lovely plants and rich exotics rejoicing the heart "
        "of old turner the gardener who since polly's first rapturous entrance had taken her into his good graces "
        "for all time"
    ).split()
    assert errors(" ".join(reference), " ".join(words)).wer < 25
    for before, after in itertools.pairwise(completed):  # nothing heard twice across a cut
        assert normalise(before.transcript).split()[-1] != normalise(after.transcript).split()[0], words


def test_a_close_turn_is_decoded_after_the_final_words_before_it_and_doubles_none(
    transcriber: Transcriber, store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three recordings 1 s apart: each turn after the first is decoded after the audio of the words before it,
    those words forced as Whisper's prefix, so only its own words come back."""
    names = ["librispeech_test-clean_672-122797-0000.flac", "jfk.flac", "ljspeech_LJ001-0001.wav"]
    gap = np.zeros(SAMPLE_RATE, np.float32)
    audio = np.concatenate([x for name in names for x in (decode_audio(shared(name)), gap)])
    decoder = transcriber.live_decoder
    decode = decoder.decode
    prefixes: list[str] = []

    def noting_prefixes(windows: list[Window]) -> list[WindowResult]:
        prefixes.extend(w.options.prefix for w in windows if w.options.prefix)
        return decode(windows)

    monkeypatch.setattr(decoder, "decode", noting_prefixes)  # the real decoder, watched
    live, out = engine(transcriber, store)
    feed(live, LiveOpened(job_id=SID, options=LiveOptions(rate=16_000, language="en"), max_seconds=600))
    stream(live, audio)
    feed(live, LiveClose(job_id=SID))

    said = " ".join(t.transcript for t in out.of(LiveCompleted))
    assert prefixes, "turns a second apart are decoded with the words before them"
    assert all(prefix in said for prefix in prefixes), "a prefix is words already said"
    references = {part.name: part.reference for part in english_recordings()}
    measured = errors(" ".join(references[name] for name in names), said)
    assert measured.insertions <= 2 and measured.wer < 12, measured  # measured: 5.1 %, no insertion
