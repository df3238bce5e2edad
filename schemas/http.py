"""HTTP bodies of the job API and OpenAI's error body."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from schemas.transcript import (
    JobError,
    JobStatus,
    PostprocessReport,
    Segment,
    SpeakerTurn,
    TranscriptionOptions,
    Word,
)


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    """OpenAI's error body: `{"error": {"message", "type", "param", "code"}}`."""

    error: ErrorDetail


class JobCreated(BaseModel):
    object: Literal["transcription.job"] = "transcription.job"
    id: str
    status: JobStatus
    created_at: datetime


class JobResult(BaseModel):
    text: str
    segments: list[Segment]
    words: list[Word]


class Job(BaseModel):
    object: Literal["transcription.job"] = "transcription.job"
    id: str
    status: JobStatus
    created_at: datetime
    updated_at: datetime
    progress: float
    filename: str | None = None
    owner: str | None = None
    """Id of the API key that created the job."""
    options: TranscriptionOptions | None = None
    language: str | None = None
    language_probability: float | None = None
    duration: float | None = None
    model: str | None = None
    error: JobError | None = None
    chunks_total: int | None = None
    """How many chunks the recording was cut into, once it is split."""
    chunks_done: int | None = None
    audio_seconds_done: float | None = None
    """Seconds of the recording transcribed so far."""
    recovered_stretches: int | None = None
    """Stretches of speech that the first decode left without words and a decode of their own recovered."""
    postprocess: PostprocessReport | None = None
    """Once completed, for a job that asked for language-model steps: each step's outcome, and the summary."""
    speaker_turns: list[SpeakerTurn] | None = None
    """With the result of a diarized job: who spoke when, from the voices (also at `/v1/jobs/{id}/speakers`, as
    JSON or RTTM)."""
    result: JobResult | None = None


class JobDeleted(BaseModel):
    """`DELETE /v1/jobs/{id}`, in OpenAI's shape for deletions."""

    id: str
    object: Literal["transcription.job"] = "transcription.job"
    deleted: Literal[True] = True


class JobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Job]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None


class SpeakerTurnList(BaseModel):
    """`GET /v1/jobs/{id}/speakers`: who spoke when in a diarized job, in order."""

    object: Literal["list"] = "list"
    job_id: str
    speakers: list[str]
    """Every speaker, in order of first turn."""
    data: list[SpeakerTurn]
