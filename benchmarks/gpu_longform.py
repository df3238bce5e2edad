"""Long recordings on a GPU: bare faster-whisper, sequential and batched, against the service's own split,
transcribe and stitch code, in one process.

The recording is the long-recording benchmark's (`benchmarks/longform.py`: ../shared/audio and espeak-ng voices,
0.8 s pauses), made here by `--prepare` since the GPU machine has neither, and sent there as 16-bit PCM in two
halves (one call to that machine carries at most 64 MiB, the model included). There:

- bare rows call faster-whisper as a user would, with the benchmark's options (beam 5, the temperature fallback,
  word timestamps, Silero VAD, language en), sequential and batched (`BatchedInferencePipeline`);
- "parts alone" gives the bare engine each part of the recording on its own: the accuracy to match;
- service rows run the split agent's steps (Silero VAD with the recheck, levelling, the planner), the transcribe
  agent's `transcribe_chunks` on batches of chunk events (recovery included) and the stitch agent's `stitch`, with
  the service's default settings (`benchmarks/service_steps.py`). Kafka, the object store and the API are left
  out: on a GPU they are not where the time goes, and their cost is measured end to end on CPU by
  `benchmarks/longform.py`;
- "4 jobs" submits the recording four times at once: the service's batches mix chunks of every job, the bare
  pipeline takes the files one after another.

    .venv/bin/python benchmarks/gpu_longform.py --prepare .gpu/rec                 # here
    python3 benchmarks/gpu_longform.py --recording .gpu/rec --model DIR --out runs.json  # on the GPU machine
    .venv/bin/python benchmarks/gpu_longform.py --score runs.json                  # here: WER and the table
    python3 benchmarks/gpu_longform.py ... --profile   # batch 16 only, bare and service, each step timed
    python3 benchmarks/gpu_longform.py ... --vad-threads 1     # the split's VAD on one thread (default: every core)
    python3 benchmarks/gpu_longform.py ... --voices campplus_cn_en_common.pt   # plain against diarized (CAM++ on
                                                               # ONNX Runtime), voices after or beside each batch
    .venv/bin/python benchmarks/gpu_longform.py --prepare .gpu/rec --real-voices-only   # no espeak-ng (10 min)

`--score` prints the table and writes it into benchmarks/RESULTS.md (between the gpu-longform markers).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.model_profile import Profile  # noqa: E402
from benchmarks.service_steps import Service  # noqa: E402

SAMPLE_RATE = 16_000
OPTIONS: dict[str, Any] = {
    "language": "en",
    "beam_size": 5,
    "word_timestamps": True,
    "vad_filter": True,
    "condition_on_previous_text": False,
}


def prepare(out: Path, rounds: int, real_voices_only: bool) -> None:
    """The recording as two int16 halves, its parts (name, reference, place) and the service's chunking settings."""
    import tempfile

    from processors.settings import ChunkingSettings, RecoverySettings
    from tests.support.longform import build

    with tempfile.TemporaryDirectory() as tmp:
        synthetic = {"voices": 0} if real_voices_only else {}
        recording = build(Path(tmp) / "long.flac", rounds=rounds, **synthetic)
    gap = int(recording.pause_s * SAMPLE_RATE)
    parts, at = [], 0
    for part in recording.parts:
        parts.append({"name": part.name, "reference": part.reference, "start": at, "end": at + part.samples.size})
        at += part.samples.size + gap
    audio = np.concatenate([x for p in recording.parts for x in (p.samples, np.zeros(gap, np.float32))])
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    out.mkdir(parents=True, exist_ok=True)
    half = pcm.size // 2
    np.save(out / "a.npy", pcm[:half])
    np.save(out / "b.npy", pcm[half:])
    meta = {
        "parts": parts,
        "chunking": ChunkingSettings().model_dump(),
        "recovery": RecoverySettings().model_dump(),
        "seconds": pcm.size / SAMPLE_RATE,
        "real_voices_only": real_voices_only,
    }
    (out / "meta.json").write_text(json.dumps(meta))
    print(f"wrote {pcm.size / SAMPLE_RATE / 60:.1f} min, {len(parts)} parts, to {out}")


def _timed(call: Callable[[], Any], repeats: int) -> tuple[Any, float, list[float]]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return result, statistics.median(times), times


