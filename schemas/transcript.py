"""The transcript and the options that produce it, shared by events, the job store and HTTP."""

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


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


SpeakerCount = Annotated[int, Field(ge=1, le=32)]


class KnownSpeaker(BaseModel):
    """A voice to label by name: a short recording of the speaker alone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=64)]
    audio_key: Annotated[str, Field(min_length=1, max_length=1024)]
    """The reference recording (2 to 10 s) in the object store."""


class SpeakerTurn(BaseModel):
    """Who spoke when, from the voices alone (not the words): a stretch of the recording where one speaker was
    heard, in seconds."""

    model_config = ConfigDict(frozen=True)

    start: Annotated[float, Field(ge=0.0)]
    end: Annotated[float, Field(ge=0.0)]
    speaker: str
    """As on the words and segments: "A", "B", … or a known speaker's name."""


class Diarization(BaseModel):
    """Who spoke when: speakers found from voices across the whole recording."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_speakers: SpeakerCount | None = None
    max_speakers: SpeakerCount | None = None
    known_speakers: Annotated[list[KnownSpeaker], Field(max_length=4)] = Field(default_factory=list)
    """Clusters whose voice matches one of these take its name; the others are "A", "B", …"""

    @model_validator(mode="after")
    def _bounds(self) -> "Diarization":
        if self.min_speakers and self.max_speakers and self.min_speakers > self.max_speakers:
            raise ValueError("min_speakers is above max_speakers")
        return self


class PostStep(StrEnum):
    """Optional language-model steps after transcription; they never change what was said."""

    PUNCTUATION = "punctuation"
    PARAGRAPHS = "paragraphs"
    SUMMARY = "summary"


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
    diarization: Diarization | None = None
    """None: no speaker labels."""
    postprocess: Annotated[list[PostStep], Field(max_length=3)] = Field(default_factory=list)
    """Language-model steps, in the order punctuation, paragraphs, summary; off when no model is configured."""

    @field_validator("postprocess")
    @classmethod
    def _each_once_in_order(cls, steps: list[PostStep]) -> list[PostStep]:
        return [step for step in PostStep if step in steps]


class Word(BaseModel):
    word: str
    start: float
    end: float
    probability: float
    speaker: str | None = None
    """Set on diarized jobs: "A", "B", … or a known speaker's name."""


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
    speaker: str | None = None
    """Set on diarized jobs; a segment never spans a change of speaker."""
    paragraph: int | None = Field(default=None, ge=0)
    """With the paragraphs step: the paragraph the segment belongs to, from 0."""


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


class StepOutcome(BaseModel):
    """What became of one post-processing step."""

    step: PostStep
    status: Literal["done", "rejected", "skipped"]
    """done: applied (parts may have kept their text, see `reason`); rejected: the model changed what was said
    beyond the limit, so the transcript kept its text; skipped: not run (no model configured, or it failed)."""
    reason: str | None = None
    agreement: float | None = Field(default=None, ge=0.0, le=1.0)
    """punctuation and paragraphs: the words the model's output agrees on over the longer of the two (so a
    repetition or an invention lowers it too), over all passages; summary: the share of its longer words that
    occur in the transcript."""
    seconds: float | None = Field(default=None, ge=0.0)
    """Time the step took."""


class PostprocessReport(BaseModel):
    steps: list[StepOutcome]
    summary: str | None = None
