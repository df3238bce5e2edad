"""A throw-away single-node Ceph cluster with a RADOS Gateway, for tests needing S3.

The tests want a real S3 implementation (signatures, multipart, presigned URLs) without
a mock and without AGPL server code, so this drives Debian's Ceph packages: one monitor,
one memstore OSD and one radosgw, all confined to a directory the caller owns.

Usage in a test::

    ensure_rgw_installed()
    with CephRgw(workdir=tmp_path, access_key="k", secret_key="s") as rgw:
        client = Minio(rgw.netloc, access_key="k", secret_key="s", secure=False)

Or from a shell, in the foreground until SIGINT/SIGTERM::

    python -m tests.support.rgw --workdir /tmp/rgw --port 7480 \
        --access-key K --secret-key S

Importing this module does no I/O and reads no environment: everything happens in the
functions below, so collecting tests stays cheap on machines without Ceph.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Final, Self

__all__ = [
    "APT_PACKAGES",
    "REQUIRED_BINARIES",
    "CephRgw",
    "RgwError",
    "ensure_rgw_installed",
    "main",
]

REQUIRED_BINARIES: Final[tuple[str, ...]] = (
    "ceph-mon",
    "ceph-osd",
    "radosgw",
    "radosgw-admin",
    "ceph",
    "monmaptool",
)
# ceph-mgr is left out on purpose: nothing here needs PG statistics or the dashboard,
# and it would add a fourth daemon plus a few seconds to every start.
APT_PACKAGES: Final[tuple[str, ...]] = (
    "ceph-mon",
    "ceph-osd",
    "radosgw",
    "ceph-common",
)

_MON_ID: Final = "a"
_OSD_ID: Final = 0
_RGW_NAME: Final = "client.rgw.gw"
# Linux sun_path is 108 bytes including the terminating NUL.
_MAX_UNIX_SOCKET_PATH: Final = 107
# Characters that ceph.conf treats as comments, variable expansion or separators;
# such a workdir would silently produce a broken config.
_BAD_PATH_CHARS: Final = frozenset("#;$=[]\"'\\")
_LOG_TAIL_LINES: Final = 25
_STOP_GRACE_S: Final = 10.0
_PROC_NET_INODE: Final = 9


class RgwError(RuntimeError):
    """Installing, starting or talking to the throw-away Ceph cluster failed."""


def ensure_rgw_installed() -> None:
    """Install Debian's Ceph packages when any binary we drive is missing.

    apt-get update is skipped when the package lists already know the packages, since
    it is the slow, network-bound part; it is retried once if the install itself fails,
    because stale lists make apt ask for files the mirror no longer has.
    """
    if not _missing_binaries():
        return
    if os.geteuid() != 0:
        raise RgwError(
            f"Ceph binaries missing ({', '.join(_missing_binaries())}) "
            f"and not running as "
            f"root; install them with: apt-get install -y --no-install-recommends "
            f"{' '.join(APT_PACKAGES)}"
        )
    if shutil.which("apt-get") is None:
        raise RgwError("Ceph binaries are missing and apt-get is not available to install them")

    env = dict(os.environ)
    env["DEBIAN_FRONTEND"] = "noninteractive"
    updated = False
    if not _apt_knows(APT_PACKAGES, env):
        _apt(["update"], env)
        updated = True
    install = [
        "install",
        "-y",
        "--no-install-recommends",
        # Keep local config files instead of prompting, which hangs without a tty.
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
        *APT_PACKAGES,
    ]
    try:
        _apt(install, env)
    except RgwError:
        if updated:
            raise
        _apt(["update"], env)
        _apt(install, env)

    still_missing = _missing_binaries()
    if still_missing:
        raise RgwError(f"apt-get install succeeded but these are still missing: {still_missing}")


def _missing_binaries() -> list[str]:
    return [name for name in REQUIRED_BINARIES if shutil.which(name) is None]


def _apt_knows(packages: Sequence[str], env: dict[str, str]) -> bool:
    result = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", *packages],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return result.returncode == 0


def _apt(args: Sequence[str], env: dict[str, str]) -> None:
    # Wait for a concurrent apt/dpkg (another test run, unattended upgrades) rather
    # than failing at once on the dpkg lock.
    cmd = ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=300", *args]
    result = subprocess.run(
        cmd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-_LOG_TAIL_LINES:])
        raise RgwError(f"{' '.join(cmd)} failed with exit code {result.returncode}:\n{tail}")


def _free_port(host: str) -> int:
    # Racy by nature (the port is free now, not necessarily when the daemon binds);
    # a lost race shows up as a daemon exiting early, reported with its log.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # Columns: sl, local_address, rem_address, st, ..., inode; st 0A = LISTEN.
            if len(fields) > _PROC_NET_INODE and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[_PROC_NET_INODE])
    return inodes


def _pid_listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` itself holds a listening socket on ``port``.

    A plain connect() cannot tell our radosgw from another server already on the port
    (radosgw then fails to bind and exits, but only after a connect would succeed).
    """
    wanted = _listening_inodes(port)
    if not wanted:
        return False
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in wanted:
            return True
    return False


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            # Ceph logs get long; reading just the end keeps failure reports cheap.
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


