"""Schemathesis, with every check, against the running stack's own OpenAPI document (see schemathesis.toml)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.audio import SHARED_AUDIO
from tests.support.stack import REPO, RunningStack, create_key


def test_the_api_matches_its_openapi_document_under_fuzzing(stack: RunningStack, tmp_path: Path) -> None:
    job = stack.wait(stack.submit(SHARED_AUDIO / "jfk.flac").json()["id"])
    assert job["status"] == "completed"
    key = create_key(stack.env, "fuzzer", "--admin", "--requests-per-minute", "1000000")
    env = {**os.environ, "SCRIBEFLOW_FUZZ_KEY": key, "SCRIBEFLOW_FUZZ_JOB": job["id"]}
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{stack.base_url}/openapi.json"]
    options = ["--checks", "all", "--max-examples", "50", "--seed", "20261126", "--no-color"]
    report = tmp_path / "junit.xml"
    done = subprocess.run(
        [*command, *options, "--report", "junit", "--report-junit-path", str(report)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
    assert re.search(r"Tested: (\d+)\n", done.stdout) and report.exists()
    selected = re.search(r"Selected: (\d+)/(\d+)", done.stdout)
    assert selected and selected.group(1) == selected.group(2)  # every operation of the document was exercised
    # The stack still works after the fuzzing.
    assert stack.wait(stack.submit(SHARED_AUDIO / "jfk.flac").json()["id"])["status"] == "completed"
