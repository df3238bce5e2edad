"""Long recordings: accuracy and speed of bare faster-whisper, sequential and batched, against the service end to end.

The recording is built from ../shared/audio: every single-speaker English recording with a reference (LibriSpeech
clean and noisy, LJ Speech, AMI headset, FLEURS at -59 dBFS, two Montreal Forced Aligner recordings, JFK) and
sentences spoken by espeak-ng in six accents, shuffled anew each round, 0.8 s pauses. Every row uses the same
model, threads and decoding options (beam 5, the temperature fallback schedule, word timestamps, `language=en`);
the bare rows transcribe the file as a user would call faster-whisper, the service rows submit it to a stack started
as `scribeflow up` and time it from upload to completion, once as one worker with `--threads` threads and once as
`--threads` workers of one thread each (the layout for batch throughput on CPUs). WER uses Whisper's English
normaliser and jiwer against the joined references; "parts alone" is the bare engine given each part on its own,
cut from the file as the service hears it, the accuracy to match; "words lost" are the reference words it got
right that the service misses.

    .venv/bin/python benchmarks/longform.py                 # about 11 minutes of audio, every row
    .venv/bin/python benchmarks/longform.py --rounds 2      # shorter
    .venv/bin/python benchmarks/longform.py --real-voices-only   # the recordings alone, no espeak-ng (10 minutes)

Prints the table and writes it into benchmarks/RESULTS.md (between the longform markers).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.results import machine, record  # noqa: E402
from tests.support.accuracy import Errors, errors, lost_words  # noqa: E402
from tests.support.longform import LongRecording, as_heard, build, one_by_one  # noqa: E402


@dataclass
class Row:
    name: str
    text: str
    wall_s: float | None
    rss_mb: dict[str, float]


def bare(kind: str, audio: Path, threads: int) -> dict[str, object]:
    """One bare faster-whisper run, in this (fresh) process, so its peak RSS is its own."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    from processors.batching import temperatures
    from processors.models import resolve_model

    model = WhisperModel(
        resolve_model("base", REPO / ".cache" / "models"), device="cpu", compute_type="int8", cpu_threads=threads
    )
    options = {
        "language": "en",
        "beam_size": 5,
        "temperature": temperatures(0.0),
        "word_timestamps": True,
        "vad_filter": True,
        "condition_on_previous_text": False,
    }
    started = time.perf_counter()
    if kind == "batched":
        segments, _ = BatchedInferencePipeline(model).transcribe(str(audio), batch_size=8, **options)
    else:
        segments, _ = model.transcribe(str(audio), **options)
    text = " ".join(s.text.strip() for s in segments)
    wall = time.perf_counter() - started
    return {"text": text, "wall_s": wall, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _bare_row(name: str, kind: str, audio: Path, threads: int) -> Row:
    out = subprocess.run(
        [sys.executable, __file__, "--bare", kind, "--audio", str(audio), "--threads", str(threads)],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return Row(name, result["text"], result["wall_s"], {"process": result["rss_mb"]})


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _peak_rss(pid: int) -> tuple[str, float] | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    peak = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    if peak < 50 * 1024:
        return None  # helpers such as setpriv, not the processes of the stack
    if "kafka" in cmdline:
        name = "broker"
    elif "stack.cli api" in cmdline:
        name = "api"
    elif "stack.cli worker" in cmdline:
        name = "worker"
    else:
        name = Path(cmdline.split()[0]).name
    return name, peak / 1024


def _service_row(name: str, audio: Path, workers: int, threads: int) -> Row:
    from tests.support.stack import start_stack, stop_stack

    with tempfile.TemporaryDirectory(prefix="scribeflow-bench-") as data:
        env = {"SCRIBEFLOW_WORKERS": str(workers), "SCRIBEFLOW_MODEL__CPU_THREADS": str(threads)}
        stack = start_stack(Path(data), env=env)
        try:
            warm = stack.submit(REPO.parent / "shared" / "audio" / "jfk.flac", language="en").json()["id"]
            stack.wait(warm)
            started = time.perf_counter()
            response = stack.submit(audio, language="en")
            job = stack.wait(response.json()["id"], timeout=3600)
            wall = time.perf_counter() - started
            if job["status"] != "completed":
                raise RuntimeError(f"the service failed the job: {job.get('error')}")
            rss: dict[str, float] = {}
            for pid in _descendants(stack.process.pid):
                if (found := _peak_rss(pid)) is not None:
                    label, mb = found
                    n = sum(1 for k in rss if k.startswith(label))
                    rss[f"{label}-{n}" if label == "worker" else label] = mb
            note = f" ({job['chunks_total']} chunks, {job['recovered_stretches']} stretches recovered)"
            return Row(name + note, job["result"]["text"], wall, rss)
        finally:
            stop_stack(stack)


def _table(
    recording: LongRecording,
    rows: list[Row],
    measured: dict[str, Errors],
    threads: int,
    lost: dict[str, list[list[str]]],
) -> str:
    seconds = recording.seconds
    lines = [
        f"{date.today().isoformat()}, {machine()}, no GPU; bundled `base` int8, "
        f"{threads} threads per row, beam 5, language en",
        f"recording: {seconds / 60:.1f} min, {len(recording.parts)} parts, {measured[rows[0].name].reference_words}"
        " reference words",
        "",
        f"{'row':<62} {'WER %':>6} {'del':>4} {'ins':>4} {'sub':>4} {'x realtime':>10}  peak RSS MB",
    ]
    for row in rows:
        e = measured[row.name]
        speed = f"{seconds / row.wall_s:10.1f}" if row.wall_s else f"{'-':>10}"
        rss = ", ".join(f"{k} {v:.0f}" for k, v in row.rss_mb.items()) or "-"
        lines.append(
            f"{row.name:<62} {e.wer:>6.2f} {e.deletions:>4} {e.insertions:>4} {e.substitutions:>4} {speed}  {rss}"
        )
    alone = measured[rows[2].name].wer
    batched = rows[1].wall_s or 1.0
    for row in rows[3:]:
        gap = measured[row.name].wer - alone
        ratio = batched / (row.wall_s or 1.0)
        runs = lost[row.name]
        lines.append(
            f"{row.name.split(' (')[0]}: WER {gap:+.2f} points over parts alone (goal <= +0.50: "
            f"{'met' if gap <= 0.5 else 'NOT met'}); throughput {ratio:.2f} x bare batched (goal >= 0.95: "
            f"{'met' if ratio >= 0.95 else 'NOT met'}); {sum(map(len, runs))} words lost that the parts alone "
            f"got right, longest run {max(map(len, runs), default=0)}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4, help="passes over the recordings (4: about 11 minutes)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--no-record", action="store_true", help="print only")
    parser.add_argument("--real-voices-only", action="store_true", help="no espeak-ng sentences between the recordings")
    parser.add_argument("--bare", choices=["sequential", "batched"], help=argparse.SUPPRESS)
    parser.add_argument("--audio", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        print(json.dumps(bare(args.bare, args.audio, args.threads)))
        return 0

    with tempfile.TemporaryDirectory(prefix="scribeflow-longform-") as tmp:
        synthetic = {"voices": 0} if args.real_voices_only else {}
        recording = build(Path(tmp) / "long.flac", rounds=args.rounds, **synthetic)
        threads = args.threads
        alone = one_by_one(as_heard(recording), model_cache=REPO / ".cache" / "models", threads=threads)
        rows = [
            _bare_row("faster-whisper, sequential", "sequential", recording.path, threads),
            _bare_row("faster-whisper, batched (batch 8)", "batched", recording.path, threads),
            Row("faster-whisper, each part alone", " ".join(alone), None, {}),
            _service_row(f"service, 1 worker x {threads} threads", recording.path, 1, threads),
        ]
        if threads > 1:
            rows.append(_service_row(f"service, {threads} workers x 1 thread", recording.path, threads, 1))
        measured = {row.name: errors(recording.reference, row.text) for row in rows}
        lost = {row.name: lost_words([p.reference for p in recording.parts], alone, row.text) for row in rows[3:]}
        table = _table(recording, rows, measured, threads, lost)
    print(table)
    if not args.no_record:
        key = "longform-real-voices" if args.real_voices_only else "longform"
        record(key, table, title="Long recordings (`benchmarks/longform.py`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
