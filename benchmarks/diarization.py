"""Diarization: error rate and speaker count of `processors.diarization` with each voice encoder (CAM++, GE2E).

Three recordings from ../shared/audio, each with a reference of who spoke when:
- the AMI meeting excerpt (30 s, four speakers, most of it overlapped speech), against its RTTM;
- the two-speaker stereo clip mixed to mono, against each channel's own speech (Silero VAD per channel);
- a file of many voices, ten minutes or more: the single-speaker English recordings (eleven people: the two
  Montreal Forced Aligner recordings are one man, the second time with a cold), shuffled anew each round, 0.8 s
  pauses; the reference is each part's speech (Silero VAD on the part alone) under the part's speaker. No
  espeak-ng voices: they are variants of one synthesizer, and the encoder hears them as one voice (in a trial
  all six fell into one cluster).

DER uses `pyannote.metrics` with a 0.25 s collar (overlapped speech scored). Time is the diarizer's (VAD,
embeddings, clustering) against transcribing the same file with the service's batch decoder on the same cores.

The service rows submit the many-voice file to a stack started here (one worker, the default voice encoder),
plainly and with `diarize=true` in turn (`--pairs`, 3 of each): the DER of the job's speaker turns
(`/v1/jobs/{id}/speakers`), and of the speakers on the transcript's words (a turn per run of words of one speaker,
word timestamps as bounds, words closer than 0.3 s joined); the speakers found; and the time diarizing added to
the job end to end (the median of diarized less plain over the pairs). Whisper's word timestamps reach into
pauses, which the reference (VAD) leaves out: the words row's false alarm is their timing, its confusion is the
speakers'.

    .venv/bin/python benchmarks/diarization.py               # prints the table and writes it into RESULTS.md
    .venv/bin/python benchmarks/diarization.py --no-service  # the diarizer alone
    .venv/bin/python benchmarks/diarization.py --workers 2   # the stack as one worker per core, one thread each
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.results import machine, record  # noqa: E402
from processors.audio import SAMPLE_RATE, decode_audio  # noqa: E402
from processors.settings import DiarizationSettings  # noqa: E402
from processors.speakers import diarize as diarize_recording  # noqa: E402
from processors.speech import SpeechOptions, find_speech  # noqa: E402
from processors.voices import CALIBRATIONS, DEFAULT_VOICE_MODEL, LazyEncoder, VoiceEmbedder  # noqa: E402
from tests.support.audio import SHARED_AUDIO, read_stereo  # noqa: E402
from tests.support.longform import build  # noqa: E402
from tests.support.stack import RunningStack  # noqa: E402

Reference = list[tuple[float, float, str]]


def diarize(audio: npt.NDArray[np.float32], encoder: VoiceEmbedder) -> tuple[Reference, float]:
    started = time.perf_counter()
    turns = diarize_recording(audio, encoder)
    return [(t.start, t.end, str(t.speaker)) for t in turns], time.perf_counter() - started


class Scores(NamedTuple):
    error: float
    """DER: the three below, over the reference's speech."""
    missed: float
    false_alarm: float
    confusion: float


def der(reference: Reference, hypothesis: Reference, duration: float) -> Scores:
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    def annotation(turns: Reference) -> Annotation:
        out = Annotation()
        for n, (start, end, who) in enumerate(turns):
            out[Segment(start, end), n] = who
        return out

    metric = DiarizationErrorRate(collar=0.25, skip_overlap=False)
    parts = metric(annotation(reference), annotation(hypothesis), uem=Timeline([Segment(0, duration)]), detailed=True)
    total = parts["total"] or 1.0
    return Scores(
        parts["diarization error rate"],
        parts["missed detection"] / total,
        parts["false alarm"] / total,
        parts["confusion"] / total,
    )


def ami() -> tuple[npt.NDArray[np.float32], Reference]:
    rows = (SHARED_AUDIO / "ami_pyannote_tst00.rttm").read_text().splitlines()
    reference = [(float(r.split()[3]), float(r.split()[3]) + float(r.split()[4]), r.split()[7]) for r in rows if r]
    return decode_audio(SHARED_AUDIO / "ami_pyannote_tst00.wav"), reference


def stereo() -> tuple[npt.NDArray[np.float32], Reference]:
    channels = read_stereo(SHARED_AUDIO / "stereo_diarization.wav", SAMPLE_RATE)
    reference: Reference = []
    for name, channel in zip(("left", "right"), channels, strict=True):
        for region in find_speech(channel.astype(np.float32), SpeechOptions(pad_s=0.0)):
            start, end = region.voiced
            reference.append((start / SAMPLE_RATE, end / SAMPLE_RATE, name))
    return channels.mean(axis=0).astype(np.float32), reference


