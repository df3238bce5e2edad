"""Webhooks: the body a receiver gets when a job ends, and the delivery record the API keeps of each attempt.

Bodies follow the Standard Webhooks convention (`type`, `timestamp`, `data`), signed with its headers
(`webhook-id`, `webhook-timestamp`, `webhook-signature`).
"""

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.transcript import JobError, JobStatus, Transcript


class WebhookJob(BaseModel):
    id: str
    status: JobStatus
    error: JobError | None = None
    transcript: Transcript | None = None
    """The transcript itself, when it is small enough (the API's `webhooks.inline_bytes`); else `transcript_url`."""
    transcript_url: str | None = None
    """`GET` it with an API key of the job's owner: the job with its transcript."""


class WebhookEvent(BaseModel):
    """POSTed to a job's `webhook_url` once, when it completes or fails (retried until a 2xx)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["transcription.completed", "transcription.failed"]
    timestamp: AwareDatetime
    data: WebhookJob


class WebhookAttempt(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None = None
    """The receiver's answer; None when there was none (timeout, refused connection, unsafe address)."""
    latency_ms: int
    error: str | None = None


class WebhookDelivery(BaseModel):
    object: Literal["webhook.delivery"] = "webhook.delivery"
    event_id: str
    """The `webhook-id` header: the same on every attempt, so receivers can de-duplicate."""
    type: str
    url: str
    state: Literal["pending", "delivered", "gone", "failed"]
    """`gone`: the receiver answered 410 and is not asked again; `failed`: every attempt failed."""
    next_attempt_at: datetime | None = None
    attempts: list[WebhookAttempt] = Field(default_factory=list)


class WebhookDeliveryList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WebhookDelivery]


class WebhookGaveUp(BaseModel):
    """On `transcription.dlq.v1`: a webhook that was never delivered, with why."""

    type: Literal["webhook.gave_up"] = "webhook.gave_up"
    event_id: str
    job_id: str
    url: str
    attempts: int
    reason: str
    occurred_at: AwareDatetime
    schema_version: Literal[1] = 1
