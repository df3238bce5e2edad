"""Every shape that crosses a process boundary: Kafka events, HTTP bodies, stored transcripts.

This package imports nothing else of the project, so consumers in other services can vendor it alone.
"""

from schemas.accuracy import AccuracyGroup, AccuracyReport, JobScore, ReferenceTranscript
from schemas.chunks import (
    ChunkFailed,
    ChunkRequested,
    ChunkResult,
    ChunkTranscribed,
    ChunkWord,
    TimeSpan,
    VoiceWindow,
    WindowStats,
)
from schemas.events import (
    AudioRef,
    DeadLetter,
    EventBase,
    JobStatusChanged,
    SegmentTranscribed,
    TranscriptionRequested,
    describe_invalid,
)
from schemas.http import ErrorBody, ErrorDetail, Job, JobCreated, JobDeleted, JobList, JobResult
from schemas.keys import ApiKey, KeyLimits
from schemas.languages import LANGUAGES, language_name
from schemas.openai import (
    Model,
    ModelList,
    TranscriptionDiarizedJson,
    TranscriptionDiarizedSegment,
    TranscriptionJson,
    TranscriptionVerboseJson,
    TranscriptTextDelta,
    TranscriptTextDone,
    UsageDuration,
)
from schemas.registry import EVENT_TYPES
from schemas.topics import DEFAULT_TOPICS, TopicNames
from schemas.transcript import (
    Diarization,
    JobError,
    JobStatus,
    KnownSpeaker,
    Segment,
    Task,
    Transcript,
    TranscriptionOptions,
    Word,
)
from schemas.webhooks import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryList,
    WebhookEvent,
    WebhookGaveUp,
    WebhookJob,
)

__all__ = [
    "DEFAULT_TOPICS",
    "EVENT_TYPES",
    "LANGUAGES",
    "AccuracyGroup",
    "AccuracyReport",
    "ApiKey",
    "AudioRef",
    "ChunkFailed",
    "ChunkRequested",
    "ChunkResult",
    "ChunkTranscribed",
    "ChunkWord",
    "DeadLetter",
    "Diarization",
    "ErrorBody",
    "ErrorDetail",
    "EventBase",
    "Job",
    "JobCreated",
    "JobDeleted",
    "JobError",
    "JobList",
    "JobResult",
    "JobScore",
    "JobStatus",
    "JobStatusChanged",
    "KeyLimits",
    "KnownSpeaker",
    "Model",
    "ModelList",
    "ReferenceTranscript",
    "Segment",
    "SegmentTranscribed",
    "Task",
    "TimeSpan",
    "TopicNames",
    "Transcript",
    "TranscriptTextDelta",
    "TranscriptTextDone",
    "TranscriptionDiarizedJson",
    "TranscriptionDiarizedSegment",
    "TranscriptionJson",
    "TranscriptionOptions",
    "TranscriptionRequested",
    "TranscriptionVerboseJson",
    "UsageDuration",
    "VoiceWindow",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookDeliveryList",
    "WebhookEvent",
    "WebhookGaveUp",
    "WebhookJob",
    "WindowStats",
    "Word",
    "describe_invalid",
    "language_name",
]
