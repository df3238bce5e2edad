"""Every event type, by name: what `scribeflow schemas` publishes as JSON Schema for consumers in other languages."""

from pydantic import BaseModel

from schemas.chunks import ChunkFailed, ChunkRequested, ChunkTranscribed
from schemas.events import DeadLetter, JobStatusChanged, SegmentTranscribed, TranscriptionRequested
from schemas.live import (
    LiveAccepted,
    LiveAlive,
    LiveAudio,
    LiveClear,
    LiveCleared,
    LiveClose,
    LiveCommit,
    LiveCommitted,
    LiveCompleted,
    LiveConfigured,
    LiveDelta,
    LiveEnded,
    LiveFailed,
    LiveKeepalive,
    LiveOpened,
    LiveSpeechStarted,
    LiveSpeechStopped,
)
from schemas.postprocess import PostprocessRequested
from schemas.webhooks import WebhookGaveUp

EVENT_TYPES: dict[str, type[BaseModel]] = {
    "TranscriptionRequested": TranscriptionRequested,
    "JobStatusChanged": JobStatusChanged,
    "SegmentTranscribed": SegmentTranscribed,
    "DeadLetter": DeadLetter,
    "ChunkRequested": ChunkRequested,
    "ChunkTranscribed": ChunkTranscribed,
    "ChunkFailed": ChunkFailed,
    "WebhookGaveUp": WebhookGaveUp,
    "PostprocessRequested": PostprocessRequested,
    **{
        kind.__name__: kind
        for kind in (
            LiveOpened,
            LiveConfigured,
            LiveAudio,
            LiveCommit,
            LiveClear,
            LiveKeepalive,
            LiveClose,
            LiveAccepted,
            LiveAlive,
            LiveSpeechStarted,
            LiveSpeechStopped,
            LiveCommitted,
            LiveCleared,
            LiveDelta,
            LiveCompleted,
            LiveFailed,
            LiveEnded,
        )
    },
}
