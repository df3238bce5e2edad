"""Run a real single-node Apache Kafka broker (KRaft mode) from Maven Central jars.

The project needs a genuine broker for development and integration tests, but
there is no Docker and no Kafka tarball download here: the only way in is the
Maven registry.  So the broker's jars are resolved with ``mvn`` into a local
cache once, and the broker runs as a plain ``java -cp 'libs/*' kafka.Kafka``
child process in combined broker+controller mode.

Contracts:

* Importing this module does no I/O, reads no environment variable and starts
  nothing.
* :func:`ensure_broker_jars` is idempotent and safe to call concurrently from
  several processes; a cache dir is either complete (marker file present) or
  gets rebuilt.
* :class:`KafkaBroker` keeps all state under ``data_dir``; a later broker on
  the same ``data_dir`` sees the topics and records of the earlier one, even if
  the earlier process was SIGKILLed.

CLI: ``python -m stack.broker --cache-dir .cache --data-dir DIR --port 9092``
prints the bootstrap address, then ``READY``, and serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import errno
import fcntl
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Self

__all__ = [
    "DEFAULT_KAFKA_VERSION",
    "BrokerError",
    "KafkaBroker",
    "ensure_broker_jars",
    "main",
    "probe_metadata",
]

# 4.1.x is the newest line verified against confluent-kafka 2.16.1 (the API's
# publisher and materialiser, and the workers' agents).
DEFAULT_KAFKA_VERSION = "4.1.2"
# Kafka 4.x ships log4j-core/api but no SLF4J binding in its Maven metadata (the
# tarball adds one); without it the broker logs nothing at all.  Keep this equal
# to the log4j-core that DEFAULT_KAFKA_VERSION pulls in.
_LOG4J_VERSION = "2.25.3"
_DEPENDENCY_PLUGIN_VERSION = "3.8.1"
_COMPLETE_MARKER = ".complete"
_MAX_PORT = 65535

# Kept inline so the cache can be rebuilt from nothing but this module and mvn.
POM_TEMPLATE = """\
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 \
http://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.scribeflow</groupId>
  <artifactId>kafka-broker-runtime</artifactId>
  <version>{kafka_version}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{kafka_version}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j_version}</version>
      <scope>runtime</scope>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>{plugin_version}</version>
      </plugin>
    </plugins>
  </build>
</project>
"""

# Console only: the child's stdout is already redirected to the broker log file,
# so a file appender would just duplicate it.  Chatty per-request loggers are
# turned down so the log stays readable during long test runs.  log4j's own
# shutdown hook is disabled because it would stop logging before Kafka's hook
# has logged (and so proved) its orderly shutdown.
_LOG4J2_PROPERTIES = """\
status = warn
shutdownHook = disable
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.network.name = kafka.network.RequestChannel$
logger.network.level = WARN
"""


class BrokerError(RuntimeError):
    """The jars could not be fetched or the broker could not be started."""


def _lock_file(path: Path) -> IO[bytes]:
    """Open and exclusively flock ``path``; closing the handle releases it."""
    handle = path.open("ab")
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    return handle


def ensure_broker_jars(cache_dir: Path, version: str = DEFAULT_KAFKA_VERSION) -> Path:
    """Return ``cache_dir/kafka-<version>/libs``, downloading the jars if needed.

    The directory counts as complete only once the marker file exists, and the
    marker is written after the jars are renamed into place, so an interrupted
    download is redone on the next call.  Concurrent callers are serialised by
    a lock file.  Raises :class:`BrokerError` if Maven is missing or fails.
    """
    root = Path(cache_dir).resolve() / f"kafka-{version}"
    libs = root / "libs"
    marker = root / _COMPLETE_MARKER
    if marker.is_file():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("`mvn` is not on PATH; it is needed once to fetch the Kafka jars")
    root.mkdir(parents=True, exist_ok=True)
    with _lock_file(root / ".lock"):
        if marker.is_file():  # another process finished while we waited
            return libs
        # Staging dirs of killed earlier runs; safe to drop since we hold the lock.
        for stale in root.glob(".download-*"):
            shutil.rmtree(stale, ignore_errors=True)
        with tempfile.TemporaryDirectory(prefix=".download-", dir=root) as tmp:
            pom = Path(tmp) / "pom.xml"
            pom.write_text(
                POM_TEMPLATE.format(
                    kafka_version=version,
                    log4j_version=_LOG4J_VERSION,
                    plugin_version=_DEPENDENCY_PLUGIN_VERSION,
                ),
                encoding="utf-8",
            )
            staged = Path(tmp) / "libs"
            cmd = [
                mvn,
                "-q",
                "-B",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staged}",
                "-DincludeScope=runtime",
            ]
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                check=False,
                stdin=subprocess.DEVNULL,
            )
            if proc.returncode != 0:
                raise BrokerError(
                    f"mvn failed to fetch Kafka {version} jars "
                    f"(exit {proc.returncode}):\n" + _tail(proc.stdout + proc.stderr, 60)
                )
            if not (staged / f"kafka_2.13-{version}.jar").is_file():
                raise BrokerError(f"mvn succeeded but kafka_2.13-{version}.jar is missing")
            if libs.exists():  # leftovers of an interrupted earlier run
                shutil.rmtree(libs)
            # Same filesystem as the final dir, so this is a single rename.
            staged.rename(libs)
        marker.write_text(f"kafka {version}\n", encoding="utf-8")
    return libs


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _read_tail(path: Path, lines: int = 60) -> str:
    try:
        with path.open("rb") as fh:
            # Only the end matters and the log can be large after long runs.
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            return _tail(fh.read().decode("utf-8", "replace"), lines)
    except OSError as exc:
        return f"<could not read {path}: {exc}>"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_is_free(host: str, port: int) -> bool:
    """Tell whether nothing is bound to ``host:port``.

    SO_REUSEADDR mirrors what the JVM sets on its server sockets, so TIME_WAIT
    leftovers of a previous broker do not count as "taken" but a listener does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
        return True


