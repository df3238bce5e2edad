"""Durable worker state: what the stitcher keeps per job in its table, so another worker can take over.

Written to a compacted changelog topic by one worker process and read back by another after a failover, so it is a
shape that crosses a process boundary like any event. Kept small: the words of the open segment and of the last
cut's overlap, never a whole transcript.
"""

from pydantic import BaseModel, ConfigDict, Field

from schemas.chunks import TimeSpan, VoiceWindow
from schemas.transcript import Diarization, PostStep


class StitchWord(BaseModel):
    """A word with the scores of the window it came from, so a segment can be rebuilt from any run of words."""

    model_config = ConfigDict(frozen=True)

    word: str
    start: float
    end: float
    probability: float
    tokens: list[int] = Field(default_factory=list)
    seek: int = 0
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    temperature: float = 0.0

    @property
    def middle(self) -> float:
        return (self.start + self.end) / 2


class EdgeWord(StitchWord):
    """A word of the previous chunk near its end cut, and whether it was already kept."""

    kept: bool


class StitchState(BaseModel):
    """Everything the stitcher knows of one job between two chunk results."""

    job_id: str
    count: int = Field(ge=1)
    duration: float
    model: str | None = None
    language: str | None = None
    language_probability: float | None = None
    word_timestamps: bool = True
    diarization: Diarization | None = None
    """Diarized jobs hold their segments (`HeldSegments`) until every chunk is merged, then label them at once."""
    postprocess: list[PostStep] = Field(default_factory=list)
    """Jobs with language-model steps hold their segments too, and hand the whole transcript to those steps."""
    next_index: int = 0
    """The first chunk not merged yet; results for later chunks are parked until it arrives."""
    parked: list[int] = Field(default_factory=list)
    segments_emitted: int = 0
    chunks_done: int = 0
    audio_seconds_done: float = 0.0
    recovered_stretches: int = 0
    tail: list[StitchWord] = Field(default_factory=list)
    """Words of the segment that is still open."""
    edge: list[EdgeWord] = Field(default_factory=list)
    """Words of the last merged chunk that fall in the overlap zone of its end cut."""
    finished: bool = False
    """Completed or failed: later results for this job change nothing."""

    @property
    def holds(self) -> bool:
        """Segments wait for the whole job instead of going out as they become final."""
        return self.diarization is not None or bool(self.postprocess)


class HeldSegments(BaseModel):
    """A diarized job's segments that closed when one chunk was merged, and that chunk's voice windows: stored
    beside the state until the job's speakers are known."""

    job_id: str
    index: int = Field(ge=0)
    segments: list[list[StitchWord]]
    voices: list[VoiceWindow]
    voice_model: str | None = None
    """As on `ChunkTranscribed`."""
    speech: list[TimeSpan] = Field(default_factory=list)
    """As on `ChunkTranscribed`."""
