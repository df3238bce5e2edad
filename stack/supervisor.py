"""Child processes of `scribeflow up`: started, restarted when they die, and all stopped together.

A crashed worker is restarted (its unfinished request is redelivered to whichever worker holds the partition);
a child that keeps dying — more than `max_restarts` within `window_s` — stops the stack instead of looping.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    restarts: list[float] = field(default_factory=list)


def _launch(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    # Own session: the launcher decides the stop order instead of a terminal's Ctrl-C hitting all at once.
    # Parent-death signal: a SIGKILLed launcher must not leave a worker holding the model or a port.
    # setpriv (util-linux) sets PR_SET_PDEATHSIG and execs in place; a preexec_fn would not be fork-safe here.
    setpriv = shutil.which("setpriv")
    command = [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else list(argv)
    return subprocess.Popen(command, env=dict(env), start_new_session=True)


class Supervisor:
    def __init__(self, *, max_restarts: int = 10, window_s: float = 60.0) -> None:
        self.children: list[Child] = []
        self.max_restarts = max_restarts
        self.window_s = window_s

    def spawn(self, name: str, argv: Sequence[str], *, env: Mapping[str, str]) -> Child:
        child = Child(name, list(argv), dict(env), _launch(argv, env))
        self.children.append(child)
        log.info("started %s (pid %d)", name, child.process.pid)
        return child

    def reap(self) -> Child | None:
        """Restart children that exited; returns one that exited too often to be restarted again."""
        for child in self.children:
            code = child.process.poll()
            if code is None:
                continue
            now = time.monotonic()
            child.restarts = [t for t in child.restarts if now - t < self.window_s]
            if len(child.restarts) >= self.max_restarts:
                return child
            child.restarts.append(now)
            log.warning("%s exited with code %s; restarting it", child.name, code)
            child.process = _launch(child.argv, child.env)
            log.info("restarted %s (pid %d)", child.name, child.process.pid)
        return None

    def stop_all(self, timeout: float = 20.0) -> None:
        """SIGTERM every child (newest first), then SIGKILL what is still alive after `timeout`."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in reversed(self.children):
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s; killing it", child.name, timeout)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
        self.children.clear()
