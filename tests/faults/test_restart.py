"""Stopping and starting the embedded stack on the same data folder: nothing stale blocks the second start,
and what the first one accepted is still there."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.audio import shared
from tests.support.stack import start_stack, stop_stack

pytestmark = pytest.mark.e2e


def test_second_start_on_the_same_data_dir(tmp_path: Path) -> None:
    first = start_stack(tmp_path)
    try:
        job_id = first.submit(shared("jfk.flac")).json()["id"]
        done = first.wait(job_id)
    finally:
        assert stop_stack(first) == 0, first.log_tail()
    assert done["status"] == "completed"

    second = start_stack(tmp_path, bootstrap=None)
    try:
        again = second.job(job_id)
        assert again["status"] == "completed" and again["result"]["text"] == done["result"]["text"]
        response = second.submit(shared("librispeech_dev-clean_1272-128104-0000.wav"))
        assert second.wait(response.json()["id"])["status"] == "completed"
    finally:
        assert stop_stack(second) == 0, second.log_tail()
