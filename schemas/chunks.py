"""The workers' internal events: one per chunk of a long recording, and one per chunk's result.

A recording is cut at silences into chunks of at most one decoding window each. `ChunkRequested` events are spread
over the partitions of `transcription.chunks.v1`, so any worker of the group takes chunks of any job; results go to
`transcription.chunk-results.v1` keyed by job id, where the stitcher merges them in order. Times are absolute
seconds in the original recording.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.events import EventBase
from schemas.transcript import Diarization, JobError, PostStep, TranscriptionOptions, Word

Seconds = Annotated[float, Field(ge=0.0)]


class TimeSpan(BaseModel):
    """A stretch of the recording, `start` inclusive and `end` exclusive."""

    model_config = ConfigDict(frozen=True)

    start: Seconds
    end: Seconds

    @model_validator(mode="after")
    def _ordered(self) -> "TimeSpan":
        if self.end < self.start:
            raise ValueError("end is before start")
        return self

    @property
    def duration(self) -> float:
        return self.end - self.start


class ChunkBase(EventBase):
    """What every chunk event says about its place in the job."""

    index: int = Field(ge=0)
    """Position of the chunk in the recording, from 0."""
    count: int = Field(ge=1)
    """How many chunks the job has."""
    owned: TimeSpan
    """The part of the recording this chunk answers for: words whose middle falls here are kept from it."""
    overlap_s: Seconds = 0.0
    """Context beyond a cut inside speech that the chunks on both sides of it carry."""
    cut_in_speech: bool = False
    """The cut at the start of `owned` is inside speech: this chunk and the previous one both heard its overlap."""
    model: str | None = None

    def placement(self) -> dict[str, object]:
        """Which chunk of which job this is: the fields a result for the same chunk starts from."""
        return self.model_dump(include={"job_id", "index", "count", "owned", "overlap_s", "cut_in_speech", "model"})


class ChunkRequested(ChunkBase):
    """On `transcription.chunks.v1`: one chunk of a job to transcribe."""

    type: Literal["chunk.requested"] = "chunk.requested"
    audio_key: Annotated[str, Field(min_length=1, max_length=1024)]
    """The chunk's audio in the object store: 16 kHz mono WAV of 32-bit floats (16-bit PCM from older split
    agents), the `spans` back to back, levelled."""
    spans: list[TimeSpan]
    """Where each stretch of the chunk's audio comes from in the recording, in order."""
    speech: list[TimeSpan] = Field(default_factory=list)
    """Where VAD heard speech inside `spans`, in order: their audio without VAD's padding and the short pauses a
    chunk keeps. A diarized job's speaker turns keep to it. Empty: all of `spans` (chunks requested before it)."""
    options: TranscriptionOptions
    """The job's options; `language` is the one detected for the whole job, or None to detect on this chunk."""
    duration: Seconds
    """Length of the whole recording."""
    language_probability: float | None = None


class WindowStats(BaseModel):
    """How one decoding window went; words point at it, and segments are scored from it."""

    seek: int = Field(ge=0)
    """Start of the window in the recording, in 10 ms frames."""
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    temperature: float


class ChunkWord(Word):
    tokens: list[int] = Field(default_factory=list)
    window: int = Field(default=0, ge=0)
    """Index into the result's `windows`."""


class VoiceWindow(BaseModel):
    """A short window of speech and the voice heard in it, for clustering a job's speakers."""

    model_config = ConfigDict(frozen=True)

    start: Seconds
    end: Seconds
    embedding: Annotated[str, Field(min_length=1, max_length=8192)]
    """The L2-normalised voice embedding: little-endian float16, base64."""


class ChunkTranscribed(ChunkBase):
    """On `transcription.chunk-results.v1`: every word the chunk's audio produced, overlap context included."""

    type: Literal["chunk.transcribed"] = "chunk.transcribed"
    words: list[ChunkWord]
    windows: list[WindowStats]
    language: str
    language_probability: float | None = None
    duration: Seconds
    word_timestamps: bool = True
    """Whether the job's segments carry their words."""
    recovered_stretches: int = Field(default=0, ge=0)
    """Stretches of speech that the chunk's decode left without words and a decode of their own recovered."""
    diarization: Diarization | None = None
    """The job's diarization options; None: the job is not diarized."""
    voices: list[VoiceWindow] = Field(default_factory=list)
    """Diarized jobs: voice windows over the speech of `owned`."""
    voice_model: str | None = None
    """The voice encoder that embedded `voices` ("campplus", "ge2e"): a job's windows are only comparable when one
    model embedded them all. None: "ge2e" (results written before there was a choice)."""
    speech: list[TimeSpan] = Field(default_factory=list)
    """Diarized jobs: where VAD heard speech in `owned`, which the job's speaker turns keep to. Empty: where the
    voice windows are (results from before chunks said)."""
    postprocess: list[PostStep] = Field(default_factory=list)
    """The job's language-model steps."""


class ChunkFailed(ChunkBase):
    """On `transcription.chunk-results.v1`: the chunk cannot be transcribed, so its job fails."""

    type: Literal["chunk.failed"] = "chunk.failed"
    error: JobError


ChunkResult = Annotated[ChunkTranscribed | ChunkFailed, Field(discriminator="type")]
