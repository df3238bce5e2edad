"""The model of one worker process: loaded once, explicitly, and shared by its agents through a batch decoder."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from processors.batching import BatchDecoder
from processors.models import resolve_model
from processors.settings import ModelSettings

log = logging.getLogger(__name__)


class Transcriber:
    """Owns one WhisperModel; `load()` is explicit so importing or constructing never touches the model."""

    def __init__(self, settings: ModelSettings, *, batch_size: int = 8) -> None:
        self.settings = settings
        self.batch_size = batch_size
        self._decoder: BatchDecoder | None = None
        self._lock = threading.Lock()
        self.load_seconds: float | None = None

    @property
    def model_name(self) -> str:
        return self.settings.name

    def load(self) -> None:
        with self._lock:
            if self._decoder is not None:
                return
            from faster_whisper import WhisperModel

            source = resolve_model(self.settings.name, self.settings.cache_dir)
            log.info("loading model %s from %s on %s", self.settings.name, source, self.settings.device)
            started = time.perf_counter()
            model: Any = WhisperModel(
                source,
                device=self.settings.device,
                compute_type=self.settings.compute_type,
                cpu_threads=self.settings.cpu_threads,
                download_root=str(self.settings.cache_dir / "hub"),
            )
            self.load_seconds = time.perf_counter() - started
            self._decoder = BatchDecoder(model, beam_size=self.settings.beam_size, batch_size=self.batch_size)

    @property
    def decoder(self) -> BatchDecoder:
        self.load()
        assert self._decoder is not None
        return self._decoder
