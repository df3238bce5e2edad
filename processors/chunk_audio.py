"""A chunk's audio in the object store: 16 kHz mono WAV of 32-bit floats, written by the split agent, read by any
worker.

Floats, not 16-bit PCM: the split levels each stretch of speech before it stores it, and rounding the levelled
samples to 16 bits, though inaudible, changed what the decoder heard. The service's transcript then depended on
the storage round trip: on the long-recording benchmark's recordings, the same steps in one process gave 7.10,
7.59 and 11.90 % WER with the samples as computed against 7.69, 7.99 and 13.04 % through 16-bit chunks. A chunk
is scratch, deleted with its job, so twice the bytes (64 kB a second) cost little. A WAV is still what a person
debugging a chunk can play. Chunks stored as 16-bit PCM (by an older split agent) are read as well.
"""

from __future__ import annotations

import io
import struct
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ingest.storage import ObjectStore
from processors.audio import SAMPLE_RATE, UndecodableAudio

_PCM, _FLOAT = 1, 3  # WAVE format tags


def to_wav(samples: npt.NDArray[np.float32]) -> bytes:
    data = np.asarray(samples, "<f4").tobytes()
    fmt = struct.pack("<HHIIHH", _FLOAT, 1, SAMPLE_RATE, SAMPLE_RATE * 4, 4, 32)
    fact = struct.pack("<I", len(data) // 4)  # required for formats other than PCM
    body = b"WAVE" + _chunk(b"fmt ", fmt) + _chunk(b"fact", fact) + _chunk(b"data", data)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def from_wav(data: bytes) -> npt.NDArray[np.float32]:
    """The samples of a chunk written by `to_wav`, or of a 16 kHz mono 16-bit PCM WAV."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise UndecodableAudio("chunk audio is not a readable WAV file (no RIFF/WAVE header)")
    chunks: dict[bytes, bytes] = {}
    at = 12
    while at + 8 <= len(data):
        name, size = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        chunks.setdefault(name, data[at + 8 : at + 8 + size])
        at += 8 + size + (size & 1)
    if b"fmt " not in chunks or b"data" not in chunks or len(chunks[b"fmt "]) < 16:
        raise UndecodableAudio("chunk audio is not a readable WAV file (no format or data)")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", chunks[b"fmt "][:16])
    payload = chunks[b"data"]
    if channels == 1 and rate == SAMPLE_RATE and (tag, bits) == (_FLOAT, 32):
        return np.frombuffer(payload[: len(payload) // 4 * 4], "<f4").astype(np.float32)
    if channels == 1 and rate == SAMPLE_RATE and (tag, bits) == (_PCM, 16):
        pcm = np.frombuffer(payload[: len(payload) // 2 * 2], "<i2")
        return (pcm.astype(np.float32) / 32767.0).astype(np.float32)
    raise UndecodableAudio("chunk audio is not 16 kHz mono 32-bit float or 16-bit PCM")


def _chunk(name: bytes, payload: bytes) -> bytes:
    return name + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) & 1 else b"")


def put_chunk(store: ObjectStore, key: str, samples: npt.NDArray[np.float32]) -> None:
    data = to_wav(samples)
    store.put(key, io.BytesIO(data), length=len(data), content_type="audio/wav")


def get_chunk(store: ObjectStore, key: str, scratch_dir: Path) -> npt.NDArray[np.float32]:
    """Raises the store's `ObjectNotFound` / `StorageError`, or `UndecodableAudio`."""
    scratch_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch_dir, prefix="chunk-") as tmp:
        local = Path(tmp) / "chunk.wav"
        store.download(key, local)
        return from_wav(local.read_bytes())