class _Daemon:
    def __init__(self, name: str, proc: subprocess.Popen[bytes], output: IO[bytes]) -> None:
        self.name = name
        self.proc = proc
        # Kept open for the daemon's lifetime and closed by stop().
        self.output = output


class CephRgw:
    """One monitor, one memstore OSD and a radosgw serving S3 on ``host:port``.

    Every file (config, mon store, OSD data, pid files, admin sockets, logs) lives
    under ``workdir``, so concurrent instances only need different workdirs. The
    workdir is never deleted: the caller owns it, and its logs are what one reads
    after a failure.
    """

    def __init__(
        self,
        *,
        workdir: Path,
        access_key: str,
        secret_key: str,
        port: int = 0,
        host: str = "127.0.0.1",
        startup_timeout: float = 90.0,
        memstore_bytes: int = 1 << 30,
    ) -> None:
        self._workdir = Path(workdir).absolute()
        self._requested_port = port
        self._port = port
        self._host = host
        self._access_key = access_key
        self._secret_key = secret_key
        self._startup_timeout = startup_timeout
        self._memstore_bytes = memstore_bytes
        self._daemons: list[_Daemon] = []
        self._started = False

    # -- public surface -----------------------------------------------------------

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The S3 port; only meaningful after start() when 0 was requested."""
        return self._port

    @property
    def netloc(self) -> str:
        """``host:port``, the form the minio SDK wants as its endpoint."""
        return f"{self._host}:{self._port}"

    @property
    def endpoint(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def access_key(self) -> str:
        return self._access_key

    @property
    def secret_key(self) -> str:
        return self._secret_key

    @property
    def region(self) -> str:
        # RGW ignores the region in SigV4 scopes but only accepts bucket creation for
        # its own zonegroup; clients that default to us-east-1 send no location and so
        # match, which is why this is what callers should configure.
        return "us-east-1"

    @property
    def workdir(self) -> Path:
        return self._workdir

    @property
    def conf_path(self) -> Path:
        return self._workdir / "ceph.conf"

    @property
    def log_dir(self) -> Path:
        return self._workdir / "log"

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

    def running(self) -> bool:
        """True while every daemon we started is still alive."""
        return self._started and all(d.proc.poll() is None for d in self._daemons)

    def start(self) -> None:
        if self._started:
            raise RgwError("CephRgw.start() called twice")
        missing = _missing_binaries()
        if missing:
            raise RgwError(
                f"Ceph binaries not found: {', '.join(missing)}; "
                f"call ensure_rgw_installed() "
                f"or apt-get install {' '.join(APT_PACKAGES)}"
            )
        self._validate_workdir()
        self._started = True
        deadline = time.monotonic() + self._startup_timeout
        try:
            self._bootstrap(deadline)
        except BaseException as exc:
            # Collect the logs before stop() so the report shows the state at failure.
            report = self._failure_report()
            self.stop()
            suffix = f"\n{report}" if report else ""
            if isinstance(exc, RgwError):
                raise RgwError(f"{exc}{suffix}") from exc
            if isinstance(exc, Exception):
                raise RgwError(f"Ceph RGW failed to start: {exc!r}{suffix}") from exc
            raise

    def stop(self) -> None:
        """Stop every daemon we started; safe to call any number of times."""
        # radosgw first, then the OSD while the monitor can still acknowledge its
        # shutdown (otherwise it waits osd_mon_shutdown_timeout), the monitor last.
        while self._daemons:
            daemon = self._daemons.pop()
            self._terminate(daemon)
        self._started = False

    # -- bootstrap ------------------------------------------------------------------

    def _validate_workdir(self) -> None:
        try:
            ipaddress.IPv4Address(self._host)
        except ValueError as exc:
            # The config derives "public network = host/32" from it, and the daemons
            # bind msgr2 on it, so a name or an IPv6 address would not work.
            raise RgwError(f"host must be an IPv4 address such as 127.0.0.1, not {self._host!r}") from exc
        text = str(self._workdir)
        bad = sorted(set(text) & _BAD_PATH_CHARS) + (["whitespace"] if any(c.isspace() for c in text) else [])
        if bad:
            raise RgwError(f"workdir {text!r} contains characters ceph.conf cannot carry: {bad}")
        if (self._workdir / "mon").exists() or self.conf_path.exists():
            # A second cluster in the same directory would reuse the old mon store
            # and fsid; refuse rather than delete something the caller owns.
            raise RgwError(f"{self._workdir} already holds a Ceph cluster; use a fresh workdir")

    def _bootstrap(self, deadline: float) -> None:
        for sub in (
            "run",
            "log",
            "crash",
            f"mon/ceph-{_MON_ID}",
            f"osd/ceph-{_OSD_ID}",
            "rgw",
        ):
            (self._workdir / sub).mkdir(parents=True, exist_ok=True)
        if self._requested_port != 0:
            # Checked before building the cluster so a taken port fails in milliseconds.
            self._ensure_port_free()
        mon_port = _free_port(self._host)
        if self._requested_port == 0:
            self._port = _free_port(self._host)
        fsid = str(uuid.uuid4())
        self.conf_path.write_text(self._render_conf(fsid, mon_port))

        monmap = self._workdir / "monmap"
        self._run(
            [
                "monmaptool",
                "--create",
                "--clobber",
                "--fsid",
                fsid,
                "--addv",
                _MON_ID,
                f"[v2:{self._host}:{mon_port}]",
                str(monmap),
            ],
            deadline,
        )
        self._run(
            [
                "ceph-mon",
                *self._conf_args(),
                "--mkfs",
                "-i",
                _MON_ID,
                "--monmap",
                str(monmap),
            ],
            deadline,
        )
        self._spawn(
            "mon",
            ["ceph-mon", *self._conf_args(), "-f", "-i", _MON_ID],
        )

        osd_uuid = str(uuid.uuid4())
        # The first mon command also serves as the "monitor is up" probe.
        osd_id = self._ceph(["osd", "new", osd_uuid], deadline).strip()
        if osd_id != str(_OSD_ID):
            raise RgwError(f"expected the monitor to allocate osd.{_OSD_ID}, got {osd_id!r}")
        self._run(
            [
                "ceph-osd",
                *self._conf_args(),
                "--mkfs",
                "-i",
                str(_OSD_ID),
                "--osd-uuid",
                osd_uuid,
            ],
            deadline,
        )
        self._spawn(
            "osd",
            ["ceph-osd", *self._conf_args(), "-f", "-i", str(_OSD_ID)],
        )
        self._wait_osd_up(deadline)

        self._ensure_port_free()
        self._spawn(
            "rgw",
            ["radosgw", *self._conf_args(), "-f", "-n", _RGW_NAME],
        )
        # radosgw only listens once its zone and pools exist; creating the user
        # before that would race it on creating the default zone.
        self._wait_listening(deadline)
        self._run(
            [
                "radosgw-admin",
                *self._conf_args(),
                "user",
                "create",
                "--uid",
                "test",
                "--display-name",
                "test",
                "--access-key",
                self._access_key,
                "--secret",
                self._secret_key,
            ],
            deadline,
        )
        self._wait_s3(deadline)

    def _render_conf(self, fsid: str, mon_port: int) -> str:
        w = self._workdir
        run, log = w / "run", w / "log"
        mon_asok = self._asok(run / f"mon.{_MON_ID}.asok")
        osd_asok = self._asok(run / f"osd.{_OSD_ID}.asok")
        rgw_asok = self._asok(run / "rgw.asok")
        return f"""\
