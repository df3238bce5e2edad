"""Keeping a benchmark's table in benchmarks/RESULTS.md, between the markers of its name."""

from __future__ import annotations

import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def record(name: str, table: str, *, title: str) -> None:
    """Replaces the table between `<!-- name:begin -->` and `<!-- name:end -->`, or adds it under `title`."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = RESULTS.read_text()
    block = f"{begin}\n```\n{table}\n```\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + f"\n\n## {title}\n\n" + block + "\n"
    RESULTS.write_text(text)


def machine() -> str:
    """The CPU a table was measured on: CTranslate2's int8 kernels differ by instruction set, so the same code and
    audio give transcripts a few tenths of a point apart on different virtual machines (6.51 and 7.69 % WER for the
    same parts alone), and tables are only comparable on the same CPU."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return ", ".join(x for x in (platform.machine(), model, f"{os.cpu_count()} CPUs") if x)
