"""Post-processing: a finished transcript handed from the stitcher to the post-processing agent.

The transcript itself can be megabytes (hours of words), more than a Kafka message should carry, so the stitcher
stores it as a `TranscriptDraft` in the object store and sends a `PostprocessRequested` naming it, keyed by job id
on `transcription.postprocess.v1`.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from schemas.events import EventBase, JobStatusChanged
from schemas.transcript import PostStep, Segment


class TranscriptDraft(BaseModel):
    """The transcript as transcribed, and the completion to send once the steps are done."""

    segments: list[Segment]
    completed: JobStatusChanged


class PostprocessRequested(EventBase):
    type: Literal["postprocess.requested"] = "postprocess.requested"
    draft_key: Annotated[str, Field(min_length=1, max_length=1024)]
    steps: list[PostStep]
    language: str | None = None
