"""Voice embeddings: who is speaking in a stretch of audio, as a unit vector that is close for the same voice.

`VoiceEmbedder` is the interface the diarizer needs; `Ge2eEncoder` implements it with the GE2E speaker encoder
that the `resemblyzer` wheel ships (Apache-2.0: a 3-layer LSTM over 40-band mel frames, 256-dimensional output),
run with numpy alone. The wheel's weights are a PyTorch checkpoint in the legacy (pre-1.6) format; they are read
here with a restricted unpickler that builds numpy arrays and refuses any other class, so neither torch nor the
wheel's other requirements (librosa, webrtcvad) are needed: install it with `pip install --no-deps resemblyzer`.
"""

from __future__ import annotations

import importlib.util
import pickle
import struct
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np
import numpy.typing as npt

from processors.audio import SAMPLE_RATE

FloatArray = npt.NDArray[np.float32]

N_FFT = 400  # 25 ms windows at 16 kHz
HOP = 160  # 10 ms steps
N_MELS = 40
PARTIAL_FRAMES = 160  # the encoder was trained on 1.6 s partial utterances


class VoiceEmbedder(Protocol):
    dimensions: int

    def embed(self, stretches: Sequence[FloatArray]) -> FloatArray:
        """One L2-normalised row per stretch of 16 kHz mono audio (each at least a few tenths of a second)."""


class WeightsNotAvailable(Exception):
    """The voice encoder's weights cannot be found or read."""


# --- the legacy PyTorch checkpoint, read without torch ---

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


@dataclass
class _Storage:
    dtype: Any
    data: npt.NDArray[Any] | None = None


@dataclass
class _Tensor:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def array(self) -> npt.NDArray[Any]:
        base = self.storage.data
        assert base is not None
        strides = [s * base.itemsize for s in self.stride]
        return np.lib.stride_tricks.as_strided(base[self.offset :], shape=self.shape, strides=strides).copy()


@dataclass(frozen=True)
class _StorageType:
    name: str


def _rebuild_tensor(storage: _Storage, offset: int, shape: Sequence[int], stride: Sequence[int], *_: Any) -> _Tensor:
    return _Tensor(storage, offset, tuple(shape), tuple(stride))


class _CheckpointReader(pickle.Unpickler):
    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        raise pickle.UnpicklingError(f"the checkpoint holds {module}.{name}, which a weights file has no need of")

    def persistent_load(self, pid: Any) -> _Storage:
        kind, storage_type, key = pid[0], pid[1], pid[2]
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        return self.storages.setdefault(str(key), _Storage(_STORAGE_DTYPES[storage_type.name]))


def read_legacy_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint's objects, with every tensor as a numpy array."""
    with path.open("rb") as file:
        if pickle.load(file) != _LEGACY_MAGIC:  # noqa: S301 - plain integers; the object pickle is restricted
            raise WeightsNotAvailable(f"{path} is not a legacy PyTorch checkpoint")
        pickle.load(file)  # noqa: S301 - protocol version
        pickle.load(file)  # noqa: S301 - the writer's system info (sizes of C types)
        reader = _CheckpointReader(file)
        result = reader.load()
        for key in pickle.load(file):  # noqa: S301 - a list of storage keys, in the order their data follows
            storage = reader.storages[str(key)]
            (count,) = struct.unpack("<q", file.read(8))
            raw = file.read(count * np.dtype(storage.dtype).itemsize)
            storage.data = np.frombuffer(raw, dtype=storage.dtype)

    def arrays(value: Any) -> Any:
        if isinstance(value, _Tensor):
            return value.array()
        if isinstance(value, dict):
            return {k: arrays(v) for k, v in value.items()}
        return value

    loaded: dict[str, Any] = arrays(result)
    return loaded


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
        checkpoint = read_legacy_checkpoint(path or resemblyzer_weights())
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
    """The voice encoder, loaded on first use: a worker that never diarizes never reads its weights. Shared by
    the agents of one worker process."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._encoder: Ge2eEncoder | None = None

    def get(self) -> Ge2eEncoder:
        """Raises `WeightsNotAvailable` when the weights cannot be read."""
        with self._lock:
            if self._encoder is None:
                self._encoder = Ge2eEncoder.load(self._path)
            return self._encoder
