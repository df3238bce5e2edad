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
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


@contextmanager
def _stack(model: str) -> Iterator[tuple[str, str | None]]:
    from tests.support.stack import start_stack, stop_stack

    with tempfile.TemporaryDirectory(prefix="scribeflow-bench-") as data:
        stack = start_stack(Path(data), env={"SCRIBEFLOW_MODEL__NAME": model})
        try:
            yield stack.base_url, stack.api_key
        finally:
            stop_stack(stack)


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


def endpoint(url: str, key: str | None, audio: Path, runs: int) -> list[float]:
    data = audio.read_bytes()
    times = []
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(timeout=300, headers=headers) as client:
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
    parser.add_argument("--api-key", help="for --url: a key of that stack (default: $SCRIBEFLOW_API_KEY)")
    parser.add_argument("--audio", type=Path, default=REPO.parent / "shared" / "audio" / "jfk.flac")
    parser.add_argument("--model", default="base")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    given = (args.url, args.api_key or os.environ.get("SCRIBEFLOW_API_KEY"))
    with nullcontext(given) if args.url else _stack(args.model) as (url, key):
        via_api = endpoint(url, key, args.audio, args.runs)
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
