"""Voice embeddings: who is speaking in a stretch of audio, as a unit vector that is close for the same voice.

`VoiceEmbedder` is the interface the diarizer needs. Two implement it: CAM++ (`processors.campplus`, the default:
far fewer voices confused, benchmarks/RESULTS.md) and GE2E (here, lighter, kept as the alternative). Each comes with
its `Calibration`, since their similarities live on different scales. `Ge2eEncoder` is the GE2E speaker encoder
that the `resemblyzer` wheel ships (Apache-2.0: a 3-layer LSTM over 40-band mel frames, 256-dimensional output),
run with numpy alone. The wheel's weights are a PyTorch checkpoint, read by `processors.checkpoints`, so neither
torch nor the wheel's other requirements (librosa, webrtcvad) are needed: `pip install --no-deps resemblyzer`.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from processors.audio import SAMPLE_RATE
from processors.checkpoints import WeightsNotAvailable, read_checkpoint

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]

N_FFT = 400  # 25 ms windows at 16 kHz
HOP = 160  # 10 ms steps
N_MELS = 40
PARTIAL_FRAMES = 160  # the encoder was trained on 1.6 s partial utterances


class VoiceEmbedder(Protocol):
    name: str
    dimensions: int

    def embed(self, stretches: Sequence[FloatArray]) -> FloatArray:
        """One L2-normalised row per stretch of 16 kHz mono audio (each at least a few tenths of a second)."""


def resemblyzer_weights() -> Path:
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotAvailable(
            "diarization needs the voice encoder of the `resemblyzer` wheel: pip install --no-deps resemblyzer"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    if not path.is_file():
        raise WeightsNotAvailable(f"{path} is missing from the installed resemblyzer package")
    return path


@dataclass(frozen=True)
class Calibration:
    """How a model's similarities read, measured on the diarization benchmark's recordings (benchmarks/RESULTS.md)."""

    threshold: float
    """Clusters merge while their average cosine similarity is above this."""
    min_windows: int
    """A cluster of fewer windows is a cough or a raised voice, not a speaker: it joins the nearest cluster."""
    known_match: float
    """A cluster takes a known speaker's name when its voice is at least this alike to the reference."""


CALIBRATIONS = {
    # GE2E: error lowest at 0.6 to 0.65, voices split above 0.7.
    "ge2e": Calibration(threshold=0.65, min_windows=4, known_match=0.65),
    # CAM++: every real voice in one cluster of its own from 0.2 to 0.3 (0.1 merges voices, 0.35 splits one);
    # clusters of 4 windows were stray pieces of a voice found elsewhere. A reference and its speaker's cluster:
    # 0.73 or more; a reference and anyone else's: 0.26 at most.
    "campplus": Calibration(threshold=0.25, min_windows=5, known_match=0.5),
}
DEFAULT_VOICE_MODEL = "campplus"
LEGACY_VOICE_MODEL = "ge2e"
"""What embedded the voices of a chunk result that does not say (written before there was a choice)."""


def calibration(model: str) -> Calibration:
    try:
        return CALIBRATIONS[model]
    except KeyError:
        raise WeightsNotAvailable(f"unknown voice model {model!r}; known: {', '.join(CALIBRATIONS)}") from None


# --- features and the encoder ---


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    mel = hz / (200.0 / 3)
    log_part = hz >= 1000.0
    mel[log_part] = 15.0 + np.log(hz[log_part] / 1000.0) / (np.log(6.4) / 27.0)
    return mel


def _mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    hz = mel * (200.0 / 3)
    log_part = mel >= 15.0
    hz[log_part] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel[log_part] - 15.0))
    return hz


