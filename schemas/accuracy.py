"""Accuracy tracking over HTTP: a reference transcript in, a job's score out, and scores summed over a window."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ReferenceTranscript(BaseModel):
    """`POST /v1/jobs/{id}/reference`: what was really said in the job's audio."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=1_000_000)


class JobScore(BaseModel):
    object: Literal["transcription.score"] = "transcription.score"
    job_id: str
    model: str
    language: str
    reference_words: int
    substitutions: int
    deletions: int
    insertions: int
    wer: float
    """(substitutions + deletions + insertions) / reference words, after Whisper's normalisers."""
    scored_at: datetime


class AccuracyGroup(BaseModel):
    model: str
    language: str
    jobs: int
    reference_words: int
    substitutions: int
    deletions: int
    insertions: int
    wer: float
    """Over all words of the window's scored jobs: long recordings weigh more than short ones."""
    mean_job_wer: float


class AccuracyReport(BaseModel):
    object: Literal["accuracy.report"] = "accuracy.report"
    window_days: float
    data: list[AccuracyGroup]
