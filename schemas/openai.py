"""OpenAI's audio API shapes, as our endpoints return them (see OpenAI's public OpenAPI spec for the originals)."""

from typing import Literal

from pydantic import BaseModel


class UsageDuration(BaseModel):
    type: Literal["duration"] = "duration"
    seconds: float


class TranscriptionWord(BaseModel):
    word: str
    start: float
    end: float
    speaker: str | None = None
    """Diarized jobs only (an addition to OpenAI's shape)."""


class TranscriptionSegment(BaseModel):
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    speaker: str | None = None
    """Diarized jobs only (an addition to OpenAI's shape)."""
    paragraph: int | None = None
    """With the paragraphs step only (an addition to OpenAI's shape)."""


class TranscriptionJson(BaseModel):
    """`response_format=json`."""

    text: str
    usage: UsageDuration | None = None


class TranscriptionVerboseJson(BaseModel):
    """`response_format=verbose_json`; `segments` and `words` follow `timestamp_granularities[]`."""

    task: Literal["transcribe", "translate"]
    language: str
    duration: float
    text: str
    segments: list[TranscriptionSegment] | None = None
    words: list[TranscriptionWord] | None = None
    usage: UsageDuration | None = None


class TranscriptionDiarizedSegment(BaseModel):
    type: Literal["transcript.text.segment"] = "transcript.text.segment"
    id: str
    start: float
    end: float
    text: str
    speaker: str
    """"A", "B", … in order of first appearance, or a known speaker's name."""


class TranscriptionDiarizedJson(BaseModel):
    """`response_format=diarized_json`."""

    task: Literal["transcribe"] = "transcribe"
    duration: float
    text: str
    segments: list[TranscriptionDiarizedSegment]
    usage: UsageDuration | None = None


class TranscriptTextDelta(BaseModel):
    """A stream event: text that became final since the previous delta."""

    type: Literal["transcript.text.delta"] = "transcript.text.delta"
    delta: str


class TranscriptTextDone(BaseModel):
    """The last stream event: the whole text."""

    type: Literal["transcript.text.done"] = "transcript.text.done"
    text: str


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "scribeflow"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]
