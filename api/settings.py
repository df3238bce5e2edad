"""The API process's settings: read once, in `ApiSettings()`, from `SCRIBEFLOW_*` variables."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.config import KafkaSettings, StorageSettings


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCRIBEFLOW_", env_nested_delimiter="__", extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    database_path: Path = Path("data/jobs.sqlite3")
    """SQLite job store, materialised from the Kafka topics."""
    materialiser_group_id: str = "scribeflow-api"
    """Consumer group of the materialiser. Replicas with their own SQLite file need distinct groups."""
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    """Larger uploads get 413 before they are read to the end."""
    served_models: list[str] = Field(default_factory=lambda: ["base"])
    """Model names the workers serve (the worker's `model.name`); the first is what `whisper-1` means."""
    sync_timeout_s: float = Field(default=600.0, gt=0)
    """How long `/v1/audio/*` waits for its job; after that the client gets 504 with the job id to poll."""
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
