"""Kafka topic names. Versioned: a breaking change to an event gets a new topic, never a silent reshape."""

from pydantic import BaseModel, ConfigDict


class TopicNames(BaseModel):
    """The four topics of the pipeline; every event on them is keyed by job id."""

    model_config = ConfigDict(frozen=True)

    requests: str = "transcription.requests.v1"
    """`TranscriptionRequested`: written by the API or by any outside producer."""
    jobs: str = "transcription.jobs.v1"
    """`JobStatusChanged`: queued → processing (with progress) → completed | failed."""
    segments: str = "transcription.segments.v1"
    """`SegmentTranscribed`: one event per final segment, the public results stream."""
    dlq: str = "transcription.dlq.v1"
    """`DeadLetter`: request events that could not be parsed, with the reason."""


DEFAULT_TOPICS = TopicNames()
