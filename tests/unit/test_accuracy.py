"""Scoring jobs against references, the review sample, and the per-model, per-language summary, on real SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from api.accuracy import AccuracyStore, count_errors, sampled_for_review
from api.jobstore import JobStore
from schemas import AudioRef, JobStatus, JobStatusChanged, Segment, SegmentTranscribed, TranscriptionRequested


def test_errors_are_counted_after_whisper_s_normalisers() -> None:
    reference = "And so my fellow Americans, ask not what your country can do for you."
    same = count_errors(reference, "and so, my fellow americans... Ask not what your country can do for you!", "en")
    assert (same.errors, same.reference_words) == (0, 14)
    assert count_errors("Mister Smith paid ten dollars", "Mr. Smith paid $10", "en").errors == 0
    wrong = count_errors("the cat sat on the mat", "the cat sat on a hat today", "en")
    assert (wrong.substitutions, wrong.deletions, wrong.insertions) == (2, 0, 1)
    assert wrong.wer == pytest.approx(3 / 6)
    spanish = count_errors("Hola, ¿qué tal estás?", "hola que tal estas", "es")
    assert spanish.reference_words == 4 and spanish.substitutions == 2  # accents are words' letters there
    assert count_errors("some words", "", "en").deletions == 2
    with pytest.raises(ValueError, match="no words"):
        count_errors(" ?! ", "words", "en")


def test_the_review_sample_is_a_stable_share_of_job_ids() -> None:
    ids = [f"job_{n:06d}" for n in range(4000)]
    assert not any(sampled_for_review(i, 0.0) for i in ids)
    assert all(sampled_for_review(i, 1.0) for i in ids)
    picked = [i for i in ids if sampled_for_review(i, 0.25)]
    assert 850 < len(picked) < 1150
    assert picked == [i for i in ids if sampled_for_review(i, 0.25)]


def _complete(jobs: JobStore, job_id: str, text: str, *, owner: str, language: str, model: str = "base") -> None:
    jobs.record_request(TranscriptionRequested(job_id=job_id, audio=AudioRef(key=f"k/{job_id}"), owner=owner))
    segment = Segment(id=0, start=0, end=1, text=text, avg_logprob=-0.1, no_speech_prob=0.0)
    jobs.upsert_segment(SegmentTranscribed(job_id=job_id, segment=segment, language=language))
    done = JobStatusChanged(
        job_id=job_id, status=JobStatus.COMPLETED, segment_count=1, language=language, model=model, duration=1.0
    )
    jobs.apply_status(done)


def test_scores_leave_the_review_queue_and_sum_per_model_and_language(engine: Engine) -> None:
    jobs, scores = JobStore(engine), AccuracyStore(engine)
    _complete(jobs, "j1", " the cat sat on the mat", owner="alice", language="en")
    _complete(jobs, "j2", " a dog ran", owner="alice", language="en")
    _complete(jobs, "j3", " hola amigo", owner="bob", language="es")
    jobs.record_request(TranscriptionRequested(job_id="j4", audio=AudioRef(key="k/j4"), owner="alice"))
    for job_id in ("j1", "j2", "j3", "j4"):
        jobs.mark_for_review(job_id)
    pending, _ = jobs.page(limit=10, review_pending=True)
    assert {j.id for j in pending} == {"j1", "j2", "j3"}  # j4 is not finished
    assert {j.id for j in jobs.page(limit=10, review_pending=True, owner="bob")[0]} == {"j3"}

    first = scores.score(jobs.get("j1"), "the cat sat on the mat")  # type: ignore[arg-type]
    assert first.wer == 0 and first.reference_words == 6
    scores.score(jobs.get("j2"), "a dog ran away fast")  # type: ignore[arg-type]
    scores.score(jobs.get("j3"), "hola amigo mío")  # type: ignore[arg-type]
    assert {j.id for j in jobs.page(limit=10, review_pending=True)[0]} == set()

    groups = {(g.model, g.language): g for g in scores.summary(days=1, owner=None)}
    english = groups[("base", "en")]
    assert (english.jobs, english.reference_words, english.deletions) == (2, 11, 2)
    assert english.wer == pytest.approx(2 / 11) and english.mean_job_wer == pytest.approx((0 + 2 / 5) / 2)
    assert groups[("base", "es")].deletions == 1
    assert [g.language for g in scores.summary(days=1, owner="bob")] == ["es"]
    again = scores.score(jobs.get("j2"), "a dog ran")  # type: ignore[arg-type]
    assert again.wer == 0 and scores.summary(days=1, owner="alice")[0].jobs == 2
