"""A chunk's audio in the object store: 16 kHz mono 16-bit PCM WAV, written by the split agent, read by any worker.

The audio is levelled before it is stored, so 16 bits keep ample detail; a WAV is also what a person debugging a
chunk can play.
"""

from __future__ import annotations

import io
import tempfile
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ingest.storage import ObjectStore
from processors.audio import SAMPLE_RATE, UndecodableAudio


def to_wav(samples: npt.NDArray[np.float32]) -> bytes:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def from_wav(data: bytes) -> npt.NDArray[np.float32]:
    try:
        with wave.open(io.BytesIO(data), "rb") as source:
            if (source.getnchannels(), source.getsampwidth(), source.getframerate()) != (1, 2, SAMPLE_RATE):
                raise UndecodableAudio("chunk audio is not 16 kHz mono 16-bit PCM")
            pcm = np.frombuffer(source.readframes(source.getnframes()), dtype="<i2")
    except (wave.Error, EOFError) as e:
        raise UndecodableAudio(f"chunk audio is not a readable WAV file ({e})") from e
    return (pcm.astype(np.float32) / 32767.0).astype(np.float32)


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
