"""Live transcription between the API and the workers: what a realtime session sends down and gets back.

The API holds the client's WebSocket and never runs a model; it forwards the session's input to
`transcription.live-input.v1` and reads what a worker says on `transcription.live-output.v1`. Both topics are keyed
by session id, so one worker (the owner of the key's partition) keeps a session's audio and state. A session is
also a job (the session id is the job id): completed turns are its segments, on the segments topic like any job's.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import EventBase
from schemas.transcript import LanguageCode, Word

LIVE_RATES = (16_000, 24_000)  # PCM16 input rates a session accepts: OpenAI sends 24 kHz; Whisper wants 16 kHz


def live_audio_key(session_id: str) -> str:
    """Where the worker stores a session's audio (16 kHz WAV) when it ends: the audio of the session's job."""
    return f"live/{session_id}.wav"


class TurnDetection(BaseModel):
    """Server VAD as OpenAI's Realtime API defines it (these are its defaults)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    """Speech probability at which speech starts."""
    prefix_padding_ms: int = Field(default=300, ge=0, le=5_000)
    """Audio kept before the detected start of speech."""
    silence_duration_ms: int = Field(default=500, ge=50, le=10_000)
    """Silence that ends a turn."""


class LiveOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rate: Literal[16000, 24000] = 24_000
    """Sample rate of the PCM16 mono audio the client appends."""
    language: LanguageCode | None = None
    """None: detected on the first turn, then kept for the session."""
    prompt: Annotated[str, Field(max_length=4000)] | None = None
    turn_detection: TurnDetection | None = Field(default_factory=TurnDetection)
    """None: turns end only when the client commits the buffer."""


class LiveEvent(EventBase):
    """`job_id` is the session id."""


class LiveOpened(LiveEvent):
    type: Literal["live.opened"] = "live.opened"
    options: LiveOptions
    owner: str | None = None
    max_seconds: float = Field(gt=0)
    """The session is closed after this much audio (or time)."""


class LiveConfigured(LiveEvent):
    """New options from `session.update`; they apply from the next turn on."""

    type: Literal["live.configured"] = "live.configured"
    options: LiveOptions


class LiveAudio(LiveEvent):
    type: Literal["live.audio"] = "live.audio"
    seq: int = Field(ge=0)
    """Position of this piece in the session's input, from 0: a worker ignores a piece it has seen."""
    pcm16: str
    """Base64 of little-endian 16-bit mono samples at the session's rate."""


class LiveCommit(LiveEvent):
    """The client ended the turn (`input_audio_buffer.commit`)."""

    type: Literal["live.commit"] = "live.commit"
    client_event_id: str | None = None


class LiveClear(LiveEvent):
    """The client dropped the audio not yet committed (`input_audio_buffer.clear`)."""

    type: Literal["live.clear"] = "live.clear"


class LiveKeepalive(LiveEvent):
    """Sent by the API every few seconds, so a worker answers even while the client sends nothing."""

    type: Literal["live.keepalive"] = "live.keepalive"


class LiveClose(LiveEvent):
    """The client left: the open turn is finished and the session's job completed."""

    type: Literal["live.close"] = "live.close"
    reason: str = "client closed the connection"


LiveInput = Annotated[
    LiveOpened | LiveConfigured | LiveAudio | LiveCommit | LiveClear | LiveKeepalive | LiveClose,
    Field(discriminator="type"),
]


class LiveAccepted(LiveEvent):
    """A worker took the session."""

    type: Literal["live.accepted"] = "live.accepted"
    worker: str


class LiveAlive(LiveEvent):
    """The owning worker is there (sent at most every few seconds while input arrives)."""

    type: Literal["live.alive"] = "live.alive"


class LiveSpeechStarted(LiveEvent):
    type: Literal["live.speech_started"] = "live.speech_started"
    item_id: str
    audio_start_ms: int = Field(ge=0)
    """From the start of the session's audio, the prefix padding included."""


class LiveSpeechStopped(LiveEvent):
    type: Literal["live.speech_stopped"] = "live.speech_stopped"
    item_id: str
    audio_end_ms: int = Field(ge=0)


class LiveCommitted(LiveEvent):
    type: Literal["live.committed"] = "live.committed"
    item_id: str
    previous_item_id: str | None = None


class LiveCleared(LiveEvent):
    type: Literal["live.cleared"] = "live.cleared"


class LiveDelta(LiveEvent):
    """Words of an open turn that two consecutive decodes agree on; never taken back."""

    type: Literal["live.delta"] = "live.delta"
    item_id: str
    delta: str


class LiveCompleted(LiveEvent):
    """The authoritative text of a turn; also stored as segment `segment_id` of the session's job."""

    type: Literal["live.completed"] = "live.completed"
    item_id: str
    segment_id: int | None = Field(default=None, ge=0)
    """None for a turn without words (no segment is stored for it)."""
    transcript: str
    start: float
    end: float
    """Seconds from the start of the session's audio."""
    language: str | None = None
    words: list[Word] = Field(default_factory=list)


class LiveFailed(LiveEvent):
    """Something the client must hear about; `fatal` ends the session."""

    type: Literal["live.failed"] = "live.failed"
    code: str
    message: str
    fatal: bool = False
    item_id: str | None = None
    client_event_id: str | None = None
    """The client event that caused it, when one did."""


class LiveEnded(LiveEvent):
    """The worker finished the session: its job is complete with `segment_count` segments."""

    type: Literal["live.ended"] = "live.ended"
    segment_count: int = Field(ge=0)


LiveOutput = Annotated[
    LiveAccepted
    | LiveAlive
    | LiveSpeechStarted
    | LiveSpeechStopped
    | LiveCommitted
    | LiveCleared
    | LiveDelta
    | LiveCompleted
    | LiveFailed
    | LiveEnded,
    Field(discriminator="type"),
]
