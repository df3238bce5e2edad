"""Realtime sessions: latency and accuracy of `/v1/realtime` with recordings played at real time.

A stack is started as `scribeflow up` (1 worker, bundled `base`, the machine's threads). Each session connects as
an OpenAI Realtime client would (`intent=transcription`, `session.update`), and streams a recording as 24 kHz PCM16
in 100 ms appends, paced by the clock. Two recordings: the single-speaker English recordings of ../shared/audio
joined with 1.5 s pauses, and the long-recording corpus of the batch benchmark (the same recordings and six
espeak-ng voices, 0.8 s pauses).

Per turn, against an offline Silero VAD of the recording (speech stretches closer than the server's 500 ms of
silence joined), not the server's own VAD:
- end of speech → `completed`: from the end of the last stretch a completed turn covers (the 500 ms of silence
  the server waits for is counted in);
- speech start → first `delta`: from the start of the first stretch a turn covers, or from the turn's own start
  where that stretch began before it (a turn that goes on from one cut after 15 s of speech, or one the server's
  VAD split where the offline VAD did not).
WER (Whisper's English normaliser, jiwer) of all completed turns against the joined references, beside the WER of
the bare engine transcribing the same recording offline (same model and threads, beam 5, language en).

    .venv/bin/python benchmarks/realtime.py                  # 1 and 4 concurrent sessions
    .venv/bin/python benchmarks/realtime.py --sessions 1     # only one

Prints the table and writes it into benchmarks/RESULTS.md (between the realtime markers).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.results import machine, record  # noqa: E402
from processors.audio import SAMPLE_RATE, decode_audio  # noqa: E402
from tests.support.accuracy import errors  # noqa: E402
from tests.support.longform import LongRecording, build, english_recordings  # noqa: E402

CLIENT_RATE = 24_000
STEP_S = 0.1


@dataclass
class Turn:
    item_id: str
    first_delta: float | None = None
    completed: float | None = None
    start: float = 0.0
    end: float = 0.0
    transcript: str = ""
    deltas: list[tuple[float, str]] = field(default_factory=list)
    """(seconds into the session, text) of each delta, for `--turns`."""


@dataclass
class SessionRun:
    turns: dict[str, Turn] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def text(self) -> str:
        done = sorted((t for t in self.turns.values() if t.completed is not None), key=lambda t: t.start)
        return " ".join(t.transcript for t in done)


def speech_stretches(audio: npt.NDArray[np.float32], silence_ms: int = 500) -> list[tuple[float, float]]:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    found = get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=silence_ms, speech_pad_ms=0))
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in found]


def to_client_pcm(audio: npt.NDArray[np.float32]) -> bytes:
    import av

    resampler = av.AudioResampler(format="s16", layout="mono", rate=CLIENT_RATE)
    samples = (np.clip(audio, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
    frame.sample_rate = SAMPLE_RATE
    out = [f.to_ndarray().reshape(-1) for f in (*resampler.resample(frame), *resampler.resample(None))]
    return np.concatenate(out).astype("<i2").tobytes()


async def play(url: str, key: str | None, pcm: bytes, delay_s: float) -> SessionRun:
    import websockets

    await asyncio.sleep(delay_s)
    run = SessionRun()
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        update = {
            "type": "session.update",
            "session": {
                "type": "transcription",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": CLIENT_RATE},
                        "transcription": {"model": "whisper-1", "language": "en"},
                        "turn_detection": {"type": "server_vad"},
                    }
                },
            },
        }
        await ws.send(json.dumps(update))
        t0 = time.monotonic()

        async def send() -> None:
            step = int(CLIENT_RATE * STEP_S) * 2
            for n, at in enumerate(range(0, len(pcm), step)):
                piece = base64.b64encode(pcm[at : at + step]).decode()
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": piece}))
                await asyncio.sleep(max(0.0, t0 + (n + 1) * STEP_S - time.monotonic()))
            await asyncio.sleep(4.0)  # the last turn's silence and decode
            await ws.close()

        sender = asyncio.create_task(send())
        try:
            async for message in ws:
                now = time.monotonic() - t0
                event = json.loads(message)
                kind = event["type"]
                if kind.endswith("transcription.delta"):
                    turn = run.turns.setdefault(event["item_id"], Turn(event["item_id"]))
                    turn.first_delta = turn.first_delta if turn.first_delta is not None else now
                    turn.deltas.append((round(now, 3), event["delta"]))
                elif kind.endswith("transcription.completed"):
                    turn = run.turns.setdefault(event["item_id"], Turn(event["item_id"]))
                    turn.completed, turn.transcript = now, event["transcript"]
                    turn.start, turn.end = event["start"], event["end"]
                elif kind == "error":
                    run.errors.append(event["error"]["message"])
        except websockets.ConnectionClosed:
            pass
        await sender
    return run


def latencies(run: SessionRun, stretches: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """(end of speech → completed, speech start → first delta) per completed turn that covers offline speech."""
    to_end, to_delta = [], []
    for turn in run.turns.values():
        if turn.completed is None:
            continue
        covered = [s for s in stretches if s[1] > turn.start and s[0] < turn.end]
        if not covered:
            continue
        last_end = max(s[1] for s in covered)
        if last_end <= turn.end + 0.05:  # a turn cut inside speech (over 15 s) has no end of speech
            to_end.append(turn.completed - last_end)
        if turn.first_delta is not None:
            # A turn that goes on from one cut inside speech (over 15 s), or that the server's VAD split where the
            # offline one did not, starts inside a stretch: its speech starts where the turn does.
            to_delta.append(turn.first_delta - max(min(s[0] for s in covered), turn.start))
    return to_end, to_delta


def offline_text(audio_path: Path, threads: int) -> str:
    from faster_whisper import WhisperModel

    from processors.models import resolve_model

    model = WhisperModel(resolve_model("base", REPO / ".cache" / "models"), cpu_threads=threads, compute_type="int8")
    segments, _ = model.transcribe(str(audio_path), beam_size=5, language="en")
    return " ".join(s.text.strip() for s in segments)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values), q))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, nargs="*", default=[1, 4])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--workers", type=int, help="workers of the stack, sharing --threads (default: what `scribeflow up` starts)"
    )
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--turns", type=Path, help="also write every turn (times, deltas, text) here as JSON lines")
    args = parser.parse_args()

    from stack.settings import worker_layout
    from tests.support.audio import encode
    from tests.support.stack import start_stack, stop_stack

    if args.workers is None:
        args.workers = worker_layout(None, 0, "cpu", args.threads)[0]
    per_worker = max(1, args.threads // args.workers)
    layout = f"1 worker, {args.threads} threads"
    if args.workers > 1:
        layout = f"{args.workers} workers x {per_worker} thread"
    lines = [
        f"{date.today().isoformat()}, {machine()}, no GPU; embedded stack, {layout}, "
        "bundled `base` int8, beam 5, language en; 24 kHz PCM16 in 100 ms appends",
        "",
        f"{'recording':<22} {'sessions':>8} {'turns':>5} {'end→completed p50/p95 s':>24} "
        f"{'start→delta p50/p95 s':>22} {'WER %':>6} {'offline WER %':>13}",
    ]
    with tempfile.TemporaryDirectory(prefix="scribeflow-realtime-") as tmp:
        recordings = english_recordings()
        gap = np.zeros(int(1.5 * SAMPLE_RATE), np.float32)
        joined = np.concatenate([x for p in recordings for x in (p.samples, gap)])
        clips_path = Path(tmp) / "clips.flac"
        encode(np.stack([joined, joined]), clips_path, rate=SAMPLE_RATE, codec="flac")
        clips = LongRecording(clips_path, recordings, 1.5)
        voices = build(Path(tmp) / "voices.flac", rounds=1)
        inputs = [("recordings, 1.5 s gaps", clips), ("several voices", voices)]
        env = {"SCRIBEFLOW_WORKERS": str(args.workers), "SCRIBEFLOW_MODEL__CPU_THREADS": str(per_worker)}
        stack = start_stack(Path(tmp) / "stack", env=env)
        url = stack.base_url.replace("http", "ws", 1) + "/v1/realtime?intent=transcription"
        try:
            for name, recording in inputs:
                audio = decode_audio(recording.path)
                stretches = speech_stretches(audio)
                pcm = to_client_pcm(audio)
                offline = errors(recording.reference, offline_text(recording.path, args.threads)).wer
                for count in args.sessions:
                    runs = asyncio.run(_concurrently(url, stack.api_key, pcm, count))
                    to_end = [x for r in runs for x in latencies(r, stretches)[0]]
                    to_delta = [x for r in runs for x in latencies(r, stretches)[1]]
                    wer = statistics.mean(errors(recording.reference, r.text()).wer for r in runs)
                    problems = sorted({e for r in runs for e in r.errors})
                    turns = sum(1 for r in runs for t in r.turns.values() if t.completed is not None)
                    lines.append(
                        f"{name:<22} {count:>8} {turns:>5} "
                        f"{percentile(to_end, 50):>11.2f} / {percentile(to_end, 95):<10.2f} "
                        f"{percentile(to_delta, 50):>10.2f} / {percentile(to_delta, 95):<9.2f} "
                        f"{wer:>6.2f} {offline:>13.2f}" + (f"  errors: {problems}" if problems else "")
                    )
                    print(lines[-1], flush=True)
                    if args.turns:
                        _dump_turns(args.turns, name, count, runs, stretches)
        finally:
            stop_stack(stack)
    table = "\n".join(lines)
    print(table)
    if not args.no_record:
        record("realtime", table, title="Realtime sessions (`benchmarks/realtime.py`)")
    return 0


def _dump_turns(
    path: Path, name: str, count: int, runs: list[SessionRun], stretches: list[tuple[float, float]]
) -> None:
    with path.open("a") as out:
        for session, run in enumerate(runs):
            for turn in sorted(run.turns.values(), key=lambda t: t.start):
                covered = [s for s in stretches if s[1] > turn.start and s[0] < turn.end]
                row = {
                    "recording": name,
                    "sessions": count,
                    "session": session,
                    "item": turn.item_id,
                    "start": turn.start,
                    "end": turn.end,
                    "speech": covered,
                    "completed": turn.completed,
                    "deltas": turn.deltas,
                    "transcript": turn.transcript,
                }
                out.write(json.dumps(row) + "\n")


async def _concurrently(url: str, key: str | None, pcm: bytes, count: int) -> list[SessionRun]:
    # Staggered by a little, as clients arrive: turns of different sessions end at different moments.
    return list(await asyncio.gather(*(play(url, key, pcm, 0.37 * n) for n in range(count))))


if __name__ == "__main__":
    sys.exit(main())
