"""Settings of the launcher (`scribeflow up`): what to start, and where its state lives."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.settings import AuthSettings
from ingest.config import KafkaSettings
from processors.settings import ModelSettings

AUTO_WORKERS = 4
"""Most workers started for the cores of a CPU machine: each holds its own copy of the model."""


def worker_layout(workers: int | None, cpu_threads: int, device: str, cores: int) -> tuple[int, int]:
    """On CPU, one worker per core with one thread each unless told otherwise: CTranslate2's beam search is many
    small operations that two threads of one decode share poorly, so two workers transcribe long recordings about
    a quarter faster than one on both cores, and four live sessions finish turns in half the time (measured in
    `benchmarks/RESULTS.md`). A GPU is shared by one worker's batches; more workers there only add copies of the
    model. Settings given are kept."""
    if workers is not None:
        return workers, cpu_threads
    if device != "cpu":
        return 1, cpu_threads
    cores = max(1, cores)
    count = max(1, min(AUTO_WORKERS, cores // cpu_threads if cpu_threads else cores))
    return count, cpu_threads or max(1, cores // count)


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SCRIBEFLOW_", env_nested_delimiter="__", extra="ignore", env_parse_none_str=""
    )

    data_dir: Path = Path("data")
    """Broker log, audio objects, job database and scratch space of the embedded stack."""
    cache_dir: Path = Path(".cache")
    """Downloaded broker jars and assembled models."""
    embedded_broker: bool = True
    """Start a local single-node Kafka broker; off when `kafka.bootstrap_servers` names a cluster."""
    database_url: str | None = None
    """The API's PostgreSQL database, if any (passed on to the API; `scribeflow keys` uses it too)."""
    database_path: Path | None = None
    """The job database (jobs, API keys, rate counters); None: `jobs.sqlite3` in `data_dir`."""
    auth: AuthSettings = Field(default_factory=AuthSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    """The workers' model; the API is told to serve it under its name and as `whisper-1`."""
    kafka_version: str | None = None
    """Apache Kafka version of the embedded broker; None is the tested default."""
    broker_heap: str = "512m"
    host: str = "127.0.0.1"
    """Where the API listens (shared with the API process's own setting of the same name)."""
    port: int = 8000
    workers: int | None = Field(default=None, ge=0)
    """Worker processes, each with its own model. Unset: one per core on CPU, at most `AUTO_WORKERS` (see
    `worker_layout`), and one on a GPU."""
    worker_metrics_port: int | None = Field(default=9400, ge=0, le=65000)
    """Worker N's Prometheus endpoint listens on this port + N; empty for none."""

    def worker_layout(self, cores: int) -> tuple[int, int]:
        """Worker processes to start and CTranslate2 threads for each (0: every core)."""
        return worker_layout(self.workers, self.model.cpu_threads, self.model.device, cores)

    @property
    def job_database(self) -> Path:
        return (self.database_path or self.data_dir / "jobs.sqlite3").resolve()
