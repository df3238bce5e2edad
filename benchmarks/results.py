"""Keeping a benchmark's table in benchmarks/RESULTS.md, between the markers of its name."""

from __future__ import annotations

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
