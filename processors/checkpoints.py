"""PyTorch checkpoints read without torch: every tensor becomes a numpy array.

Voice encoders ship their weights as PyTorch checkpoints, in the legacy (pre-1.6) stream format or the zip format
that followed it. Both are pickles; they are read with a restricted unpickler that builds numpy arrays and refuses
any class a file of weights has no need of, so loading weights never runs code from the file.
"""

from __future__ import annotations

import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt


class WeightsNotAvailable(Exception):
    """A voice encoder's weights cannot be found or read."""


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
    def __init__(self, file: IO[bytes]) -> None:
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


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint's objects, with every tensor as a numpy array, whichever format it is in."""
    if zipfile.is_zipfile(path):
        return _read_zip(path)
    return read_legacy_checkpoint(path)


def _read_zip(path: Path) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            pickled = next((n for n in names if n.endswith("/data.pkl")), None)
            if pickled is None:
                raise WeightsNotAvailable(f"{path} is a zip file but not a PyTorch checkpoint")
            prefix = pickled[: -len("data.pkl")]
            with archive.open(pickled) as file:
                reader = _CheckpointReader(file)
                result = reader.load()
            for key, storage in reader.storages.items():
                storage.data = np.frombuffer(archive.read(f"{prefix}data/{key}"), dtype=storage.dtype)
    except (zipfile.BadZipFile, KeyError, pickle.UnpicklingError) as e:
        raise WeightsNotAvailable(f"{path} could not be read: {e}") from e
    loaded: dict[str, Any] = _arrays(result)
    return loaded


def read_legacy_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint in the legacy stream format."""
    try:
        return _read_legacy(path)
    except (pickle.UnpicklingError, EOFError, KeyError, struct.error, ValueError) as e:
        raise WeightsNotAvailable(f"{path} could not be read: {e}") from e


def _read_legacy(path: Path) -> dict[str, Any]:
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

    loaded: dict[str, Any] = _arrays(result)
    return loaded


def _arrays(value: Any) -> Any:
    if isinstance(value, _Tensor):
        return value.array()
    if isinstance(value, dict):
        return {k: _arrays(v) for k, v in value.items()}
    return value