def many_voices(folder: Path, rounds: int) -> tuple[npt.NDArray[np.float32], Reference, Path]:
    recording = build(folder / "voices.flac", rounds=rounds, voices=0)
    reference: Reference = []
    at = 0.0
    for part in recording.parts:
        who = "mfa" if part.name.startswith("mfa_") else part.name
        # Where each part's speaker speaks: the part's own speech (Silero on the part alone), not its pauses.
        for region in find_speech(part.samples, SpeechOptions(pad_s=0.0)):
            start, end = region.voiced
            reference.append((at + start / SAMPLE_RATE, at + end / SAMPLE_RATE, who))
        at += part.samples.size / SAMPLE_RATE + recording.pause_s
    return decode_audio(recording.path), reference, recording.path


def transcription_seconds(audio: npt.NDArray[np.float32], threads: int) -> float:
    """The batch decoder on the file cut as the split agent cuts it, without recovery decodes: a lower bound of
    what the service spends transcribing it, so the share diarization adds is not flattered."""
    from processors.engine import Transcriber
    from processors.planning import plan_chunks
    from processors.settings import ModelSettings

    transcriber = Transcriber(ModelSettings(cache_dir=REPO / ".cache" / "models", cpu_threads=threads))
    transcriber.load()
    regions = find_speech(audio, SpeechOptions())
    plan = plan_chunks(regions, audio.size, target=29 * SAMPLE_RATE, overlap=SAMPLE_RATE // 2, join_gap=SAMPLE_RATE)
    from processors.batching import Window

    windows = [Window(np.concatenate([audio[s:e] for s, e in chunk.spans]), language="en") for chunk in plan]
    started = time.perf_counter()
    transcriber.decoder.decode(windows)
    return time.perf_counter() - started


Row = tuple[str, float, Scores, int, int, float, float | None]


def service(
    path: Path,
    duration: float,
    reference: Reference,
    threads: int,
    pairs: int,
    workers: int = 1,
    precision: str = "int8",
) -> list[Row]:
    """The many-voice file through a stack, plain then diarized, `pairs` times; rows for the table, scoring the
    last job's speaker turns (`/v1/jobs/{id}/speakers`) and its words' speakers. The time diarizing adds is the
    median over the pairs of the diarized job's wall time less the plain one's: on this VM the same job's time
    moves by several seconds from run to run, as much as diarizing adds. `workers` > 1 shares the threads among that
    many workers (one per core is the layout the README recommends for batch throughput on CPUs)."""
    from tests.support.stack import start_stack, stop_stack

    with tempfile.TemporaryDirectory(prefix="scribeflow-bench-") as data:
        env = {
            "SCRIBEFLOW_WORKERS": str(workers),
            "SCRIBEFLOW_MODEL__CPU_THREADS": str(max(1, threads // workers)),
            "SCRIBEFLOW_DIARIZATION__PRECISION": precision,
        }
        stack = start_stack(Path(data), env=env)
        try:
            # Warm: the model, and the voice encoder each worker loads for its first diarized chunk.
            for _ in range(workers):
                warm = stack.submit(REPO.parent / "shared" / "audio" / "jfk.flac", language="en", diarize="true")
                stack.wait(warm.json()["id"])
            walls: list[tuple[float, float]] = []
            for _ in range(pairs):
                pair = []
                for diarize in ("false", "true"):
                    embedded = embedding_seconds(stack, workers)
                    started = time.perf_counter()
                    job = stack.wait(stack.submit(path, language="en", diarize=diarize).json()["id"], timeout=3600)
                    pair.append(time.perf_counter() - started)
                    if job["status"] != "completed":
                        raise RuntimeError(f"the service failed the job: {job.get('error')}")
                embedded = [
                    after - before for before, after in zip(embedded, embedding_seconds(stack, workers), strict=True)
                ]
                walls.append((pair[0], pair[1]))
                each = " + ".join(f"{x:.1f}" for x in embedded)
                print(f"plain {pair[0]:.1f} s, diarized {pair[1]:.1f} s (voices embedded: {each} s)", flush=True)
            words = stack.get(f"/v1/jobs/{job['id']}", params={"format": "verbose_json"}).json()["words"]
            listed = stack.get(f"/v1/jobs/{job['id']}/speakers").json()["data"]
        finally:
            stop_stack(stack)
    by_words: Reference = []
    for word in words:
        if by_words and by_words[-1][2] == word["speaker"] and word["start"] - by_words[-1][1] < 0.3:
            by_words[-1] = (by_words[-1][0], word["end"], word["speaker"])
        else:
            by_words.append((word["start"], word["end"], word["speaker"]))
    by_turns: Reference = [(t["start"], t["end"], t["speaker"]) for t in listed]
    plain = statistics.median(p for p, _ in walls)
    added = statistics.median(d - p for p, d in walls)
    rows: list[Row] = []
    layout = f" ({workers} workers x {max(1, threads // workers)} thread)" if workers > 1 else ""
    for what, turns in (("speaker turns", by_turns), ("words", by_words)):
        model = DEFAULT_VOICE_MODEL + (" int8" if precision == "int8" else "")
        name = f"service{layout}, diarize=true, {model} ({what})"
        found = len({t[2] for t in turns})
        scores = der(reference, turns, duration)
        rows.append((name, duration / 60, scores, len({r[2] for r in reference}), found, added, plain))
    return rows


def embedding_seconds(stack: RunningStack, workers: int) -> list[float]:
    """Each worker's time spent embedding voices so far (`scribeflow_voice_embedding_seconds`)."""
    from prometheus_client.parser import text_string_to_metric_families

    totals = []
    for n in range(workers):
        families = text_string_to_metric_families(stack.worker_metrics(n))
        totals.append(
            sum(
                sample.value
                for family in families
                if family.name == "scribeflow_voice_embedding_seconds"
                for sample in family.samples
                if sample.name.endswith("_sum")
            )
        )
    return totals


def table(rows: Sequence[Row], threads: int) -> str:
    lines = [
        f"{date.today().isoformat()}, {machine()}, no GPU; CAM++ (ONNX Runtime, float and 8-bit) and "
        f"GE2E (numpy) voice encoders, {threads} threads; DER with a 0.25 s collar, overlap scored",
        "",
        f"{'recording':<72} {'min':>5} {'DER %':>6} {'miss':>5} {'FA':>5} {'conf':>5} {'speakers ref/found':>19} "
        f"{'diarize s':>9} {'of transcribe':>13}",
    ]
    for name, minutes, scores, expected, found, seconds, transcribe in rows:
        share = f"{100 * seconds / transcribe:12.1f}%" if transcribe else f"{'-':>13}"
        lines.append(
            f"{name:<72} {minutes:>5.1f} {100 * scores.error:>6.2f} {100 * scores.missed:>5.1f} "
            f"{100 * scores.false_alarm:>5.1f} {100 * scores.confusion:>5.1f} {f'{expected} / {found}':>19} "
            f"{seconds:>9.1f} {share}"
        )
    lines.append("(miss, FA, conf: missed speech, false alarm, speaker confusion, % of the reference's speech; the")
    lines.append(" service rows' time is what diarizing added to the job end to end, against the plain job's: the")
    lines.append(" median over plain and diarized jobs in turn)")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4, help="passes over the recordings (4: about 10 minutes)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--no-service", action="store_true", help="the diarizer alone, without a stack")
    parser.add_argument("--pairs", type=int, default=3, help="plain and diarized jobs through the stack, in turn")
    parser.add_argument("--workers", type=int, default=1, help="workers of the stack, sharing --threads")
    parser.add_argument(
        "--precision",
        choices=["int8", "float32"],
        default=DiarizationSettings().precision,
        help="CAM++ on the stack's workers (the diarizer alone runs both)",
    )
    args = parser.parse_args()
    floats, int8 = LazyEncoder(threads=args.threads), LazyEncoder(threads=args.threads, int8=True)
    encoders = [(model, floats.get(model)) for model in CALIBRATIONS]
    encoders.append((f"{DEFAULT_VOICE_MODEL} int8", int8.get(DEFAULT_VOICE_MODEL)))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        voices_audio, voices_reference, voices_path = many_voices(Path(tmp), args.rounds)
        transcribe = transcription_seconds(voices_audio, args.threads)
        inputs = [
            ("AMI meeting excerpt (59 % overlapped)", *ami(), False),
            ("stereo clip mixed to mono", *stereo(), False),
            (
                f"{len({r[2] for r in voices_reference})} voices, {args.rounds} rounds",
                voices_audio,
                voices_reference,
                True,
            ),
        ]
        for model, encoder in encoders:
            for name, audio, reference, timed in inputs:
                hypothesis, seconds = diarize(audio, encoder)
                duration = audio.size / SAMPLE_RATE
                rows.append(
                    (
                        f"{name}, {model}",
                        duration / 60,
                        der(reference, hypothesis, duration),
                        len({r[2] for r in reference}),
                        len({h[2] for h in hypothesis}),
                        seconds,
                        transcribe if timed else None,
                    )
                )
                print(table(rows, args.threads).splitlines()[-1], flush=True)
        if not args.no_service:
            seconds = voices_audio.size / SAMPLE_RATE
            rows += service(
                voices_path, seconds, voices_reference, args.threads, args.pairs, args.workers, args.precision
            )
    text = table(rows, args.threads)
    print(text)
    if not args.no_record:
        record("diarization", text, title="Diarization (`benchmarks/diarization.py`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
