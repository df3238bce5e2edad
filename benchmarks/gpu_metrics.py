"""The worker's GPU gauges (`processors.metrics`, through NVML) read on a real GPU, idle and under load.

Runs on a machine with a GPU, `prometheus_client`, `nvidia-ml-py` and torch (for the load only), without the
worker's other packages:

    python3 benchmarks/gpu_metrics.py
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    from prometheus_client import generate_latest

    spec = importlib.util.spec_from_file_location("worker_metrics", REPO / "processors" / "metrics.py")
    assert spec and spec.loader
    metrics = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(metrics)
    registry = metrics.WorkerMetrics().registry

    def gpu_lines() -> list[str]:
        return [line for line in generate_latest(registry).decode().splitlines() if line.startswith("scribeflow_gpu")]

    print(subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.strip())
    print("idle:", *gpu_lines(), sep="\n  ")
    import torch

    stop = threading.Event()

    def load() -> None:
        a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
        held = torch.empty(8 << 30, dtype=torch.uint8, device="cuda")  # 8 GiB the used-memory gauge must show
        while not stop.is_set():
            for _ in range(20):
                a = (a @ a).clamp_(-1, 1)
            torch.cuda.synchronize()
        del held

    worker = threading.Thread(target=load)
    worker.start()
    time.sleep(3)
    print("under load (bf16 matrix products, 8 GiB held):", *gpu_lines(), sep="\n  ")
    stop.set()
    worker.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
