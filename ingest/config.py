"""Settings groups that both the API and the workers embed in their own Settings class."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from schemas import TopicNames


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:9092"
    """Comma-separated host:port list."""
    topics: TopicNames = Field(default_factory=TopicNames)
    partitions: int = Field(default=4, ge=1)
    """Partitions for topics the project creates; workers beyond this count sit idle."""
    replication_factor: int = Field(default=1, ge=1)
    delivery_timeout_s: float = Field(default=10.0, gt=0)
    """How long a producer waits for the broker to confirm an event before the request fails."""


class StorageSettings(BaseModel):
    backend: Literal["local", "s3"] = "local"
    local_root: Path = Path("data/objects")
    s3_endpoint: str = "127.0.0.1:9000"
    """host:port of the S3-compatible server, without scheme."""
    s3_secure: bool = False
    s3_region: str | None = None
    s3_bucket: str = "scribeflow"
    s3_access_key: SecretStr = SecretStr("")
    s3_secret_key: SecretStr = SecretStr("")
