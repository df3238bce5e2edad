from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from api.jobstore import JobStore, transcript_of
from schemas import (
    AudioRef,
    JobError,
    JobStatus,
    JobStatusChanged,
    Segment,
    SegmentTranscribed,
    SpeakerTurn,
    TranscriptionRequested,
    Word,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(engine: Engine) -> JobStore:
    return JobStore(engine)


def _segment(job: str, i: int) -> SegmentTranscribed:
    word = Word(word=f" w{i}", start=i, end=i + 0.5, probability=0.9)
    seg = Segment(id=i, start=i, end=i + 1, text=f" w{i}", avg_logprob=-0.1, no_speech_prob=0.0, words=[word])
    return SegmentTranscribed(job_id=job, segment=seg, language="en")


def _status(job: str, status: JobStatus, **kw: object) -> JobStatusChanged:
    return JobStatusChanged.model_validate({"job_id": job, "status": status, **kw})


def test_lifecycle_in_any_order_and_replayed_twice_gives_one_result(store: JobStore) -> None:
    request = TranscriptionRequested(job_id="j1", audio=AudioRef(key="k", filename="a.wav"), occurred_at=T0)
    events = [
        _segment("j1", 1),
        _status("j1", JobStatus.COMPLETED, progress=1.0, language="en", segment_count=3, duration=3.0),
        _status("j1", JobStatus.PROCESSING, progress=0.5),
        request,
        _segment("j1", 0),
        _segment("j1", 2),
    ]
    for _ in range(2):
        for event in events:
            if isinstance(event, TranscriptionRequested):
                store.record_request(event)
            elif isinstance(event, JobStatusChanged):
                store.apply_status(event)
            elif isinstance(event, SegmentTranscribed):
                store.upsert_segment(event)
    job = store.get("j1")
    assert job is not None
    assert job.status is JobStatus.COMPLETED
    assert job.filename == "a.wav"
    assert job.created_at == T0
    assert job.result is not None
    assert [s.id for s in job.result.segments] == [0, 1, 2]
    assert job.result.text == "w0 w1 w2"
    assert [w.word for w in job.result.words] == [" w0", " w1", " w2"]


def test_completed_reads_as_processing_until_every_segment_is_there(store: JobStore) -> None:
    store.apply_status(_status("j", JobStatus.COMPLETED, segment_count=2, progress=1.0))
    store.upsert_segment(_segment("j", 0))
    job = store.get("j")
    assert job is not None and job.status is JobStatus.PROCESSING
    assert job.progress < 1
    assert transcript_of(job) is None
    store.upsert_segment(_segment("j", 1))
    job = store.get("j")
    assert job is not None and job.status is JobStatus.COMPLETED


def test_status_never_moves_back_and_first_terminal_wins(store: JobStore) -> None:
    store.apply_status(_status("j", JobStatus.PROCESSING, progress=0.6))
    store.apply_status(_status("j", JobStatus.PROCESSING, progress=0.2))
    job = store.get("j")
    assert job is not None and job.progress == 0.6
    store.apply_status(_status("j", JobStatus.FAILED, error=JobError(code="undecodable_audio", message="bad")))
    store.apply_status(_status("j", JobStatus.PROCESSING, progress=0.1))
    store.apply_status(_status("j", JobStatus.COMPLETED, segment_count=0))
    job = store.get("j")
    assert job is not None and job.status is JobStatus.FAILED
    assert job.error is not None and job.error.code == "undecodable_audio"


def test_zero_segment_completion_is_a_valid_empty_transcript(store: JobStore) -> None:
    store.apply_status(_status("silent", JobStatus.COMPLETED, segment_count=0, progress=1.0))
    job = store.get("silent")
    assert job is not None
    transcript = transcript_of(job)
    assert transcript is not None and transcript.text == "" and transcript.segments == []


def test_pages_newest_first(store: JobStore) -> None:
    for i in range(5):
        store.record_request(
            TranscriptionRequested(job_id=f"j{i}", audio=AudioRef(key="k"), occurred_at=T0 + timedelta(seconds=i))
        )
    first, more = store.page(limit=2)
    assert [j.id for j in first] == ["j4", "j3"] and more
    second, more = store.page(limit=2, after="j3")
    assert [j.id for j in second] == ["j2", "j1"] and more
    third, more = store.page(limit=2, after="j1")
    assert [j.id for j in third] == ["j0"] and not more
    with pytest.raises(KeyError):
        store.page(limit=2, after="nope")


def test_segments_from_stops_at_the_first_gap(store: JobStore) -> None:
    for i in (0, 1, 3):
        store.upsert_segment(_segment("j", i))
    assert [s.id for s in store.segments_from("j", 0)] == [0, 1]
    assert store.segments_from("j", 2) == []
    store.upsert_segment(_segment("j", 2))
    assert [s.id for s in store.segments_from("j", 2)] == [2, 3]


def test_a_diarized_jobs_speaker_turns_come_with_its_result_and_replay_changes_nothing(store: JobStore) -> None:
    turns = [SpeakerTurn(start=0.0, end=1.4, speaker="A"), SpeakerTurn(start=1.6, end=3.0, speaker="Ada Lovelace")]
    done = _status("d", JobStatus.COMPLETED, progress=1.0, segment_count=1, speaker_turns=turns)
    for _ in range(2):
        store.apply_status(done)
        store.upsert_segment(_segment("d", 0))
    job = store.get("d")
    assert job is not None and job.status is JobStatus.COMPLETED and job.speaker_turns == turns
    assert store.speaker_turns("d") == turns
    listed = store.get("d", with_result=False)
    assert listed is not None and listed.speaker_turns is None, "listings leave them out, as the transcript"
    store.apply_status(_status("plain", JobStatus.COMPLETED, progress=1.0, segment_count=0))
    assert store.speaker_turns("plain") is None and store.speaker_turns("nobody") is None
