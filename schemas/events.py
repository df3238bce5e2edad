"""Kafka events. Each carries `event_id`, `job_id`, `occurred_at` and `schema_version`.

Consumers must treat every event as possibly redelivered: `event_id` is unique per emission, while
(`job_id`, `segment.id`) and (`job_id`, `status`) identify what an event is about.
"""

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from schemas.transcript import JobError, JobStatus, PostprocessReport, Segment, SpeakerTurn, TranscriptionOptions

JobId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]


def _new_event_id() -> str:
    return uuid4().hex


def _now() -> datetime:
    return datetime.now(UTC)


class EventBase(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: str = Field(default_factory=_new_event_id)
    job_id: JobId
    occurred_at: AwareDatetime = Field(default_factory=_now)
    schema_version: Literal[1] = 1


class AudioRef(BaseModel):
    """Where the audio is: a key in the object store that the workers are configured for."""

    model_config = ConfigDict(extra="forbid")

    key: Annotated[str, Field(min_length=1, max_length=1024)]
    filename: str | None = None
    content_type: str | None = None
    size: int | None = Field(default=None, ge=0)


class TranscriptionRequested(EventBase):
    """On `transcription.requests.v1`. Any producer may write it; the API is one of them."""

    type: Literal["transcription.requested"] = "transcription.requested"
    audio: AudioRef
    options: TranscriptionOptions = Field(default_factory=TranscriptionOptions)
    owner: str | None = None
    """Id of the API key that submitted the job; only that key (or an admin key) can read it. None: no key
    (authentication off, or a producer other than the API)."""
    webhook_url: str | None = None
    """Where the API POSTs a signed event when the job completes or fails."""
    interactive: bool = False
    """A caller is waiting on the answer (the synchronous endpoints): the recording's chunks go ahead of other
    recordings' whatever its length, as a short recording's do."""


class JobStatusChanged(EventBase):
    """On `transcription.jobs.v1`. `segment_count` on completion says how many segment events make the result."""

    type: Literal["job.status"] = "job.status"
    status: JobStatus
    progress: float = Field(default=0.0, ge=0.0, le=1.0)
    language: str | None = None
    language_probability: float | None = None
    duration: float | None = None
    segment_count: int | None = Field(default=None, ge=0)
    model: str | None = None
    error: JobError | None = None
    chunks_total: int | None = Field(default=None, ge=0)
    """How many chunks the recording was cut into (from `processing` on)."""
    chunks_done: int | None = Field(default=None, ge=0)
    """How many of them are transcribed."""
    audio_seconds_done: float | None = Field(default=None, ge=0.0)
    """Seconds of the recording that the transcribed chunks cover."""
    recovered_stretches: int | None = Field(default=None, ge=0)
    """Stretches of speech the first decode skipped and a decode of their own recovered (on completion)."""
    postprocess: PostprocessReport | None = None
    """On completion of a job that asked for post-processing: each step's outcome, and the summary."""
    speaker_turns: list[SpeakerTurn] | None = None
    """On completion of a diarized job: who spoke when, from the voices, in order."""


class SegmentTranscribed(EventBase):
    """On `transcription.segments.v1`: one final segment, emitted in transcript order."""

    type: Literal["transcript.segment"] = "transcript.segment"
    segment: Segment
    language: str | None = None


class DeadLetter(BaseModel):
    """On `transcription.dlq.v1`: a request that could not be processed, kept with the reason."""

    model_config = ConfigDict(frozen=True)

    type: Literal["dead_letter"] = "dead_letter"
    event_id: str = Field(default_factory=_new_event_id)
    job_id: str | None = None
    """The job id when the payload was readable enough to have one."""
    occurred_at: AwareDatetime = Field(default_factory=_now)
    schema_version: Literal[1] = 1
    source_topic: str
    source_partition: int
    source_offset: int
    key: str | None = None
    payload: str
    """The original value, decoded as UTF-8 with replacement characters."""
    reason: str


def describe_invalid(error: Exception, name: str) -> str:
    """A dead letter's `reason`: what about the payload did not parse, in a line."""
    if isinstance(error, ValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in error.errors()[:5]]
        return f"invalid {name}: " + "; ".join(parts)
    return str(error)
