"""Post-processing through the stack with a real small model (Gemma 3 270M on llama.cpp's server): whatever the
model makes of the transcript, the words and their times stay what was said, and each step's outcome is recorded.
The guard's rejections are tested against a stand-in endpoint in tests/unit/test_polishing.py."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from tests.support.audio import voices
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e


def _words(job: dict[str, object]) -> list[tuple[str, float, float]]:
    result = job["result"]
    assert isinstance(result, dict)
    return [(re.sub(r"\W", "", w["word"].lower()), w["start"], w["end"]) for w in result["words"]]


@pytest.mark.timeout(900)
def test_the_steps_run_on_a_real_model_and_never_change_what_was_said(stack: RunningStack, tmp_path: Path) -> None:
    recording = tmp_path / "three.flac"
    voices(recording, ["jfk.flac", "librispeech_test-clean_237-126133-0000.flac", "ljspeech_LJ001-0001.wav"])
    plain = stack.wait(stack.submit(recording, language="en").json()["id"])
    response = stack.submit(recording, language="en", postprocess="punctuation,paragraphs,summary")
    assert response.status_code == 202, response.text
    job = stack.wait(response.json()["id"], timeout=600)
    assert job["status"] == "completed", job
    report = job["postprocess"]
    assert [s["step"] for s in report["steps"]] == ["punctuation", "paragraphs", "summary"]
    for outcome in report["steps"]:
        assert outcome["status"] in ("done", "rejected"), outcome  # the model answered: nothing was skipped
        assert outcome["seconds"] is not None
        if outcome["status"] == "rejected" or outcome["step"] == "summary":
            continue
        assert outcome["agreement"] >= 0.97 or outcome["reason"], outcome
    assert _words(job) == _words(plain), "the words and their times are the transcript's"
    summary = next(s for s in report["steps"] if s["step"] == "summary")
    assert (report.get("summary") or "").strip() if summary["status"] == "done" else report.get("summary") is None
    segments = job["result"]["segments"]
    assert [s["id"] for s in segments] == list(range(len(segments)))
    paragraphs = next(s for s in report["steps"] if s["step"] == "paragraphs")
    if paragraphs["status"] == "done":
        numbers = [s["paragraph"] for s in segments]
        assert numbers[0] == 0 and all(b - a in (0, 1) for a, b in itertools.pairwise(numbers))
        assert job["result"]["text"].count("\n\n") == numbers[-1]
    events = stack.get(f"/v1/jobs/{job['id']}/events", timeout=30).text
    assert events.count("event: segment") == len(segments), "each segment went out once"


def test_a_bad_step_name_is_refused(stack: RunningStack, tmp_path: Path) -> None:
    recording = tmp_path / "one.flac"
    voices(recording, ["jfk.flac"])
    response = stack.submit(recording, postprocess="punctuation,translate")
    assert response.status_code == 400 and response.json()["error"]["param"].startswith("postprocess"), response.text
