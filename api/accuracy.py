"""Accuracy tracking: a finished job scored against the reference transcript someone gave it, and a share of jobs
picked for human review.

WER comes from `jiwer` after Whisper's own normalisers (the English one for English, which also evens out
spellings and numbers; the basic one, which drops punctuation and case, for every other language), so scores
match how Whisper's results are usually reported. Scores live in the API's database next to the jobs.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

from api.database import iso
from schemas import AccuracyGroup, Job, JobScore


@dataclass(frozen=True)
class Counts:
    reference_words: int
    substitutions: int
    deletions: int
    insertions: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        return self.errors / self.reference_words if self.reference_words else 0.0


def normalise(text: str, language: str | None) -> str:
    from whisper_normalizer.basic import BasicTextNormalizer
    from whisper_normalizer.english import EnglishTextNormalizer

    normaliser = EnglishTextNormalizer() if language in (None, "en") else BasicTextNormalizer()
    return " ".join(normaliser(text).split())


def count_errors(reference: str, hypothesis: str, language: str | None) -> Counts:
    """Word errors of `hypothesis` against `reference`, both normalised for `language`."""
    import jiwer

    ref, hyp = normalise(reference, language), normalise(hypothesis, language)
    if not ref:
        raise ValueError("the reference has no words once normalised")
    if not hyp:
        return Counts(len(ref.split()), 0, len(ref.split()), 0)
    measured = jiwer.process_words(ref, hyp)
    return Counts(
        reference_words=measured.hits + measured.substitutions + measured.deletions,
        substitutions=measured.substitutions,
        deletions=measured.deletions,
        insertions=measured.insertions,
    )


def sampled_for_review(job_id: str, share: float) -> bool:
    """A stable pick from the job id, so every API replica agrees on it."""
    return share > 0 and zlib.crc32(job_id.encode()) / 2**32 < share


class AccuracyStore:
    """Thread-safe (a pool of connections)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def score(self, job: Job, reference: str) -> JobScore:
        """Scores a completed job (again, if it was scored before: the newest reference wins)."""
        assert job.result is not None
        language = job.language or "unknown"
        counts = count_errors(reference, job.result.text, job.language)
        at = datetime.now(UTC)
        score = JobScore(
            job_id=job.id,
            model=job.model or "unknown",
            language=language,
            reference_words=counts.reference_words,
            substitutions=counts.substitutions,
            deletions=counts.deletions,
            insertions=counts.insertions,
            wer=round(counts.wer, 6),
            scored_at=at,
        )
        with self.engine.begin() as db:
            db.execute(
                text(
                    """INSERT INTO job_scores (job_id, owner, model, language, reference, reference_words,
                        substitutions, deletions, insertions, wer, scored_at)
                    VALUES (:job, :owner, :model, :language, :reference, :words, :subs, :dels, :ins, :wer, :at)
                    ON CONFLICT (job_id) DO UPDATE SET reference = excluded.reference,
                        reference_words = excluded.reference_words, substitutions = excluded.substitutions,
                        deletions = excluded.deletions, insertions = excluded.insertions, wer = excluded.wer,
                        scored_at = excluded.scored_at"""
                ),
                {
                    "job": job.id,
                    "owner": job.owner,
                    "model": score.model,
                    "language": language,
                    "reference": reference,
                    "words": counts.reference_words,
                    "subs": counts.substitutions,
                    "dels": counts.deletions,
                    "ins": counts.insertions,
                    "wer": score.wer,
                    "at": iso(at),
                },
            )
        return score

    def summary(self, *, days: float, owner: str | None) -> list[AccuracyGroup]:
        """Per model and language over the last `days`: WER over all words (errors / reference words), and the
        mean of the jobs' own WERs."""
        since = iso(datetime.now(UTC) - timedelta(days=days))
        mine = "" if owner is None else " AND owner = :owner"
        with self.engine.connect() as db:
            rows = db.execute(
                text(
                    f"""SELECT model, language, count(*), sum(reference_words),
                        sum(substitutions), sum(deletions), sum(insertions), avg(wer)
                    FROM job_scores WHERE scored_at >= :since{mine}
                    GROUP BY model, language ORDER BY model, language"""
                ),
                {"since": since, "owner": owner},
            ).all()
        return [
            AccuracyGroup(
                model=model,
                language=language,
                jobs=int(jobs),
                reference_words=int(words),
                substitutions=int(subs),
                deletions=int(dels),
                insertions=int(ins),
                wer=round((subs + dels + ins) / words, 6) if words else 0.0,
                mean_job_wer=round(float(mean), 6),
            )
            for model, language, jobs, words, subs, dels, ins, mean in rows
        ]
