"""The whole stack started the way a user starts it (`scribeflow up`), in a temporary data folder."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.ports import free_port, free_ports

REPO = Path(__file__).resolve().parents[2]


@dataclass
class RunningStack:
    base_url: str
    bootstrap: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    api_key: str | None = None
    """An admin key the test run made with `scribeflow keys create` (None when authentication is off)."""
    env: dict[str, str] = field(default_factory=dict)
    """The environment the stack was started with (the CLI needs it to reach the same database)."""
    _client: httpx.Client | None = field(default=None, repr=False)

    @property
    def client(self) -> httpx.Client:
        """One client for every call until the stack stops: a client per request builds a TLS context each time,
        about 30 ms of CPU that a test polling a job every 0.2 s takes from the stack it measures on two cores."""
        if self._client is None or self._client.is_closed:
            self._client = httpx.Client()
        return self._client

    def close_client(self) -> None:
        if self._client is not None:
            self._client.close()

    def wait_ready(self, timeout: float = 120) -> None:
        """Until `/ready` answers 200 (after the launcher restarted a killed child, say)."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if self.get("/ready", timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                pytest.fail(f"the stack was not ready again after {timeout:.0f} s\n{self.log_tail()}")
            time.sleep(0.5)

    def worker_metrics(self, n: int = 0) -> str:
        """Worker `n`'s Prometheus exposition."""
        port = int(self.env["SCRIBEFLOW_WORKER_METRICS_PORT"]) + n
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("timeout", 30)
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.request(method, f"{self.base_url}{path}", headers=headers, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("timeout", 60)
        return self.request("POST", path, **kwargs)

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def submit(self, path: Path | None = None, *, content: bytes | None = None, **data: str) -> httpx.Response:
        """POST /v1/jobs with `path`'s bytes (or `content`) as the upload and `data` as form fields."""
        body = content if content is not None else path.read_bytes() if path else b""
        name = path.name if path else "upload.bin"
        return self.post("/v1/jobs", files={"file": (name, body)}, data=data)

    def job(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self.get(f"/v1/jobs/{job_id}", timeout=10).json()
        return job

    def wait(
        self, job_id: str, until: Callable[[dict[str, Any]], bool] | None = None, timeout: float = 240
    ) -> dict[str, Any]:
        """Poll the job until `until(job)` holds (default: completed or failed); fails the test on timeout."""
        done = until or (lambda job: job["status"] in ("completed", "failed"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if done(job):
                return job
            time.sleep(0.2)
        pytest.fail(f"job {job_id} did not get there: {self.job(job_id)}\n{self.log_tail()}")

    def child_pid(self, name: str) -> int:
        """The newest pid the launcher logged for child `name` (e.g. `worker-0`)."""
        found = re.findall(rf"(?:started|restarted) {re.escape(name)} \(pid (\d+)\)", self.log_path.read_text())
        if not found:
            raise LookupError(f"no {name} in the launcher log")
        return int(found[-1])


def create_key(env: Mapping[str, str], name: str, *options: str) -> str:
    """A new API key, made by the CLI as a user would (`scribeflow keys create`): its last line of output."""
    out = subprocess.run(
        [sys.executable, "-m", "stack.cli", "keys", "create", name, *options],
        cwd=REPO,
        env=dict(env),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.strip().splitlines()[-1]


def start_stack(
    data_dir: Path, *, env: Mapping[str, str] = {}, bootstrap: str | None = None, timeout: float = 180
) -> RunningStack:
    """With `bootstrap`, the stack uses that broker instead of starting its own."""
    api_port = free_port()
    external = {"SCRIBEFLOW_EMBEDDED_BROKER": "false"} if bootstrap else {}
    bootstrap = bootstrap or f"127.0.0.1:{free_port()}"
    # One worker unless a test asks for more (the launcher's own default is one per core).
    env = {"SCRIBEFLOW_WORKERS": "1", **env}
    full_env = {
        **os.environ,
        **external,
        "SCRIBEFLOW_DATA_DIR": str(data_dir),
        "SCRIBEFLOW_CACHE_DIR": str(REPO / ".cache"),
        "SCRIBEFLOW_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "SCRIBEFLOW_PORT": str(api_port),
        "SCRIBEFLOW_WORKER_METRICS_PORT": str(free_ports(int(env.get("SCRIBEFLOW_WORKERS", "1")))),
        **env,
    }
    log_path = data_dir / "stack.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    api_key = None
    if full_env.get("SCRIBEFLOW_AUTH__ENABLED", "true").lower() not in ("false", "0"):
        api_key = create_key(full_env, "tests", "--admin")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "stack.cli", "up"], cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    stack = RunningStack(f"http://127.0.0.1:{api_port}", bootstrap, data_dir, process, log_path, api_key, full_env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the stack exited with {process.returncode}:\n{stack.log_tail()}")
        try:
            workers = int(full_env.get("SCRIBEFLOW_WORKERS", "1"))
            if stack.get("/ready", timeout=2).status_code == 200 and _balanced(log_path, workers):
                return stack
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_stack(stack)
    raise RuntimeError(f"the stack was not ready after {timeout:.0f} s:\n{stack.log_tail()}")


def _balanced(log_path: Path, workers: int) -> bool:
    """Every worker is up and holds partitions of each agent's topic, so the first job is shared by all of them
    (a worker busy with a batch would otherwise hold every partition until it polls again)."""
    log = log_path.read_text(errors="replace")
    if log.count("worker ready") < workers:
        return False
    for agent in ("split", "transcribe", "transcribe-priority", "stitch", "postprocess", "live"):
        if len(set(re.findall(rf" (\d+) INFO processors.runtime: {agent} assigned", log))) < workers:
            return False
    return True


def stop_stack(stack: RunningStack, timeout: float = 60) -> int:
    """SIGTERM, as a service manager would; returns the launcher's exit code."""
    stack.close_client()
    if stack.process.poll() is None:
        stack.process.send_signal(signal.SIGTERM)
        try:
            stack.process.wait(timeout)
        except subprocess.TimeoutExpired:
            stack.process.kill()
            stack.process.wait()
            raise
    return stack.process.returncode
