"""Added latency of the synchronous OpenAI endpoint over calling faster-whisper directly.

Both sides use the same model, threads and decoding settings on the same clip; the difference is what the
pipeline costs (upload, object store, Kafka round trips, the worker's event handling, materialising, rendering).

    .venv/bin/python benchmarks/sync_latency.py                 # starts a throw-away stack itself
    .venv/bin/python benchmarks/sync_latency.py --url http://127.0.0.1:8000   # against a running stack

Prints a table; keep the numbers in benchmarks/RESULTS.md with the machine they came from.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _stack(model: str) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="scribeflow-bench-") as data:
        port = _free_port()
        env = {
            **os.environ,
            "SCRIBEFLOW_DATA_DIR": data,
            "SCRIBEFLOW_CACHE_DIR": str(REPO / ".cache"),
            "SCRIBEFLOW_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{_free_port()}",
            "SCRIBEFLOW_PORT": str(port),
            "SCRIBEFLOW_MODEL__NAME": model,
        }
        log = Path(data) / "stack.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "stack.cli", "up"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while not _ready(url, log):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the stack did not start:\n" + log.read_text()[-3000:])
                time.sleep(0.5)
            yield url
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)


def _ready(url: str, log: Path) -> bool:
    try:
        ok = httpx.get(f"{url}/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
    return ok and "worker ready" in log.read_text(errors="replace")


def direct(audio: Path, model: str, runs: int) -> list[float]:
    from faster_whisper import WhisperModel

    from processors.audio import decode_audio
    from processors.batching import temperatures
    from processors.models import resolve_model
    from processors.settings import ModelSettings

    settings = ModelSettings(name=model, cache_dir=REPO / ".cache" / "models")
    whisper = WhisperModel(
        resolve_model(model, settings.cache_dir),
        device=settings.device,
        compute_type=settings.compute_type,
        cpu_threads=settings.cpu_threads,
    )
    times = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        segments, _info = whisper.transcribe(
            decode_audio(audio),
            temperature=temperatures(0.0),
            beam_size=settings.beam_size,
            vad_filter=True,
            condition_on_previous_text=False,
            word_timestamps=False,
        )
        list(segments)
        times.append(time.perf_counter() - started)
    return times[1:]  # the first run warms caches on both sides


def endpoint(url: str, audio: Path, runs: int) -> list[float]:
    data = audio.read_bytes()
    times = []
    with httpx.Client(timeout=300) as client:
        for _ in range(runs + 1):
            started = time.perf_counter()
            response = client.post(
                f"{url}/v1/audio/transcriptions",
                files={"file": (audio.name, data)},
                data={"model": "whisper-1", "response_format": "json"},
            )
            response.raise_for_status()
            times.append(time.perf_counter() - started)
    return times[1:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running stack; default: start one")
    parser.add_argument("--audio", type=Path, default=REPO.parent / "shared" / "audio" / "jfk.flac")
    parser.add_argument("--model", default="base")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    with nullcontext(args.url) if args.url else _stack(args.model) as url:
        via_api = endpoint(url, args.audio, args.runs)
    baseline = direct(args.audio, args.model, args.runs)

    rows = [("faster-whisper, direct", baseline), ("POST /v1/audio/transcriptions", via_api)]
    print(f"clip: {args.audio.name}, model: {args.model}, runs: {args.runs} after a warm-up, {os.cpu_count()} CPUs")
    print(f"{'path':<32} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name, times in rows:
        print(f"{name:<32} {statistics.median(times):>9.3f} {min(times):>7.3f} {max(times):>7.3f}")
    added = statistics.median(via_api) - statistics.median(baseline)
    print(f"{'added latency (median)':<32} {added:>9.3f}   goal ≤ 0.300: {'met' if added <= 0.3 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