# Generated by tests/support/rgw.py for a throw-away test cluster. Every path points
# into the workdir so nothing lands in /etc/ceph, /var/lib/ceph, /var/log/ceph or /run.
[global]
fsid = {fsid}
mon host = [v2:{self._host}:{mon_port}]
mon initial members = {_MON_ID}
public network = {self._host}/32
# msgr2 only, on a port we chose: the msgr1 default (6789) would collide between runs.
ms bind msgr1 = false
ms bind ipv6 = false
# No cephx: nothing to leak and no keyrings to create; S3 auth is RGW's own and
# still checks SigV4 signatures.
auth cluster required = none
auth service required = none
auth client required = none
# The default modes include "secure", which needs cephx; with auth none the
# daemons must agree on plain crc or they refuse to talk.
ms cluster mode = crc
ms service mode = crc
ms client mode = crc
ms mon cluster mode = crc
ms mon service mode = crc
ms mon client mode = crc
mon warn on insecure global id reclaim allowed = false
run dir = {run}
crash dir = {w / "crash"}
keyring = {w / "keyring"}
mon cluster log file = default={log}/ceph.$channel.log cluster={log}/ceph.log
# One OSD: replicated pools of size 1, and a CRUSH rule that picks OSDs rather than
# hosts, or PGs never get to active+clean.
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
# RGW makes ~7 pools; small PG counts keep peering quick and well under
# mon_max_pg_per_osd. No mgr runs, so the autoscaler would only warn.
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool delete = true
# CI disks can be fuller than a real mon tolerates (it refuses to start at 5% free).
mon data avail warn = 2
mon data avail crit = 1
# Every osdmap change (each pool RGW creates, each OSD state change) otherwise waits
# out a 1 s proposal batch; with one monitor there is nothing to batch for.
paxos propose interval = 0.01
paxos min wait = 0.001

