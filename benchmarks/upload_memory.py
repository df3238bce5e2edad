"""Peak memory of the API under many large concurrent uploads: uploads must stream to storage, never sit in RAM.

Starts a stack without workers (nothing is transcribed; the jobs stay queued), makes one WAV of about 100 MB
(real speech from ../shared/audio repeated, 16 kHz mono PCM), and posts it 20 times at once to `POST /v1/jobs`.
Reports the API process's resident memory before and its peak (VmHWM) after, and the wall time.

    .venv/bin/python benchmarks/upload_memory.py                 # 20 x 100 MB
    .venv/bin/python benchmarks/upload_memory.py --uploads 5 --megabytes 20

Prints a table; keep the numbers in benchmarks/RESULTS.md with the machine they came from.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import wave
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from processors.audio import SAMPLE_RATE, decode_audio  # noqa: E402
from tests.support.stack import start_stack, stop_stack  # noqa: E402


def make_wav(path: Path, megabytes: int) -> float:
    speech = decode_audio(REPO.parent / "shared" / "audio" / "jfk.flac")
    pcm = (np.clip(speech, -1, 1) * 32767).astype("<i2").tobytes()
    target = megabytes * 1024 * 1024
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        written = 0
        while written < target:
            out.writeframes(pcm)
            written += len(pcm)
    return written / 2 / SAMPLE_RATE


def _status(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _api_pid(log: Path) -> int:
    import re

    found = re.findall(r"(?:started|restarted) api \(pid (\d+)\)", log.read_text())
    return int(found[-1])


async def upload_all(url: str, key: str | None, path: Path, count: int) -> list[int]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600) as client:

        async def one() -> int:
            with path.open("rb") as audio:  # streamed from disk by httpx, not read into memory here
                response = await client.post("/v1/jobs", files={"file": (path.name, audio, "audio/wav")})
            return response.status_code

        return await asyncio.gather(*(one() for _ in range(count)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--megabytes", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scribeflow-upload-") as tmp:
        wav = Path(tmp) / "long.wav"
        seconds = make_wav(wav, args.megabytes)
        size = wav.stat().st_size
        env = {
            "SCRIBEFLOW_WORKERS": "0",
            "SCRIBEFLOW_MAX_UPLOAD_BYTES": str((args.megabytes + 10) << 20),
            "SCRIBEFLOW_LIMITS__REQUESTS_PER_MINUTE": "",
        }
        stack = start_stack(Path(tmp) / "stack", env=env)
        try:
            pid = _api_pid(stack.log_path)
            before = _status(pid, "VmRSS")
            started = time.perf_counter()
            statuses = asyncio.run(upload_all(stack.base_url, stack.api_key, wav, args.uploads))
            wall = time.perf_counter() - started
            peak, after = _status(pid, "VmHWM"), _status(pid, "VmRSS")
        finally:
            stop_stack(stack)
    total_mb = args.uploads * size / 2**20
    print(
        f"{args.uploads} concurrent uploads of {size / 2**20:.0f} MB ({seconds / 60:.0f} min of 16 kHz PCM) each, "
        f"{os.cpu_count()} CPUs; statuses: {sorted(set(statuses))}"
    )
    print(f"{'API process':<28} {'MB':>8}")
    print(f"{'resident before':<28} {before:>8.0f}")
    print(f"{'peak resident (VmHWM)':<28} {peak:>8.0f}")
    print(f"{'resident after':<28} {after:>8.0f}")
    print(f"{'uploaded in total':<28} {total_mb:>8.0f}")
    print(f"wall {wall:.1f} s, {total_mb / wall:.0f} MB/s; peak growth {peak - before:.0f} MB for {total_mb:.0f} MB")
    return 0 if all(s == 202 for s in statuses) else 1


if __name__ == "__main__":
    sys.exit(main())