def _new_cluster_id() -> str:
    """Make a Kafka Uuid string: 16 random bytes, URL-safe base64, no padding."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        # Kafka's own generator skips ids starting with '-': CLIs parse them as flags.
        if not text.startswith("-"):
            return text


def _kafka_string(value: str) -> bytes:
    raw = value.encode("utf-8")
    return struct.pack(">h", len(raw)) + raw


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        buf += chunk
    return bytes(buf)


def probe_metadata(host: str, port: int, timeout: float = 2.0) -> int:
    """Return how many live brokers a Metadata request to ``host:port`` reports.

    A KRaft broker accepts TCP connections before it has caught up with the
    metadata log, and only answers requests once it is unfenced, so a reply
    listing at least one broker means clients can really use it.  Uses
    Metadata v1 (supported by Kafka 1.0 through 4.x) with an empty topic list.
    Raises ``OSError``/``ConnectionError`` if the broker does not answer.
    """
    correlation_id = 0x5CB0
    header = struct.pack(">hhi", 3, 1, correlation_id) + _kafka_string("stack.broker")
    body = struct.pack(">i", 0)  # v1+: empty array = no topics, just brokers
    request = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        payload = _recv_exact(sock, size)
    got_correlation, broker_count = struct.unpack_from(">ii", payload, 0)
    if got_correlation != correlation_id:
        raise ConnectionError(f"unexpected correlation id {got_correlation}")
    count: int = broker_count
    return count


class KafkaBroker:
    """A single-node KRaft Kafka broker running as a child JVM.

    Construction does nothing; :meth:`start` (or ``with``) writes the config,
    formats ``data_dir`` on first use, launches the JVM in its own process
    group and returns only once the broker answers Metadata requests.
    :meth:`stop` is idempotent.  ``port=0`` picks a free port at start time.

    ``die_with_parent`` (via util-linux ``setpriv --pdeathsig``, skipped if
    that is missing) has the kernel SIGTERM the JVM when the *thread* that
    called :meth:`start` exits, so a crashed test run cannot leave a broker
    holding the port and data dir.  Call :meth:`start` from a long-lived thread
    or pass ``False``.
    """

    def __init__(
        self,
        *,
        libs_dir: Path,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int = 9092,
        controller_port: int | None = None,
        heap: str = "512m",
        extra: Mapping[str, str] | None = None,
        log_file: Path | None = None,
        java: str = "java",
        ready_timeout: float = 60.0,
        die_with_parent: bool = True,
    ) -> None:
        self.libs_dir = Path(libs_dir)
        self.data_dir = Path(data_dir)
        self.host = host
        self._requested_port = port
        self._requested_controller_port = controller_port
        self.port = port
        self.controller_port = controller_port if controller_port is not None else port + 1
        self.heap = heap
        self.extra: dict[str, str] = dict(extra or {})
        self.log_file = Path(log_file) if log_file is not None else self.data_dir / "broker.log"
        self.java = java
        self.ready_timeout = ready_timeout
        self.die_with_parent = die_with_parent
        self._proc: subprocess.Popen[bytes] | None = None
        #: Exit status of the last stopped JVM (143 = clean SIGTERM shutdown).
        self.last_exit_code: int | None = None

    # -- public API ---------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """``host:port`` for clients' ``bootstrap.servers``."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id of the running JVM, or None when not started."""
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        """Tell whether the JVM started by :meth:`start` is still alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the broker and block until it serves metadata.

        Raises :class:`BrokerError` (with the log tail) if a port is taken, the
        storage format fails, the JVM exits, or readiness takes longer than
        ``ready_timeout`` seconds; in those cases no process is left running.
        """
        if self.is_running():
            raise BrokerError(f"broker already running (pid {self.pid})")
        self._check_libs()
        self._choose_ports()
        self.data_dir = self.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file = self.log_file.resolve()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        props = self._write_config()
        with self.log_file.open("ab") as log:
            log.write(f"\n=== stack.broker starting at {time.ctime()} ===\n".encode())
        if not (self._log_dir / "meta.properties").is_file():
            self._format_storage(props)
        self._launch(props)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the broker's process group, SIGKILL it after ``timeout`` s.

        A SIGTERM lets Kafka flush and close its logs cleanly so the next start
        skips log recovery.  Safe to call when not started or already stopped.
        """
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(proc, signal.SIGKILL)
                proc.wait()
        else:
            # The JVM is gone but a stray child in its group might not be.
            self._signal_group(proc, signal.SIGKILL)
        self.last_exit_code = proc.returncode
        self._proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def log_tail(self, lines: int = 60) -> str:
        """Return the last ``lines`` lines of the broker log, for error messages."""
        return _read_tail(self.log_file, lines)

    # -- internals -----------------------------------------------------------

    @property
    def _log_dir(self) -> Path:
        return self.data_dir / "kafka-logs"

    def _check_libs(self) -> None:
        if not any(self.libs_dir.glob("kafka_2.13-*.jar")):
            raise BrokerError(f"no kafka_2.13 jar in {self.libs_dir}; call ensure_broker_jars() first")

    def _choose_ports(self) -> None:
        self.port = self._requested_port or _free_port(self.host)
        if not _port_is_free(self.host, self.port):
            raise BrokerError(
                f"port {self.host}:{self.port} is already in use "
                "(another Kafka or service?); stop it or pick another port"
            )
        if self._requested_controller_port is not None:
            self.controller_port = self._requested_controller_port
            if not _port_is_free(self.host, self.controller_port):
                raise BrokerError(f"controller port {self.host}:{self.controller_port} is already in use")
        else:
            # port+1 keeps the layout predictable; fall back rather than fail,
            # since the caller never asked for a specific controller port.
            candidate = self.port + 1
            if candidate > _MAX_PORT or not _port_is_free(self.host, candidate):
                candidate = _free_port(self.host)
            self.controller_port = candidate

    def _properties(self) -> dict[str, str]:
        host = self.host
        broker_listener = f"PLAINTEXT://{host}:{self.port}"
        controller_listener = f"CONTROLLER://{host}:{self.controller_port}"
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            # Static voters work on both 3.9 and 4.x and need no --standalone
            # format; a changed controller port across restarts is fine.
            "controller.quorum.voters": f"1@{host}:{self.controller_port}",
            "listeners": f"{broker_listener},{controller_listener}",
            "advertised.listeners": broker_listener,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self._log_dir),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            # 50 partitions (the default) make the first group join noticeably
            # slower on a 2-core box and buy nothing on one node.
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Without this each new consumer group waits 3 s before its first
            # assignment, which dominates test time.
            "group.initial.rebalance.delay.ms": "0",
            # Topics must be declared on purpose; a typo should fail, not
            # silently create a topic.
            "auto.create.topics.enable": "false",
        }
        props.update(self.extra)
        return props

    def _write_config(self) -> Path:
        props = self.data_dir / "server.properties"
        lines = [f"{key}={value}" for key, value in self._properties().items()]
        props.write_text("\n".join(lines) + "\n", encoding="utf-8")
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2_PROPERTIES, encoding="utf-8")
        return props

    def _java_cmd(self, main_class: str, args: Sequence[str], heap: str) -> list[str]:
        return [
            self.java,
            f"-Xmx{heap}",
            "-Xss1m",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-cp",
            str(self.libs_dir.resolve() / "*"),
            main_class,
            *args,
        ]

    def _format_storage(self, props: Path) -> None:
        cmd = self._java_cmd(
            "kafka.tools.StorageTool",
            ["format", "--cluster-id", _new_cluster_id(), "--config", str(props)],
            # The format tool needs almost nothing; a small heap starts faster.
            heap="256m",
        )
        with self.log_file.open("ab") as log:
            try:
                rc = subprocess.run(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=max(self.ready_timeout, 30.0),
                    check=False,
                ).returncode
            except FileNotFoundError as exc:
                raise BrokerError(f"cannot run java ({self.java!r}): {exc}") from exc
            except subprocess.TimeoutExpired as exc:
                raise BrokerError(f"kafka storage format timed out:\n{self.log_tail()}") from exc
        if rc != 0:
            raise BrokerError(f"kafka storage format failed (exit {rc}):\n{self.log_tail()}")

    def _launch(self, props: Path) -> None:
        cmd = self._java_cmd("kafka.Kafka", [str(props)], heap=self.heap)
        setpriv = shutil.which("setpriv") if self.die_with_parent else None
        if setpriv is not None:
            # setpriv sets PR_SET_PDEATHSIG and execs java in place (same pid);
            # unlike preexec_fn this runs no Python between fork and exec.
            cmd = [setpriv, "--pdeathsig", "TERM", "--", *cmd]
        with self.log_file.open("ab") as log:
            try:
                # A new session makes the JVM its own process-group leader, so
                # stop() can signal the whole group and a terminal's Ctrl-C
                # reaches only us, letting us shut the broker down in order.
                self._proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    cwd=self.data_dir,
                )
            except FileNotFoundError as exc:
                raise BrokerError(f"cannot run java ({self.java!r}): {exc}") from exc

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        proc = self._proc
        if proc is None:
            raise BrokerError("internal error: _wait_ready() before _launch()")
        while True:
            rc = proc.poll()
            if rc is not None:
                raise BrokerError(
                    f"Kafka broker exited with code {rc} during startup; log {self.log_file}:\n{self.log_tail()}"
                )
            try:
                if probe_metadata(self.host, self.port, timeout=2.0) > 0:
                    return
            except (OSError, struct.error):
                pass  # not listening or not serving yet
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"Kafka broker not ready after {self.ready_timeout:.0f}s; log {self.log_file}:\n{self.log_tail()}"
                )
            time.sleep(0.25)

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    # Treat SIGTERM exactly like Ctrl-C so one code path unwinds main() from
    # wherever it blocks (mvn, readiness wait, idle loop) and stops the broker.
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the process exit code (0 after a clean stop)."""
    parser = argparse.ArgumentParser(
        prog="python -m stack.broker",
        description="Run a single-node KRaft Kafka broker in the foreground.",
    )
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache"))
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9092)
    parser.add_argument("--controller-port", type=int, default=None)
    parser.add_argument("--version", default=DEFAULT_KAFKA_VERSION)
    parser.add_argument("--heap", default="512m")
    parser.add_argument("--log-file", type=Path, default=None)
    parser.add_argument("--ready-timeout", type=float, default=60.0)
    args = parser.parse_args(argv)

    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
        signal.SIGTERM: signal.signal(signal.SIGTERM, _sigterm_as_interrupt),
    }
    broker: KafkaBroker | None = None
    try:
        libs = ensure_broker_jars(args.cache_dir, args.version)
        broker = KafkaBroker(
            libs_dir=libs,
            data_dir=args.data_dir,
            host=args.host,
            port=args.port,
            controller_port=args.controller_port,
            heap=args.heap,
            log_file=args.log_file,
            ready_timeout=args.ready_timeout,
        )
        broker.start()
        print(broker.bootstrap, flush=True)
        print("READY", flush=True)
        while broker.is_running():
            time.sleep(0.5)
        print(
            f"broker exited unexpectedly; log {broker.log_file}:\n{broker.log_tail()}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 0
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        # A second Ctrl-C must not abort the orderly shutdown below.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        if broker is not None:
            broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
