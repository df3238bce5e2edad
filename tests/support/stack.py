"""The whole stack started the way a user starts it (`scribeflow up`), in a temporary data folder."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.ports import free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass
class RunningStack:
    base_url: str
    bootstrap: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def child_pid(self, name: str) -> int:
        """The newest pid the launcher logged for child `name` (e.g. `worker-0`)."""
        found = re.findall(rf"(?:started|restarted) {re.escape(name)} \(pid (\d+)\)", self.log_path.read_text())
        if not found:
            raise LookupError(f"no {name} in the launcher log")
        return int(found[-1])


def start_stack(
    data_dir: Path, *, env: Mapping[str, str] = {}, bootstrap: str | None = None, timeout: float = 180
) -> RunningStack:
    """With `bootstrap`, the stack uses that broker instead of starting its own."""
    api_port = free_port()
    external = {"SCRIBEFLOW_EMBEDDED_BROKER": "false"} if bootstrap else {}
    bootstrap = bootstrap or f"127.0.0.1:{free_port()}"
    full_env = {
        **os.environ,
        **external,
        "SCRIBEFLOW_DATA_DIR": str(data_dir),
        "SCRIBEFLOW_CACHE_DIR": str(REPO / ".cache"),
        "SCRIBEFLOW_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "SCRIBEFLOW_PORT": str(api_port),
        "SCRIBEFLOW_PROGRESS_INTERVAL_S": "0",
        **env,
    }
    log_path = data_dir / "stack.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "stack.cli", "up"], cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    stack = RunningStack(f"http://127.0.0.1:{api_port}", bootstrap, data_dir, process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the stack exited with {process.returncode}:\n{stack.log_tail()}")
        try:
            if httpx.get(f"{stack.base_url}/ready", timeout=2).status_code == 200 and "Worker]: Ready" in (
                log_path.read_text(errors="replace")
            ):
                return stack
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_stack(stack)
    raise RuntimeError(f"the stack was not ready after {timeout:.0f} s:\n{stack.log_tail()}")


def stop_stack(stack: RunningStack, timeout: float = 60) -> int:
    """SIGTERM, as a service manager would; returns the launcher's exit code."""
    if stack.process.poll() is None:
        stack.process.send_signal(signal.SIGTERM)
        try:
            stack.process.wait(timeout)
        except subprocess.TimeoutExpired:
            stack.process.kill()
            stack.process.wait()
            raise
    return stack.process.returncode
