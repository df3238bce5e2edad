"""The API process's settings: read once, in `ApiSettings()`, from `SCRIBEFLOW_*` variables."""

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.config import KafkaSettings, StorageSettings


class AuthSettings(BaseModel):
    enabled: bool = True
    """Off (`SCRIBEFLOW_AUTH__ENABLED=false`) only for local use: then anyone who reaches the port reads every job."""


class LimitSettings(BaseModel):
    """Defaults for keys that carry no limit of their own; None is unlimited."""

    requests_per_minute: int | None = Field(default=600, gt=0)
    audio_minutes_per_day: float | None = Field(default=None, gt=0)
    storage_uri: str | None = None
    """Where the counters live, as a `limits` storage URI (`redis://host:6379`); None: the job database."""


class WebhookSettings(BaseModel):
    secret: SecretStr | None = None
    """`whsec_…` (Standard Webhooks): receivers verify `webhook-signature` with it. Webhooks need one."""
    default_url: str | None = None
    """Called for jobs that name no `webhook_url`; None: only jobs that do."""
    timeout_s: float = Field(default=10.0, gt=0)
    """A 2xx within this is success."""
    max_attempts: int = Field(default=8, ge=1)
    backoff_s: float = Field(default=5.0, gt=0)
    """Wait before the second attempt; it doubles each time (with jitter), up to `max_backoff_s`."""
    max_backoff_s: float = Field(default=3600.0, gt=0)
    allow_private_urls: bool = False
    """Allow loopback, private, link-local and reserved addresses: for local use and tests only."""
    inline_bytes: int = Field(default=256 * 1024, ge=0)
    """A transcript up to this size (JSON) is in the body; a larger one is linked (`transcript_url`)."""
    max_response_bytes: int = Field(default=64 * 1024, ge=0)
    senders: int = Field(default=8, ge=1)
    """Deliveries in flight at once per API process."""
    poll_s: float = Field(default=0.5, gt=0)


class RealtimeSettings(BaseModel):
    enabled: bool = True
    """Serve `/v1/realtime` (the workers' live agent does the decoding)."""
    max_session_s: float = Field(default=1800.0, gt=0)
    """A session is closed after this long (OpenAI's sessions last at most an hour)."""
    accept_timeout_s: float = Field(default=10.0, gt=0)
    """How long a new session waits for a worker to take it."""
    keepalive_s: float = Field(default=2.0, gt=0)
    """How often the API tells the session's worker that the client is still there."""
    worker_timeout_s: float = Field(default=10.0, gt=0)
    """A worker silent this long is taken for dead: the client gets `worker_lost`."""
    ping_s: float = Field(default=20.0, gt=0)
    """WebSocket pings to every client this often, so proxies keep idle connections open; a client that does not
    answer one within as long is disconnected."""


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SCRIBEFLOW_", env_nested_delimiter="__", extra="ignore", env_parse_none_str=""
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    database_url: str | None = None
    """PostgreSQL (`postgresql://user:password@host/db`) for jobs, keys, rate counters and scores, shared by every
    API replica; None: the SQLite file at `database_path`."""
    database_path: Path = Path("data/jobs.sqlite3")
    """The SQLite database when no `database_url` is set."""
    worker_group_id: str = "scribeflow-worker"
    """The workers' `SCRIBEFLOW_GROUP_ID`: whose consumer lag `/metrics` reports."""
    materialiser_group_id: str = "scribeflow-api"
    """Consumer group of the materialiser. Replicas with their own SQLite file need distinct groups."""
    auth: AuthSettings = Field(default_factory=AuthSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    max_audio_seconds: float = Field(default=4 * 3600, gt=0)
    """Longer uploads are refused before they are accepted (the workers enforce the same setting)."""
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    """Larger uploads get 413 before they are read to the end."""
    served_models: list[str] = Field(default_factory=lambda: ["base"])
    """Model names the workers serve (the worker's `model.name`); the first is what `whisper-1` means."""
    sync_timeout_s: float = Field(default=600.0, gt=0)
    """How long `/v1/audio/*` waits for its job; after that the client gets 504 with the job id to poll."""
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    realtime: RealtimeSettings = Field(default_factory=RealtimeSettings)
    retention_days: float | None = Field(default=None, gt=0)
    """Finished jobs' uploaded audio is deleted after this many days (their transcripts stay); None keeps it."""
    retention_interval_s: float = Field(default=3600.0, gt=0)
    """How often retention looks for audio to delete."""
    review_share: float = Field(default=0.0, ge=0, le=1)
    """Share of accepted jobs picked for human review (listed at `GET /v1/review` until a reference is posted)."""
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