def run(
    recording: Path,
    model_dir: str,
    device: str,
    compute_type: str,
    repeats: int,
    out: Path,
    profile: bool,
    vad_threads: int | None = None,
    voices: Path | None = None,
) -> None:
    from benchmarks.standalone import processors_module

    # First: it stands in for PyAV, which faster-whisper imports and a GPU machine may lack.
    temperatures = processors_module("batching").temperatures
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    meta = json.loads((recording / "meta.json").read_text())
    if vad_threads is not None:
        meta["chunking"]["vad_threads"] = vad_threads
    pcm = np.concatenate([np.load(recording / "a.npy"), np.load(recording / "b.npy")])
    audio = pcm.astype(np.float32) / 32767.0
    seconds = audio.size / SAMPLE_RATE
    options = {**OPTIONS, "temperature": temperatures(0.0)}
    started = time.perf_counter()
    model = WhisperModel(model_dir, device=device, compute_type=compute_type)
    report: dict[str, Any] = {
        "device": device,
        "compute_type": compute_type,
        "model_load_s": round(time.perf_counter() - started, 2),
        "seconds": seconds,
        "repeats": repeats,
        "vad_threads": meta["chunking"]["vad_threads"] or os.cpu_count(),
        "rows": [],
    }
    first = meta["parts"][0]
    list(model.transcribe(audio[first["start"] : first["end"]], **options)[0])  # warm-up: kernels, allocator

    def save(name: str, texts: list[str], times: list[float] | None, jobs: int = 1, **extra: Any) -> None:
        row = {"name": name, "texts": texts, "times": times, "jobs": jobs, **extra}
        report["rows"].append(row)
        out.write_text(json.dumps(report))
        if times:
            wall = statistics.median(times)
            print(f"{name:<48} {wall:8.2f} s  {seconds * jobs / wall:7.1f} x realtime  {extra}", flush=True)

    def save_service(name: str, result: dict[str, Any], times: list[float], jobs: int = 1, **extra: Any) -> None:
        save(name, result["texts"], times, jobs, chunks=result["chunks"], recovered=result["recovered"], **extra)

    def bare_sequential() -> str:
        segments, _ = model.transcribe(audio, **options)
        return " ".join(s.text.strip() for s in segments)

    def bare_batched(size: int, copies: int = 1) -> list[str]:
        pipeline = BatchedInferencePipeline(model)
        texts = []
        for _ in range(copies):
            segments, _ = pipeline.transcribe(audio, batch_size=size, **options)
            texts.append(" ".join(s.text.strip() for s in segments))
        return texts

    if voices is not None:
        campplus = processors_module("campplus")
        for threads in (0, 4):
            encoder = campplus.CamPlusPlus.load(voices, threads)
            for name, service in (
                ("service steps, batches of 8", Service(model, meta, 8)),
                (f"+ voices after each batch, {threads or 'all'} threads", Service(model, meta, 8, voices=encoder)),
                (
                    f"+ voices beside the decode, {threads or 'all'} threads",
                    Service(model, meta, 8, voices=encoder, beside=True),
                ),
            ):
                result, _, times = _timed(functools.partial(service.run, [audio]), repeats)
                save_service(name, result, times, stages=result["stages"], windows=result["windows"])
        return
    if profile:
        steps = Profile(model)
        texts, _, times = _timed(lambda: bare_batched(16), 1)
        save("faster-whisper, batched (batch 16), profiled", texts, times, steps=steps.reset())
        service = Service(model, meta, 16)
        result, _, times = _timed(lambda: service.run([audio]), 1)
        save_service(
            "service steps, batches of 16, profiled",
            result,
            times,
            stages=result["stages"],
            windows=result["windows"],
            steps=steps.reset(),
        )
        texts, _, times = _timed(lambda: bare_batched(16, copies=4), 1)
        save("faster-whisper, batched (batch 16), 4 files in turn", texts, times, jobs=4, steps=steps.reset())
        result, _, times = _timed(lambda: service.run([audio] * 4, pipelined=True), 1)
        save_service(
            "service steps, batches of 16, 4 jobs at once, split alongside", result, times, 4, steps=steps.reset()
        )
        return
    text, _, times = _timed(bare_sequential, repeats)
    save("faster-whisper, sequential", [text], times)
    for size in (8, 16):
        texts, _, times = _timed(functools.partial(bare_batched, size), repeats)
        save(f"faster-whisper, batched (batch {size})", texts, times)
        service = Service(model, meta, size)
        result, _, times = _timed(functools.partial(service.run, [audio]), repeats)
        save_service(f"service steps, batches of {size}", result, times)
    texts, _, times = _timed(lambda: bare_batched(16, copies=4), 1)
    save("faster-whisper, batched (batch 16), 4 files in turn", texts, times, jobs=4)
    service = Service(model, meta, 16)
    result, _, times = _timed(lambda: service.run([audio] * 4), 1)
    save_service("service steps, batches of 16, 4 jobs at once", result, times, 4)
    alone = {}
    for part in meta["parts"]:
        if part["name"] not in alone:
            segments, _ = model.transcribe(audio[part["start"] : part["end"]], **options)
            alone[part["name"]] = " ".join(s.text.strip() for s in segments)
    save("faster-whisper, each part alone", [" ".join(alone[p["name"]] for p in meta["parts"])], None)
    print(f"wrote {out}")