[client]
log file = {log}/client.log

[mon]
mon data = {w}/mon/ceph-$id
log file = {log}/ceph-mon.$id.log
pid file = {run}/ceph-mon.$id.pid
admin socket = {mon_asok}

[osd]
osd data = {w}/osd/ceph-$id
osd objectstore = memstore
# memstore keeps all objects in RAM. This is only the size it reports: with no mgr
# nothing flags the OSD full, so RSS simply grows with what the tests store.
memstore device bytes = {self._memstore_bytes}
log file = {log}/ceph-osd.$id.log
pid file = {run}/ceph-osd.$id.pid
admin socket = {osd_asok}

[{_RGW_NAME}]
rgw data = {w}/rgw
rgw frontends = beast endpoint={self._host}:{self._port}
# The default 512 threads only cost memory in a test.
rgw thread pool size = 32
# Deleted objects' data stays in the memstore until GC runs (default: 2 h later);
# collect sooner so long test sessions do not fill the OSD.
rgw gc obj min wait = 60
rgw gc processor period = 60
log file = {log}/ceph-{_RGW_NAME}.log
pid file = {run}/radosgw.pid
admin socket = {rgw_asok}
"""

    @staticmethod
    def _asok(path: Path) -> str:
        # A too-long socket path makes the daemon log errors on every start; an empty
        # value disables the socket, which only debugging by hand needs.
        text = str(path)
        return text if len(text.encode()) <= _MAX_UNIX_SOCKET_PATH else ""

    def _conf_args(self) -> list[str]:
        return ["--conf", str(self.conf_path)]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        # Either would override --conf or inject options from the caller's shell.
        env.pop("CEPH_ARGS", None)
        env.pop("CEPH_CONF", None)
        return env

    def _remaining(self, deadline: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RgwError(f"Ceph RGW did not become ready within {self._startup_timeout:g}s")
        return left

    def _run(self, cmd: Sequence[str], deadline: float) -> str:
        try:
            result = subprocess.run(
                list(cmd),
                cwd=self._workdir,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=self._remaining(deadline),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RgwError(
                f"Ceph RGW did not become ready within {self._startup_timeout:g}s (stuck running {' '.join(cmd)})"
            ) from exc
        if result.returncode != 0:
            raise RgwError(
                f"{' '.join(cmd)} failed with exit code {result.returncode}:\n"
                f"{result.stdout[-4000:]}{result.stderr[-4000:]}"
            )
        return result.stdout

    def _ceph(self, args: Sequence[str], deadline: float) -> str:
        # --connect-timeout keeps the CLI from hanging forever on a dead monitor; the
        # overall deadline still bounds the whole start.
        timeout = max(1, min(30, int(self._remaining(deadline))))
        return self._run(
            ["ceph", *self._conf_args(), f"--connect-timeout={timeout}", *args],
            deadline,
        )

    def _spawn(self, name: str, cmd: Sequence[str]) -> None:
        argv = list(cmd)
        setpriv = shutil.which("setpriv")
        # If the test process is SIGKILLed (CI timeout, pytest-timeout's thread
        # method) the daemons must not outlive it. PR_SET_PDEATHSIG fires when the
        # spawning *thread* exits, so it is only safe from the main thread; setpriv
        # sets it without a preexec_fn, which is unsafe in threaded programs.
        if setpriv and threading.current_thread() is threading.main_thread():
            argv = [setpriv, "--pdeathsig", "KILL", "--", *argv]
        output = (self.log_dir / f"{name}.stdout").open("ab")
        try:
            proc = subprocess.Popen(
                argv,
                cwd=self._workdir,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # Own process group, so stop() can signal everything it may fork.
                start_new_session=True,
            )
        except BaseException:
            output.close()
            raise
        self._daemons.append(_Daemon(name, proc, output))

    def _check_daemons(self) -> None:
        for daemon in self._daemons:
            code = daemon.proc.poll()
            if code is not None:
                raise RgwError(f"ceph {daemon.name} daemon exited early with code {code}")

    def _wait_osd_up(self, deadline: float) -> None:
        while True:
            self._check_daemons()
            stat = json.loads(self._ceph(["osd", "stat", "--format=json"], deadline))
            if int(stat.get("num_up_osds", 0)) >= 1 and int(stat.get("num_in_osds", 0)) >= 1:
                return
            time.sleep(0.2)

    def _ensure_port_free(self) -> None:
        # Fail fast with a clear message; radosgw itself would only log a bind error.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self._host, self._port))
            except OSError as exc:
                raise RgwError(f"S3 port {self.netloc} is not free: {exc}") from exc

    def _wait_listening(self, deadline: float) -> None:
        rgw = self._daemons[-1]
        while True:
            self._check_daemons()
            self._remaining(deadline)
            if _pid_listens_on(rgw.proc.pid, self._port):
                return
            time.sleep(0.1)

    def _wait_s3(self, deadline: float) -> None:
        # Imported here so that importing this module does not need minio installed.
        import urllib3
        from minio import Minio

        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=2.0, read=30.0),
            retries=False,
        )
        client = Minio(
            self.netloc,
            access_key=self._access_key,
            secret_key=self._secret_key,
            secure=False,
            region=self.region,
            http_client=http,
        )
        last_error: Exception | None = None
        try:
            while True:
                self._check_daemons()
                try:
                    self._remaining(deadline)
                except RgwError as exc:
                    raise RgwError(f"{exc}; last S3 error: {last_error!r}") from last_error
                try:
                    client.list_buckets()
                    # The first bucket makes RGW create its index/data pools (a few
                    # osdmap changes); pay for that here rather than in some test.
                    probe = f"rgw-warmup-{secrets.token_hex(6)}"
                    client.make_bucket(probe)
                    client.remove_bucket(probe)
                except Exception as exc:  # any failure means "not yet"
                    last_error = exc
                    time.sleep(0.5)
                    continue
                # Make sure the answers came from our radosgw, not a server that took
                # the port between our checks.
                self._check_daemons()
                return
        finally:
            http.clear()

    # -- shutdown and reporting -------------------------------------------------------

    def _terminate(self, daemon: _Daemon) -> None:
        proc = daemon.proc
        try:
            if proc.poll() is None:
                self._signal_group(proc, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=_STOP_GRACE_S)
            # Also reap stragglers in the group even when the leader already exited.
            self._signal_group(proc, signal.SIGKILL)
            proc.wait()
        finally:
            daemon.output.close()

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)

    def _failure_report(self) -> str:
        parts: list[str] = []
        names = ["mon", "osd", "rgw"]
        logs = {
            "mon": self.log_dir / f"ceph-mon.{_MON_ID}.log",
            "osd": self.log_dir / f"ceph-osd.{_OSD_ID}.log",
            "rgw": self.log_dir / f"ceph-{_RGW_NAME}.log",
        }
        for name in names:
            for path in (self.log_dir / f"{name}.stdout", logs[name]):
                tail = _tail(path)
                if tail.strip():
                    parts.append(f"--- {path} (last lines) ---\n{tail}")
        return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.rgw",
        description="Run a throw-away Ceph RGW (S3) until SIGINT/SIGTERM.",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        required=True,
        help="fresh directory for all cluster state",
    )
    parser.add_argument("--port", type=int, default=7480, help="S3 port (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--access-key", required=True)
    parser.add_argument("--secret-key", required=True)
    parser.add_argument("--startup-timeout", type=float, default=90.0)
    parser.add_argument(
        "--install",
        action="store_true",
        help="apt-get install the Ceph packages if missing",
    )
    args = parser.parse_args(argv)

    if args.install:
        ensure_rgw_installed()

    stopping = False

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    # Handlers go in before start() so a signal during start-up still cleans up.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    args.workdir.mkdir(parents=True, exist_ok=True)
    rgw = CephRgw(
        workdir=args.workdir,
        port=args.port,
        host=args.host,
        access_key=args.access_key,
        secret_key=args.secret_key,
        startup_timeout=args.startup_timeout,
    )
    try:
        rgw.start()
    except RgwError as exc:
        print(f"FAILED {exc}", file=sys.stderr, flush=True)
        return 1
    try:
        print(f"READY {rgw.endpoint}", flush=True)
        while not stopping:
            if not rgw.running():
                print(
                    "a Ceph daemon exited; see the logs in " + str(rgw.log_dir),
                    file=sys.stderr,
                    flush=True,
                )
                return 1
            time.sleep(0.5)
    finally:
        rgw.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
