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
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
