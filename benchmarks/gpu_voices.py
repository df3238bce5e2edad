"""The CAM++ voice encoder on a GPU worker: ONNX Runtime on the host's cores against PyTorch on the GPU.

The windows are those a diarized job embeds (1.5 s every 0.75 s) over a recording given as 16 kHz int16 `.npy`
files (the halves `benchmarks/gpu_longform.py --prepare` writes). Prints each encoder's time for all the windows
(the second of two passes, after a warm-up) and how alike the two encoders' embeddings are.

    python3 benchmarks/gpu_voices.py --recording DIR --weights campplus_cn_en_common.pt   # on the GPU machine
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.standalone import processors_module  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recording", type=Path, required=True)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    campplus = processors_module("campplus")
    on_gpu = processors_module("campplus_torch").TorchCamPlusPlus
    windows_over = processors_module("diarization").speech_windows
    pcm = np.concatenate([np.load(p) for p in sorted(args.recording.glob("*.npy"))])
    audio = pcm.astype(np.float32) / 32767.0
    windows = windows_over([(0.0, audio.size / 16_000)])
    stretches = [audio[round(s * 16_000) : round(e * 16_000)] for s, e in windows]
    print(f"{len(stretches)} windows over {audio.size / 16_000:.0f} s; {os.cpu_count()} cores", flush=True)
    rows, embeddings = [], {}
    for name, encoder in (
        (f"ONNX Runtime, CPU, {os.cpu_count()} threads", campplus.CamPlusPlus.load(args.weights)),
        ("ONNX Runtime, CPU, 4 threads", campplus.CamPlusPlus.load(args.weights, 4)),
        (f"PyTorch, {args.device}", on_gpu.load(args.weights, args.device)),
    ):
        encoder.embed(stretches[:64])  # warm-up: kernels, allocator
        times = []
        for _ in range(2):
            started = time.perf_counter()
            embeddings[name] = encoder.embed(stretches)
            times.append(time.perf_counter() - started)
        rows.append((name, min(times)))
        print(f"{name:<36} {min(times):7.2f} s  {len(stretches) / min(times):8.0f} windows/s", flush=True)
    first, *others = embeddings.values()
    for name, other in zip(list(embeddings)[1:], others, strict=True):
        cosine = (first * other).sum(axis=1)
        print(f"{name}: cosine to the first, min {cosine.min():.6f}, mean {cosine.mean():.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
