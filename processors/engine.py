"""The model of one worker process: loaded once, explicitly, and shared by its agents through batch decoders.

Live sessions, short recordings and the chunks of long ones share the model through a gate: one call into the
model at a time, and a waiting call of a higher rank goes before any waiting call of a lower one: live decodes
first, then the chunks of short recordings, then everything else. A batch is several calls (encode, generate per
temperature, alignment), so a live decode or a short recording waits at most for one of them, not for a whole
batch of a long recording's chunks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from functools import partial
from typing import Any

from processors.batching import BatchDecoder
from processors.cuda import preload_cuda_libraries
from processors.models import resolve_model
from processors.settings import ModelSettings

log = logging.getLogger(__name__)


class Rank(IntEnum):
    """Who goes first at the gate: the highest rank waiting."""

    BATCH = 0
    PRIORITY = 1
    """Chunks of short recordings and of those a caller waits on (`transcription.chunks-priority.v1`)."""
    LIVE = 2


class ModelGate:
    """One model call at a time; of the callers waiting, the highest rank first."""

    def __init__(self) -> None:
        self._free = threading.Condition()
        self._busy = False
        self._waiting = [0] * len(Rank)

    @contextmanager
    def hold(self, *, rank: Rank) -> Iterator[None]:
        with self._free:
            self._waiting[rank] += 1
            try:
                while self._busy or any(self._waiting[rank + 1 :]):
                    self._free.wait()
            finally:
                self._waiting[rank] -= 1
            self._busy = True
        try:
            yield
        finally:
            with self._free:
                self._busy = False
                self._free.notify_all()


class Transcriber:
    """Owns one WhisperModel; `load()` is explicit so importing or constructing never touches the model."""

    def __init__(self, settings: ModelSettings, *, batch_size: int = 8) -> None:
        self.settings = settings
        self.batch_size = batch_size
        self._decoder: BatchDecoder | None = None
        self._priority_decoder: BatchDecoder | None = None
        self._live_decoder: BatchDecoder | None = None
        self.gate = ModelGate()
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

            if self.settings.device != "cpu":
                preload_cuda_libraries()
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
            beam = self.settings.beam_size
            self._decoder = BatchDecoder(
                model, beam_size=beam, batch_size=self.batch_size, step=partial(self.gate.hold, rank=Rank.BATCH)
            )
            self._priority_decoder = BatchDecoder(
                model, beam_size=beam, batch_size=self.batch_size, step=partial(self.gate.hold, rank=Rank.PRIORITY)
            )
            self._live_decoder = BatchDecoder(
                model, beam_size=beam, batch_size=1, step=partial(self.gate.hold, rank=Rank.LIVE)
            )

    @property
    def decoder(self) -> BatchDecoder:
        self.load()
        assert self._decoder is not None
        return self._decoder

    @property
    def priority_decoder(self) -> BatchDecoder:
        """The same model, for the chunks of short recordings: its calls go before the batch decoder's."""
        self.load()
        assert self._priority_decoder is not None
        return self._priority_decoder

    @property
    def live_decoder(self) -> BatchDecoder:
        """The same model, for live sessions: its calls go before every other decoder's."""
        self.load()
        assert self._live_decoder is not None
        return self._live_decoder