def score(runs: Path, recording: Path, machine: str) -> str:
    from benchmarks.results import record
    from tests.support.accuracy import errors

    report = json.loads(runs.read_text())
    meta = json.loads((recording / "meta.json").read_text())
    reference = " ".join(p["reference"] for p in meta["parts"])
    seconds = report["seconds"]
    lines = [
        f"{machine}; bundled `base` {report['compute_type']} on {report['device']}, beam 5, language en; "
        f"median of {report['repeats']} runs (4-job rows: 1 run)",
        f"recording: {seconds / 60:.1f} min, {len(meta['parts'])} parts, {errors(reference, '').reference_words} "
        "reference words",
        "",
        f"{'row':<72} {'WER %':>6} {'del':>4} {'ins':>4} {'sub':>4} {'wall s':>7} {'x realtime':>10}",
    ]
    walls: dict[str, float] = {}
    for row in report["rows"]:
        measured = [errors(reference, text) for text in row["texts"]]
        worst = max(measured, key=lambda e: e.wer)
        name = row["name"]
        if "chunks" in row:
            name += f" ({row['chunks']} chunks, {row['recovered']} recovered)"
        wall = statistics.median(row["times"]) if row["times"] else None
        if wall is not None:
            walls[row["name"]] = wall
        speed = f"{seconds * row['jobs'] / wall:10.1f}" if wall else f"{'-':>10}"
        clock = f"{wall:7.2f}" if wall else f"{'-':>7}"
        lines.append(
            f"{name:<72} {worst.wer:6.2f} {worst.deletions:4d} {worst.insertions:4d} {worst.substitutions:4d} "
            f"{clock} {speed}"
        )
    for size in (8, 16):
        bare = walls[f"faster-whisper, batched (batch {size})"]
        ours = walls[f"service steps, batches of {size}"]
        lines.append(f"batch {size}: service steps' throughput {bare / ours:.2f} x bare batched")
    bare4 = walls["faster-whisper, batched (batch 16), 4 files in turn"]
    ours4 = walls["service steps, batches of 16, 4 jobs at once"]
    lines.append(f"4 jobs: service steps' throughput {bare4 / ours4:.2f} x bare batched")
    table = "\n".join(lines)
    print(table)
    name = "gpu-longform-real-voices" if meta.get("real_voices_only") else "gpu-longform"
    record(name, table, title="Long recordings on a GPU (`benchmarks/gpu_longform.py`)")
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepare", type=Path, help="write the recording to this folder and stop")
    parser.add_argument("--rounds", type=int, default=4, help="as benchmarks/longform.py: about 11 minutes")
    parser.add_argument(
        "--real-voices-only", action="store_true", help="with --prepare: no espeak-ng sentences (10 minutes)"
    )
    parser.add_argument("--recording", type=Path, default=REPO / ".gpu" / "rec")
    parser.add_argument("--model", default=str(REPO / ".cache" / "models" / "whisper-base"))
    parser.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    parser.add_argument("--compute-type", default="float16")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("gpu_longform.json"))
    parser.add_argument("--profile", action="store_true", help="only batch 16, bare and service, timed step by step")
    parser.add_argument(
        "--vad-threads", type=int, help="threads for the split's VAD (default: the settings', one per core)"
    )
    parser.add_argument(
        "--voices", type=Path, help="CAM++ checkpoint: only the service steps, plain and embedding voices"
    )
    parser.add_argument("--score", type=Path, help="score the runs in this file (here) and stop")
    parser.add_argument("--machine", default=platform.machine(), help="what ran it, for the table's first line")
    args = parser.parse_args()
    if args.prepare:
        prepare(args.prepare, args.rounds, args.real_voices_only)
    elif args.score:
        score(args.score, args.recording, args.machine)
    else:
        run(
            args.recording,
            args.model,
            args.device,
            args.compute_type,
            args.repeats,
            args.out,
            args.profile,
            args.vad_threads,
            args.voices,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
