"""Transcription throughput of one worker's engine: audio seconds per wall second, on CPU or GPU.

Runs the engine the workers use (`processors.engine.Transcriber`, same settings) over real speech made long by
repetition, so the number is what one worker process can sustain, without the pipeline around it.

    .venv/bin/python benchmarks/throughput.py                                   # bundled base, int8, CPU
    .venv/bin/python benchmarks/throughput.py --device cuda --compute-type float16 --model base
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "audio"


def _speech(minutes: float) -> np.ndarray:
    from processors.audio import SAMPLE_RATE, decode_audio

    clips = [decode_audio(SHARED / name) for name in ("jfk.flac", "librispeech_dev-clean_1272-128104-0000.wav")]
    pause = np.zeros(SAMPLE_RATE, np.float32)
    one_round = np.concatenate([part for clip in clips for part in (clip, pause)])
    rounds = max(1, int(minutes * 60 * SAMPLE_RATE / one_round.size))
    return np.tile(one_round, rounds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="base")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--minutes", type=float, default=2.0, help="length of the test audio")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()

    from processors.audio import SAMPLE_RATE
    from processors.engine import Transcriber
    from processors.settings import ModelSettings
    from schemas import TranscriptionOptions

    audio = _speech(args.minutes)
    seconds = audio.size / SAMPLE_RATE
    settings = ModelSettings(
        name=args.model, device=args.device, compute_type=args.compute_type, cache_dir=REPO / ".cache" / "models"
    )
    transcriber = Transcriber(settings)
    started = time.perf_counter()
    transcriber.load()
    load_s = time.perf_counter() - started
    walls = []
    for _ in range(args.runs):
        started = time.perf_counter()
        summary = transcriber.transcribe(audio, TranscriptionOptions(language="en"), lambda *_: None)
        walls.append(time.perf_counter() - started)
    wall = statistics.median(walls)
    print(f"model {args.model}, {args.device}/{args.compute_type}, {seconds:.0f} s of speech, {args.runs} runs")
    print(f"{'load s':>8} {'median wall s':>14} {'audio s / wall s':>17} {'segments':>9}")
    print(f"{load_s:>8.2f} {wall:>14.2f} {seconds / wall:>17.1f} {summary.segment_count:>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
