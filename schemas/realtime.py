"""OpenAI's Realtime API in transcription mode, as the `/v1/realtime` WebSocket speaks it.

Clients send `session.update` (the current shape: `session.type = "transcription"`, `session.audio.input.…`) or
the older `transcription_session.update` (`input_audio_format`, `input_audio_transcription`, `turn_detection` at
the top of the session), which other servers and older SDKs send; the server answers in the shape it was asked in.
Fields this server has no use for (noise reduction, logprobs) are accepted and ignored.
"""

from typing import Annotated, Any, Literal
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field

from schemas.live import TurnDetection


def new_event_id() -> str:
    return f"event_{uuid4().hex[:20]}"


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PcmFormat(_Lenient):
    type: str = "audio/pcm"
    """Only `audio/pcm` (little-endian 16-bit mono)."""
    rate: int = 24_000


class TranscriptionConfig(_Lenient):
    model: str | None = None
    language: str | None = None
    prompt: str | None = None


class TurnDetectionConfig(_Lenient):
    type: str = "server_vad"
    threshold: float | None = None
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None


class AudioInputConfig(_Lenient):
    format: PcmFormat | None = None
    transcription: TranscriptionConfig | None = None
    turn_detection: TurnDetectionConfig | None = None


class AudioConfig(_Lenient):
    input: AudioInputConfig | None = None


class SessionConfig(_Lenient):
    """Either shape of a transcription session; unset fields keep their current value."""

    type: str | None = None
    audio: AudioConfig | None = None
    # The older shape, at the top of the session:
    input_audio_format: str | None = None
    input_audio_transcription: TranscriptionConfig | None = None
    turn_detection: TurnDetectionConfig | None = None


class SessionUpdate(_Lenient):
    type: Literal["session.update", "transcription_session.update"]
    event_id: str | None = None
    session: SessionConfig = Field(default_factory=SessionConfig)


class AudioAppend(_Lenient):
    type: Literal["input_audio_buffer.append"]
    event_id: str | None = None
    audio: str


class AudioCommit(_Lenient):
    type: Literal["input_audio_buffer.commit"]
    event_id: str | None = None


class AudioClear(_Lenient):
    type: Literal["input_audio_buffer.clear"]
    event_id: str | None = None


ClientEvent = Annotated[SessionUpdate | AudioAppend | AudioCommit | AudioClear, Field(discriminator="type")]


# Server events. Every one carries an `event_id` and its `type`.


class ServerEvent(BaseModel):
    event_id: str = Field(default_factory=new_event_id)


class RealtimeError(BaseModel):
    type: str
    code: str | None = None
    message: str
    param: str | None = None
    event_id: str | None = None
    """The client event that caused it, when one did."""


class ErrorEvent(ServerEvent):
    type: Literal["error"] = "error"
    error: RealtimeError


class TurnDetectionOut(TurnDetection):
    type: Literal["server_vad"] = "server_vad"


class TranscriptionOut(BaseModel):
    model: str
    language: str | None = None
    prompt: str | None = None


class SessionObject(BaseModel):
    """The current shape (`session.created`, `session.updated`)."""

    id: str
    object: Literal["realtime.transcription_session"] = "realtime.transcription_session"
    type: Literal["transcription"] = "transcription"
    expires_at: int
    audio: dict[str, Any]
    include: list[str] | None = None


class BetaSessionObject(BaseModel):
    """The older shape (`transcription_session.created`, `transcription_session.updated`)."""

    id: str
    object: Literal["realtime.transcription_session"] = "realtime.transcription_session"
    expires_at: int
    input_audio_format: str
    input_audio_transcription: TranscriptionOut
    turn_detection: TurnDetectionOut | None
    modalities: list[str] = Field(default_factory=lambda: ["text"])


class SessionEvent(ServerEvent):
    type: Literal["session.created", "session.updated"]
    session: SessionObject


class BetaSessionEvent(ServerEvent):
    type: Literal["transcription_session.created", "transcription_session.updated"]
    session: BetaSessionObject


class SpeechStarted(ServerEvent):
    type: Literal["input_audio_buffer.speech_started"] = "input_audio_buffer.speech_started"
    audio_start_ms: int
    item_id: str


class SpeechStopped(ServerEvent):
    type: Literal["input_audio_buffer.speech_stopped"] = "input_audio_buffer.speech_stopped"
    audio_end_ms: int
    item_id: str


class Committed(ServerEvent):
    type: Literal["input_audio_buffer.committed"] = "input_audio_buffer.committed"
    item_id: str
    previous_item_id: str | None = None


class Cleared(ServerEvent):
    type: Literal["input_audio_buffer.cleared"] = "input_audio_buffer.cleared"


class TranscriptionDelta(ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.delta"] = (
        "conversation.item.input_audio_transcription.delta"
    )
    item_id: str
    content_index: int = 0
    delta: str


class DurationUsage(BaseModel):
    type: Literal["duration"] = "duration"
    seconds: float


class TranscriptionCompleted(ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.completed"] = (
        "conversation.item.input_audio_transcription.completed"
    )
    item_id: str
    content_index: int = 0
    transcript: str
    usage: DurationUsage
    language: str | None = None
    start: float | None = None
    """Seconds from the start of the session's audio (this server's addition)."""
    end: float | None = None


class TranscriptionFailed(ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.failed"] = (
        "conversation.item.input_audio_transcription.failed"
    )
    item_id: str
    content_index: int = 0
    error: RealtimeError
