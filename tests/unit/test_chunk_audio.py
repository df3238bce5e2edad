"""A chunk's audio as stored: the split's levelled samples come back exactly, in a WAV that FFmpeg reads too."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest

from processors.audio import SAMPLE_RATE, UndecodableAudio, decode_audio
from processors.chunk_audio import from_wav, to_wav


def test_samples_come_back_exactly_and_ffmpeg_reads_the_same(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    samples = (rng.standard_normal(SAMPLE_RATE * 2 + 1) * 0.3).astype(np.float32)  # an odd count of samples
    data = to_wav(samples)
    assert np.array_equal(from_wav(data), samples), "what the split computed, not a rounding of it"
    path = tmp_path / "chunk.wav"
    path.write_bytes(data)
    assert np.allclose(decode_audio(path), samples, atol=1e-6), "a valid WAV of 32-bit floats"


def test_chunks_stored_as_16_bit_pcm_are_still_read() -> None:
    pcm = np.array([0, 16384, -32767, 32767], "<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())
    assert np.allclose(from_wav(buffer.getvalue()), pcm / 32767.0)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a wav at all",
        to_wav(np.zeros(4, np.float32))[:20],
        to_wav(np.zeros(4, np.float32)).replace(b"WAVE", b"AVI "),
    ],
)
def test_anything_else_is_undecodable(data: bytes) -> None:
    with pytest.raises(UndecodableAudio):
        from_wav(data)


def test_other_rates_and_layouts_are_undecodable() -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(np.zeros(8, "<i2").tobytes())
    with pytest.raises(UndecodableAudio, match="16 kHz mono"):
        from_wav(buffer.getvalue())
