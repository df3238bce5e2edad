"""Making test inputs with PyAV: real speech re-encoded into other containers, tones, silence, junk."""

from __future__ import annotations

import base64
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

SHARED_AUDIO = Path(__file__).resolve().parents[2].parent / "shared" / "audio"


def shared(name: str) -> Path:
    path = SHARED_AUDIO / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the shared recordings are expected beside the repository")
    return path


def read_stereo(path: Path, rate: int) -> npt.NDArray[np.float32]:
    """Decode to interleaved-free (channels, samples) float32 at `rate`, keeping two channels."""
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=rate)
        frames = [out.to_ndarray() for frame in container.decode(audio=0) for out in resampler.resample(frame)]
        frames += [out.to_ndarray() for out in resampler.resample(None)]
    return np.concatenate(frames, axis=1).astype(np.float32)


def encode(
    samples: npt.NDArray[np.float32],
    path: Path,
    *,
    rate: int,
    codec: str,
    container_format: str | None = None,
    layout: str = "stereo",
) -> Path:
    """Write (channels, samples) float32 audio with `codec` into `path`'s container."""
    with av.open(str(path), mode="w", format=container_format) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        assert isinstance(stream, av.AudioStream)
        formats = stream.codec_context.codec.audio_formats
        assert formats, f"{codec} is not an audio encoder"
        resampler = av.AudioResampler(format=formats[0].name, layout=layout, rate=rate)
        frame_size = stream.codec_context.frame_size or 1024
        planar = np.ascontiguousarray(samples)
        pts = 0
        for start in range(0, planar.shape[1], frame_size):
            block = np.ascontiguousarray(planar[:, start : start + frame_size])
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.pts = pts
            frame.time_base = Fraction(1, rate)
            pts += block.shape[1]
            for resampled in resampler.resample(frame):
                for packet in stream.encode(resampled):
                    out.mux(packet)
        for resampled in resampler.resample(None):
            for packet in stream.encode(resampled):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def tone(seconds: float, *, rate: int = 16_000, freq: float = 440.0) -> npt.NDArray[np.float32]:
    t = np.arange(int(seconds * rate)) / rate
    mono = (0.2 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([mono, mono])


def long_speech(path: Path) -> Path:
    """About 50 s of real speech: four recordings back to back with one-second pauses, as FLAC."""
    rate = 16_000
    parts = []
    for name in ["jfk.flac", "librispeech_dev-clean_1272-128104-0000.wav", "fleurs_de_000.ogg", "jfk.flac"]:
        parts += [read_stereo(shared(name), rate), np.zeros((2, rate), np.float32)]
    return encode(np.concatenate(parts, axis=1), path, rate=rate, codec="flac")


def voices(path: Path, names: list[str], *, pause_s: float = 1.0) -> list[tuple[float, float]]:
    """Recordings of ../shared/audio back to back with pauses, as FLAC at `path`; returns each part's (start, end)."""
    rate = 16_000
    parts, bounds, at = [], [], 0.0
    for name in names:
        samples = read_stereo(shared(name), rate)
        bounds.append((at, at + samples.shape[1] / rate))
        parts += [samples, np.zeros((2, int(pause_s * rate)), np.float32)]
        at += samples.shape[1] / rate + pause_s
    encode(np.concatenate(parts, axis=1), path, rate=rate, codec="flac")
    return bounds


def data_url(source: Path, start_s: float, end_s: float, scratch: Path) -> str:
    """A stretch of a recording as a base64 WAV data URL, the way OpenAI's known_speaker_references[] come."""
    rate = 16_000
    samples = read_stereo(source, rate)[:, int(start_s * rate) : int(end_s * rate)]
    wav = encode(samples, scratch / f"{source.stem}-{start_s:g}-{end_s:g}.wav", rate=rate, codec="pcm_s16le")
    return "data:audio/wav;base64," + base64.b64encode(wav.read_bytes()).decode()
