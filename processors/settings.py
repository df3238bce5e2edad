"""The worker process's settings: read once, in `WorkerSettings()`, from `SCRIBEFLOW_*` variables."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.config import KafkaSettings, StorageSettings


class ModelSettings(BaseModel):
    name: str = "base"
    """`base` (bundled multilingual), `tiny.en` (bundled English-only), a CTranslate2 model directory,
    or a hub name such as `large-v3` on machines that can download it."""
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compute_type: str = "int8"
    """CTranslate2 compute type: int8 on CPU, float16 on CUDA."""
    cpu_threads: int = Field(default=0, ge=0)
    """0 lets CTranslate2 use every core."""
    cache_dir: Path = Path(".cache/models")
    """Where bundled models are assembled and hub models are downloaded."""
    beam_size: int = Field(default=5, ge=1)
    vad_filter: bool = True
    """Skip silence before decoding; without it long inputs hallucinate in pauses."""
    condition_on_previous_text: bool = False
    """Off: conditioning lets one bad window derail the rest and silently drop stretches of long inputs."""


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCRIBEFLOW_", env_nested_delimiter="__", extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    group_id: str = "scribeflow-worker"
    """Kafka consumer group of the workers: every worker in it shares the request partitions."""
    scratch_dir: Path = Path("data/scratch")
    """Temporary copies of audio being decoded."""
    max_audio_seconds: float = Field(default=4 * 3600, gt=0)
    progress_interval_s: float = Field(default=2.0, ge=0)
    """Least time between two progress events of one job."""
    log_level: str = "info"
