from pathlib import Path

import av
import numpy as np
import pytest

from processors.audio import SAMPLE_RATE, UndecodableAudio, decode_audio
from tests.support.audio import encode, read_stereo, shared, tone

FORMATS = [
    ("mp3", "libmp3lame", None, 44_100),
    ("ogg", "libopus", "ogg", 48_000),
    ("m4a", "aac", "mp4", 44_100),
    ("webm", "libopus", "webm", 48_000),
    ("wav", "pcm_s16le", None, 22_050),
    ("flac", "flac", None, 8_000),
]


@pytest.mark.parametrize(("ext", "codec", "container", "rate"), FORMATS)
def test_containers_decode_to_16k_mono_float32(
    tmp_path: Path, ext: str, codec: str, container: str | None, rate: int
) -> None:
    source = read_stereo(shared("jfk.flac"), rate)
    path = encode(source, tmp_path / f"jfk.{ext}", rate=rate, codec=codec, container_format=container)
    samples = decode_audio(path)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(samples.size / SAMPLE_RATE - 11.0) < 0.1
    assert 0.05 < float(np.abs(samples).max()) < 1.5  # lossy codecs overshoot full scale a little


def test_stereo_is_downmixed(tmp_path: Path) -> None:
    left_only = tone(1.0, rate=44_100)
    left_only[1] = 0
    samples = decode_audio(encode(left_only, tmp_path / "l.wav", rate=44_100, codec="pcm_s16le"))
    assert samples.size == SAMPLE_RATE
    assert 0.05 < float(np.abs(samples).max()) < 0.2  # half of the 0.2 tone: averaged, not one channel dropped


def test_corrupt_bytes_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "junk.mp3"
    path.write_bytes(np.random.default_rng(0).bytes(50_000))
    with pytest.raises(UndecodableAudio):
        decode_audio(path)


def test_truncated_file_keeps_what_decoded(tmp_path: Path) -> None:
    full = shared("jfk.flac").read_bytes()
    cut = tmp_path / "cut.flac"
    cut.write_bytes(full[: len(full) // 2])
    samples = decode_audio(cut)
    assert 3.0 < samples.size / SAMPLE_RATE < 9.0


def test_file_without_audio_stream(tmp_path: Path) -> None:
    path = tmp_path / "video.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 40, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with pytest.raises(UndecodableAudio, match="no audio stream"):
        decode_audio(path)


def test_length_limit(tmp_path: Path) -> None:
    path = encode(tone(5.0), tmp_path / "t.wav", rate=16_000, codec="pcm_s16le")
    with pytest.raises(UndecodableAudio, match="longer than the limit"):
        decode_audio(path, max_seconds=2)
    assert decode_audio(path, max_seconds=10).size == 5 * SAMPLE_RATE


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(UndecodableAudio):
        decode_audio(path)
