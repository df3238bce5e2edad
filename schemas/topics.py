"""Kafka topic names. Versioned: a breaking change to an event gets a new topic, never a silent reshape."""

from pydantic import BaseModel, ConfigDict


class TopicNames(BaseModel):
    """The pipeline's topics; every event on the public ones is keyed by job id."""

    model_config = ConfigDict(frozen=True)

    requests: str = "transcription.requests.v1"
    """`TranscriptionRequested`: written by the API or by any outside producer."""
    jobs: str = "transcription.jobs.v1"
    """`JobStatusChanged`: queued → processing (with progress) → completed | failed."""
    segments: str = "transcription.segments.v1"
    """`SegmentTranscribed`: one event per final segment, the public results stream."""
    dlq: str = "transcription.dlq.v1"
    """`DeadLetter`: events the workers could not parse, with the reason."""
    chunks: str = "transcription.chunks.v1"
    """`ChunkRequested`: one per chunk of a recording, spread over the partitions (workers' internal topic)."""
    chunks_priority: str = "transcription.chunks-priority.v1"
    """`ChunkRequested` of short recordings (a few chunks) and of those a caller waits on (`interactive`), read by
    an agent of their own whose decodes go before the others': a clip is not held up behind an hour of audio
    (workers' internal topic)."""
    chunk_results: str = "transcription.chunk-results.v1"
    """`ChunkTranscribed` | `ChunkFailed`, keyed by job id, for the stitcher (workers' internal topic)."""
    live_input: str = "transcription.live-input.v1"
    """`LiveInput`: realtime sessions' audio and controls from the API, keyed by session id (workers' internal)."""
    live_output: str = "transcription.live-output.v1"
    """`LiveOutput`: what the worker that owns a session says back to the API, keyed by session id."""
    postprocess: str = "transcription.postprocess.v1"
    """`PostprocessRequested`: finished transcripts for the language-model steps, keyed by job id (internal)."""
    stitch_state: str = "scribeflow-worker.stitch-state.v1"
    """Changelog of the stitcher's per-job state (compacted; the workers' table)."""
    chunk_attempts: str = "scribeflow-worker.chunk-attempts.v1"
    """Changelog of how often each chunk in flight was started (compacted; the workers' table)."""
    chunk_attempts_priority: str = "scribeflow-worker.chunk-attempts-priority.v1"
    """The same for the chunks of short recordings."""

    @property
    def changelogs(self) -> tuple[str, ...]:
        return (self.stitch_state, self.chunk_attempts, self.chunk_attempts_priority)

    @property
    def live(self) -> tuple[str, ...]:
        """Short-lived: a session's input is of no use minutes later, so these topics keep an hour."""
        return (self.live_input, self.live_output)

    @property
    def streams(self) -> tuple[str, ...]:
        return (
            self.requests,
            self.jobs,
            self.segments,
            self.dlq,
            self.chunks,
            self.chunks_priority,
            self.chunk_results,
            self.postprocess,
            *self.live,
        )


DEFAULT_TOPICS = TopicNames()
