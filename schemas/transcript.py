"""The transcript and the options that produce it, shared by events, the job store and HTTP."""

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class Task(StrEnum):
    TRANSCRIBE = "transcribe"
    TRANSLATE = "translate"


class JobStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def rank(self) -> int:
        """Order of the lifecycle; a redelivered older status never overwrites a newer one."""
        return _STATUS_RANK[self]

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED)


_STATUS_RANK = {JobStatus.QUEUED: 0, JobStatus.PROCESSING: 1, JobStatus.COMPLETED: 2, JobStatus.FAILED: 2}

LanguageCode = Annotated[str, Field(min_length=2, max_length=8, pattern=r"^[a-z]{2,3}(-[A-Za-z]+)?$")]


class TranscriptionOptions(BaseModel):
    """What the caller asked for; absent fields mean the worker's defaults."""

    model_config = ConfigDict(extra="forbid")

    language: LanguageCode | None = None
    """ISO-639-1 code; None lets the model detect it."""
    task: Task = Task.TRANSCRIBE
    prompt: Annotated[str, Field(max_length=4000)] | None = None
    """Text that conditions the first window: spellings, names, style."""
    word_timestamps: bool = True
    temperature: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    """0 keeps the usual fallback schedule (0.0, 0.2, … 1.0) for windows that fail the quality checks."""
    model: str | None = None
    """Served model name; None is the worker's configured model."""


class Word(BaseModel):
    word: str
    start: float
    end: float
    probability: float


class Segment(BaseModel):
    id: int = Field(ge=0)
    """Position in the transcript, from 0; together with the job id it identifies the segment."""
    seek: int = Field(default=0, ge=0)
    """Offset, in 10 ms frames, of the decoding window the segment came from."""
    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float = 0.0
    temperature: float = 0.0
    tokens: list[int] = Field(default_factory=list)
    words: list[Word] = Field(default_factory=list)


class Transcript(BaseModel):
    """A finished transcript, as stored and as served."""

    text: str
    language: str | None
    language_probability: float | None
    duration: float | None
    task: Task = Task.TRANSCRIBE
    segments: list[Segment]

    @property
    def words(self) -> list[Word]:
        return [word for segment in self.segments for word in segment.words]


class JobError(BaseModel):
    """Why a job failed: `code` is stable for programs, `message` is for people."""

    code: str
    message: str