@lru_cache(maxsize=1)
def mel_filters() -> FloatArray:
    """(40, 201) triangular filters with Slaney's area normalisation, as `librosa.filters.mel` makes them."""
    fft_hz = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(
        np.linspace(_hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([SAMPLE_RATE / 2]))[0], N_MELS + 2)
    )
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def mel_frames(audio: FloatArray) -> FloatArray:
    """(frames, 40) mel power spectrogram, centred frames with reflected edges (what the encoder was trained on)."""
    padded = np.pad(audio.astype(np.float32), N_FFT // 2, mode="reflect")
    count = 1 + (padded.size - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(count, N_FFT), strides=(padded.strides[0] * HOP, padded.strides[0])
    )
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    return (power.astype(np.float32) @ mel_filters().T).astype(np.float32)


def _sigmoid(x: FloatArray) -> FloatArray:
    out: FloatArray = 0.5 * (1.0 + np.tanh(0.5 * x))
    return out


class Ge2eEncoder:
    name = "ge2e"
    dimensions = 256

    def __init__(self, state: dict[str, npt.NDArray[Any]]) -> None:
        self._layers = [
            (
                state[f"lstm.weight_ih_l{n}"].T.astype(np.float32),
                state[f"lstm.weight_hh_l{n}"].T.astype(np.float32),
                (state[f"lstm.bias_ih_l{n}"] + state[f"lstm.bias_hh_l{n}"]).astype(np.float32),
            )
            for n in range(3)
        ]
        self._linear = state["linear.weight"].T.astype(np.float32), state["linear.bias"].astype(np.float32)

    @classmethod
    def load(cls, path: Path | None = None) -> Ge2eEncoder:
        checkpoint = read_checkpoint(path or resemblyzer_weights())
        return cls(checkpoint["model_state"])

    def forward(self, mels: FloatArray) -> FloatArray:
        """(batch, frames, 40) → (batch, 256), as the LSTM, linear layer, ReLU and L2 norm of the original."""
        x = mels
        for w_ih, w_hh, bias in self._layers:
            batch, steps, _ = x.shape
            hidden = w_hh.shape[0]
            projected = x @ w_ih + bias  # every time step's input part at once
            h = np.zeros((batch, hidden), np.float32)
            c = np.zeros((batch, hidden), np.float32)
            outputs = np.empty((batch, steps, hidden), np.float32)
            for t in range(steps):
                gates = projected[:, t] + h @ w_hh  # PyTorch's order: input, forget, cell, output
                i = _sigmoid(gates[:, :hidden])
                f = _sigmoid(gates[:, hidden : 2 * hidden])
                g = np.tanh(gates[:, 2 * hidden : 3 * hidden])
                o = _sigmoid(gates[:, 3 * hidden :])
                c = f * c + i * g
                h = o * np.tanh(c)
                outputs[:, t] = h
            x = outputs
        weight, bias = self._linear
        raw = np.maximum(h @ weight + bias, 0.0)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        embedded: FloatArray = raw / np.maximum(norms, 1e-9)
        return embedded

    def embed(self, stretches: Sequence[FloatArray]) -> FloatArray:
        """Each stretch as the normalised mean of its 1.6 s partials (half overlapping; shorter ones padded)."""
        batches: list[FloatArray] = []
        owners: list[int] = []
        for n, audio in enumerate(stretches):
            mel = mel_frames(_normalise_volume(audio))
            if mel.shape[0] < PARTIAL_FRAMES:
                mel = np.pad(mel, ((0, PARTIAL_FRAMES - mel.shape[0]), (0, 0)))
            starts = range(0, max(1, mel.shape[0] - PARTIAL_FRAMES // 2), PARTIAL_FRAMES // 2)
            for start in starts:
                part = mel[start : start + PARTIAL_FRAMES]
                if part.shape[0] == PARTIAL_FRAMES:
                    batches.append(part)
                    owners.append(n)
        if not batches:
            return np.zeros((0, self.dimensions), np.float32)
        partials = np.concatenate(
            [self.forward(np.stack(batches[at : at + 256])) for at in range(0, len(batches), 256)]
        )
        out = np.zeros((len(stretches), self.dimensions), np.float32)
        np.add.at(out, np.asarray(owners), partials)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        result: FloatArray = out / np.maximum(norms, 1e-9)
        return result


def _normalise_volume(audio: FloatArray, target_dbfs: float = -30.0) -> FloatArray:
    """Quiet audio is raised to the level the encoder was trained at (never lowered, as the original does)."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    if rms <= 1e-9:
        return audio
    change = target_dbfs - 20 * np.log10(rms)
    return audio * np.float32(10 ** (change / 20)) if change > 0 else audio


class LazyEncoder:
    """The voice encoders, each loaded on first use: a worker that never diarizes never reads their weights.
    Shared by the agents of one worker process."""

    def __init__(
        self, default: str = DEFAULT_VOICE_MODEL, *, threads: int = 0, device: str = "cpu", int8: bool = False
    ) -> None:
        """`threads`: ONNX Runtime's on the CPU; `device`: where CAM++ runs (`DiarizationSettings.device`); `int8`:
        CAM++ on the CPU in 8 bits (`DiarizationSettings.precision`)."""
        self.default = default
        self._threads = threads
        self._device = device
        self._int8 = int8
        self._lock = threading.Lock()
        self._encoders: dict[str, VoiceEmbedder] = {}

    def get(self, model: str | None = None) -> VoiceEmbedder:
        """`model`, or the configured one; raises `WeightsNotAvailable` when its weights cannot be read."""
        name = model or self.default
        calibration(name)
        with self._lock:
            if name not in self._encoders:
                started = time.perf_counter()
                if name == "campplus":
                    self._encoders[name] = _campplus(self._device, self._threads, self._int8)
                else:
                    self._encoders[name] = Ge2eEncoder.load()
                kind = type(self._encoders[name]).__name__
                precision = getattr(self._encoders[name], "precision", "float32")
                log.info(
                    "voice encoder %s (%s, %s) loaded in %.2f s", name, kind, precision, time.perf_counter() - started
                )
            return self._encoders[name]


def _campplus(device: str, threads: int, int8: bool) -> VoiceEmbedder:
    """CAM++ on the GPU through PyTorch where asked and possible, else on the CPU through ONNX Runtime."""
    from processors.campplus import CamPlusPlus

    if device != "cpu":
        if importlib.util.find_spec("torch") is not None:
            import torch

            if torch.cuda.is_available():
                from processors.campplus_torch import TorchCamPlusPlus

                return TorchCamPlusPlus.load(device="cuda")
        if device == "cuda":
            raise WeightsNotAvailable("diarization.device is cuda, but PyTorch sees no GPU here (the gpu extra)")
    return CamPlusPlus.load(threads=threads, int8=int8)
