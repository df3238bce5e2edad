"""The transcribe agent's batching, without Kafka: one request alone against eight concurrent ones.

Eight chunks of real speech, cut by the service's own planner from the long-recording corpus (made here by
`--prepare`, since the GPU machine has neither ../shared nor espeak-ng), are decoded by `processors.batching`,
the code under the transcribe agent:

- one request: a single chunk, alone (its latency);
- eight requests one after another: what a worker that cannot batch across jobs does when they arrive together;
- eight requests as one batch: what the transcribe agent does.

    .venv/bin/python benchmarks/gpu_batching.py --prepare .gpu/chunks.npz            # here, once
    python3 benchmarks/gpu_batching.py --chunks .gpu/chunks.npz --model DIR --device cuda --compute-type float16

Runs on a machine with only numpy, CTranslate2, faster-whisper and its tokenizer: the worker's other packages
(Kafka clients, pydantic, PyAV) are not needed and not imported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SAMPLE_RATE = 16_000


def _batching() -> Any:
    from benchmarks.standalone import processors_module

    return processors_module("batching")


def prepare(out: Path) -> None:
    """Eight chunks of about 28 s of speech each, as the split agent would store them (levelled, packed)."""
    import tempfile

    sys.path.insert(0, str(REPO))
    from processors.planning import plan_chunks
    from processors.speech import SpeechOptions, find_speech, level_speech
    from tests.support.longform import build

    with tempfile.TemporaryDirectory() as tmp:
        recording = build(Path(tmp) / "long.flac", rounds=2)
        audio = np.concatenate([x for p in recording.parts for x in (p.samples, np.zeros(12_800, np.float32))])
    regions = find_speech(audio, SpeechOptions(max_region_s=28.0))
    levelled = level_speech(audio, regions)
    plan = plan_chunks(regions, audio.size, target=28 * SAMPLE_RATE, overlap=SAMPLE_RATE // 2, join_gap=SAMPLE_RATE)
    chunks = [np.concatenate([levelled[s:e] for s, e in chunk.spans]) for chunk in plan[:8]]
    pcm = {f"chunk{n}": (np.clip(c, -1, 1) * 32767).astype(np.int16) for n, c in enumerate(chunks)}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **pcm)
    print(f"wrote {len(chunks)} chunks, {sum(c.size for c in chunks) / SAMPLE_RATE:.0f} s of speech, to {out}")


def run(chunks_path: Path, model_dir: str, device: str, compute_type: str, repeats: int) -> None:
    batching = _batching()
    from faster_whisper import WhisperModel

    with np.load(chunks_path) as stored:
        chunks = [stored[name].astype(np.float32) / 32767.0 for name in sorted(stored.files)]
    seconds = sum(c.size for c in chunks) / SAMPLE_RATE
    started = time.perf_counter()
    model = WhisperModel(model_dir, device=device, compute_type=compute_type)
    load = time.perf_counter() - started
    decoder = batching.BatchDecoder(model, beam_size=5, batch_size=len(chunks))
    windows = [batching.Window(c, language="en") for c in chunks]
    decoder.decode(windows[:2])  # warm-up: kernels, allocator

    def timed(call: Any) -> float:
        times = []
        for _ in range(repeats):
            begin = time.perf_counter()
            call()
            times.append(time.perf_counter() - begin)
        return statistics.median(times)

    one = timed(lambda: decoder.decode(windows[:1]))
    each = timed(lambda: [decoder.decode([w]) for w in windows])
    batch = timed(lambda: decoder.decode(windows))
    words = sum(len(r.words) for r in decoder.decode(windows))
    print(f"model {model_dir}, {device}/{compute_type}, load {load:.2f} s; {len(chunks)} chunks, {seconds:.0f} s of")
    print(f"speech, {words} words; median of {repeats} runs")
    print(f"{'mode':<40} {'wall s':>8} {'audio s / wall s':>17} {'last request done after s':>26}")
    print(f"{'1 request':<40} {one:>8.3f} {chunks[0].size / SAMPLE_RATE / one:>17.1f} {one:>26.3f}")
    print(f"{'8 requests, one after another':<40} {each:>8.3f} {seconds / each:>17.1f} {each:>26.3f}")
    print(f"{'8 requests, one batch':<40} {batch:>8.3f} {seconds / batch:>17.1f} {batch:>26.3f}")
    print(f"batching speed-up for 8 concurrent requests: {each / batch:.2f} x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepare", type=Path, help="write the chunks to this .npz and stop")
    parser.add_argument("--chunks", type=Path, default=REPO / ".gpu" / "chunks.npz")
    parser.add_argument("--model", default=str(REPO / ".cache" / "models" / "whisper-base"))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.prepare:
        prepare(args.prepare)
        return 0
    run(args.chunks, args.model, args.device, args.compute_type, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
