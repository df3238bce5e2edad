"""Child processes of `scribeflow up`: started in order, watched, and all stopped when one of them dies
or the launcher is told to stop."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


class Supervisor:
    def __init__(self) -> None:
        self.children: list[Child] = []

    def spawn(self, name: str, argv: Sequence[str], *, env: Mapping[str, str]) -> Child:
        # Own session: the launcher decides the stop order instead of a terminal's Ctrl-C hitting all at once.
        # Parent-death signal: a SIGKILLed launcher must not leave a worker holding the model or a port.
        # setpriv (util-linux) sets PR_SET_PDEATHSIG and execs in place; a preexec_fn would not be fork-safe here.
        setpriv = shutil.which("setpriv")
        command = [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else list(argv)
        process = subprocess.Popen(command, env=dict(env), start_new_session=True)
        child = Child(name, process)
        self.children.append(child)
        log.info("started %s (pid %d)", name, process.pid)
        return child

    def exited(self) -> Child | None:
        """The first child that has exited, if any."""
        return next((c for c in self.children if c.process.poll() is not None), None)

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
