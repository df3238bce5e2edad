"""`scribeflow`: start the stack, run one API or worker process, create topics, publish the event schemas,
submit a file and watch it."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from api.keys import KeyStore
    from stack.settings import StackSettings

log = logging.getLogger("scribeflow")


def _setup_logging(level: str = "INFO") -> None:
    # The pid tells apart the processes `scribeflow up` runs into one log.
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")


def cmd_api(_: argparse.Namespace) -> int:
    import uvicorn

    from api import ApiSettings, create_app

    settings = ApiSettings()
    _setup_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        ws_ping_interval=settings.realtime.ping_s,
        ws_ping_timeout=settings.realtime.ping_s,
    )
    return 0


def cmd_worker(_: argparse.Namespace) -> int:
    from processors import WorkerSettings, run_worker

    settings = WorkerSettings()
    _setup_logging(settings.log_level)
    run_worker(settings)
    return 0


def cmd_topics(_: argparse.Namespace) -> int:
    from stack.settings import StackSettings
    from stack.topics import ensure_topics

    _setup_logging()
    created = ensure_topics(StackSettings().kafka)
    print("created: " + (", ".join(created) if created else "nothing (all topics exist)"))
    return 0


def write_schemas(out: Path) -> list[Path]:
    from schemas import EVENT_TYPES

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in EVENT_TYPES.items():
        schema = model.model_json_schema(mode="serialization")
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": name, **schema}
        path = out / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


def cmd_schemas(args: argparse.Namespace) -> int:
    for path in write_schemas(args.out):
        print(path)
    return 0


def _child_env(settings: StackSettings) -> dict[str, str]:
    data = settings.data_dir.resolve()
    cache = settings.cache_dir.resolve()
    defaults = {
        "SCRIBEFLOW_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "SCRIBEFLOW_STORAGE__LOCAL_ROOT": str(data / "objects"),
        "SCRIBEFLOW_DATABASE_PATH": str(settings.job_database),
        **({"SCRIBEFLOW_DATABASE_URL": settings.database_url} if settings.database_url else {}),
        "SCRIBEFLOW_SCRATCH_DIR": str(data / "scratch"),
        "SCRIBEFLOW_MODEL__CACHE_DIR": str(cache / "models"),
        "SCRIBEFLOW_HOST": settings.host,
        "SCRIBEFLOW_PORT": str(settings.port),
        # The API answers for the model the workers were started with.
        "SCRIBEFLOW_SERVED_MODELS": json.dumps([settings.model.name]),
    }
    return {**defaults, **os.environ}


def _wait_http(url: str, *, timeout: float, alive: threading.Event) -> bool:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive.is_set():
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


def cmd_up(_: argparse.Namespace) -> int:
    """The embedded stack in the foreground: broker, topics, API, workers. Ctrl-C or SIGTERM stops all of it."""
    from stack.broker import KafkaBroker, ensure_broker_jars
    from stack.settings import StackSettings
    from stack.supervisor import Supervisor
    from stack.topics import ensure_topics

    _setup_logging()
    settings = StackSettings()
    alive = threading.Event()
    alive.set()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        alive.clear()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    supervisor = Supervisor()
    broker: KafkaBroker | None = None
    failed = False
    try:
        if settings.embedded_broker:
            host, _sep, port = settings.kafka.bootstrap_servers.split(",")[0].rpartition(":")
            libs = ensure_broker_jars(settings.cache_dir.resolve() / "kafka", *_version(settings.kafka_version))
            data = settings.data_dir.resolve()
            broker = KafkaBroker(
                libs_dir=libs,
                data_dir=data / "kafka",
                host=host or "127.0.0.1",
                port=int(port),
                heap=settings.broker_heap,
                log_file=data / "logs" / "kafka.log",
            )
            log.info("starting Kafka broker on %s", broker.bootstrap)
            broker.start()
        ensure_topics(settings.kafka)
        env = _child_env(settings)
        python = sys.executable
        supervisor.spawn("api", [python, "-m", "stack.cli", "api"], env=env)
        workers, threads = settings.worker_layout(os.cpu_count() or 1)
        log.info("starting %d worker(s), %s each", workers, f"{threads} thread(s)" if threads else "every core")
        for n in range(workers):
            # Named, so a crashed worker restarted by the supervisor rejoins the group without a rebalance.
            stack_id = zlib.crc32(str(settings.data_dir.resolve()).encode())
            named = {
                **env,
                "SCRIBEFLOW_INSTANCE_ID": f"{socket.gethostname()}-{stack_id:08x}-worker-{n}",
                "SCRIBEFLOW_MODEL__CPU_THREADS": str(threads),
            }
            first_port = settings.worker_metrics_port
            named["SCRIBEFLOW_METRICS_PORT"] = "" if first_port is None else str(first_port + n)
            supervisor.spawn(f"worker-{n}", [python, "-m", "stack.cli", "worker"], env=named)
        base = f"http://{settings.host}:{settings.port}"
        first_key = _first_key(settings)
        if _wait_http(f"{base}/health", timeout=120, alive=alive):
            log.info("scribeflow is up: API on %s (Ctrl-C stops everything)", base)
            if first_key is not None:
                print(
                    "\nA first API key was created (admin). It is shown only this once; keep it:\n\n"
                    f"    {first_key}\n\n"
                    f"Send it as `Authorization: Bearer <key>` (the openai SDK's api_key). More keys: "
                    "`scribeflow keys create NAME`.\n",
                    flush=True,
                )
        while alive.is_set():
            if (child := supervisor.reap()) is not None:
                log.error("%s keeps exiting (code %s); stopping the stack", child.name, child.process.returncode)
                failed = True
                break
            time.sleep(0.5)
    finally:
        supervisor.stop_all()
        if broker is not None:
            broker.stop()
    return 1 if failed else 0


def _first_key(settings: StackSettings) -> str | None:
    """A fresh stack with authentication on gets one admin key, so it can be used at all."""
    from api.database import open_database
    from api.keys import KeyStore

    if not settings.auth.enabled:
        return None
    engine = open_database(settings.database_url, settings.job_database)
    try:
        keys = KeyStore(engine)
        if keys.any_active():
            return None
        _record, key = keys.create("first key", admin=True)
    finally:
        engine.dispose()
    return key


def cmd_keys(args: argparse.Namespace) -> int:
    """API keys in the job database, whether or not the stack is running."""
    from api.database import open_database
    from api.keys import KeyStore
    from stack.settings import StackSettings

    settings = StackSettings()
    engine = open_database(settings.database_url, settings.job_database)
    try:
        return _keys(args, KeyStore(engine))
    finally:
        engine.dispose()


def _keys(args: argparse.Namespace, keys: KeyStore) -> int:
    from api.keys import UnknownKey
    from schemas import KeyLimits

    if args.action == "create":
        limits = KeyLimits(
            requests_per_minute=args.requests_per_minute, audio_minutes_per_day=args.audio_minutes_per_day
        )
        record, key = keys.create(args.name, admin=args.admin, limits=limits)
        role = "admin key" if record.admin else "key"
        print(f"created {role} {record.id} ({record.name}); it is shown only this once:", file=sys.stderr)
        print(key)
        return 0
    if args.action == "list":
        for record in keys.list(include_revoked=args.all):
            state = f"revoked {record.revoked_at:%Y-%m-%d %H:%M}" if record.revoked_at else "active"
            own = ", ".join(f"{k}={v:g}" for k, v in record.limits.model_dump(exclude_none=True).items())
            print(
                f"{record.id}  {record.name!r}  {'admin' if record.admin else 'user'}  {state}  "
                f"created {record.created_at:%Y-%m-%d %H:%M}  {own or 'default limits'}"
            )
        return 0
    try:
        record = keys.revoke(args.id)
    except UnknownKey:
        print(f"no key {args.id!r}", file=sys.stderr)
        return 1
    print(f"revoked {record.id} ({record.name})")
    return 0


def cmd_follow(args: argparse.Namespace) -> int:
    """Print a job's segments from Kafka as they arrive, until it ends: an example downstream consumer."""
    from stack.follow import follow
    from stack.settings import StackSettings

    return follow(StackSettings().kafka, args.job_id, timeout_s=args.timeout)


def _version(version: str | None) -> tuple[str, ...]:
    return (version,) if version else ()


def cmd_submit(args: argparse.Namespace) -> int:
    """Upload a file, then follow the job with a progress bar on stderr and print the transcript."""
    import httpx

    base = args.url.rstrip("/")
    data = {"task": args.task, "word_timestamps": "true"}
    if args.language:
        data["language"] = args.language
    if args.diarize or args.speakers or args.format in ("diarized_json", "rttm"):
        data["diarize"] = "true"
    if args.speakers:
        data["min_speakers"] = data["max_speakers"] = str(args.speakers)
    if args.postprocess:
        data["postprocess"] = args.postprocess
    key = args.api_key or os.environ.get("SCRIBEFLOW_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=base, timeout=120, headers=headers) as client, args.file.open("rb") as audio:
        response = client.post("/v1/jobs", files={"file": (args.file.name, audio)}, data=data)
        if response.status_code != 202:
            print(f"rejected ({response.status_code}): {response.text}", file=sys.stderr)
            return 1
        job_id = response.json()["id"]
        print(f"job {job_id}", file=sys.stderr)
        if args.no_wait:
            print(job_id)
            return 0
        job = _follow(client, job_id)
        if job["status"] == "failed":
            print(f"failed: {job['error']['message']}", file=sys.stderr)
            return 1
        if args.format == "rttm":  # who spoke when, from the voices: not a transcript format
            print(client.get(f"/v1/jobs/{job_id}/speakers", params={"format": "rttm"}).text.rstrip("\n"))
        else:
            print(client.get(f"/v1/jobs/{job_id}", params={"format": args.format}).text.rstrip("\n"))
    return 0


def _follow(client: Any, job_id: str, interval: float = 0.5) -> dict[str, Any]:
    """Poll the job until it ends, with a bar over seconds of audio transcribed (ETA included) on stderr."""
    from tqdm import tqdm

    with tqdm(total=None, unit="s", unit_scale=False, desc="queued", file=sys.stderr, dynamic_ncols=True) as bar:
        while True:
            job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
            duration = job.get("duration")
            if duration and bar.total is None:
                bar.reset(total=round(duration))
            done = job["duration"] if job["status"] == "completed" else job.get("audio_seconds_done") or 0.0
            if bar.total is not None and round(done) > bar.n:
                bar.update(min(round(done), bar.total) - bar.n)
            bar.set_description(job["status"])
            if job.get("chunks_total"):
                bar.set_postfix_str(f"chunks {job.get('chunks_done') or 0}/{job['chunks_total']}")
            if job["status"] in ("completed", "failed"):
                return job
            time.sleep(interval)


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scribeflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start broker, topics, API and workers in the foreground").set_defaults(func=cmd_up)
    sub.add_parser("api", help="run one API process").set_defaults(func=cmd_api)
    sub.add_parser("worker", help="run one transcription worker").set_defaults(func=cmd_worker)
    sub.add_parser("topics", help="create the Kafka topics").set_defaults(func=cmd_topics)
    schemas = sub.add_parser("schemas", help="write the events' JSON Schemas")
    schemas.add_argument("--out", type=Path, default=Path("docs/schemas"))
    schemas.set_defaults(func=cmd_schemas)
    following = sub.add_parser("follow", help="print a job's segments from Kafka as they arrive (a consumer)")
    following.add_argument("job_id")
    following.add_argument("--timeout", type=float, default=3600, help="give up after this many seconds")
    following.set_defaults(func=cmd_follow)
    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a key; prints it alone on the last line, once")
    create.add_argument("name")
    create.add_argument("--admin", action="store_true", help="may read and list every job")
    create.add_argument("--requests-per-minute", type=_positive(int), help="instead of the API's default")
    create.add_argument("--audio-minutes-per-day", type=_positive(float), help="instead of the API's default")
    listing = actions.add_parser("list", help="keys and their limits (never the secrets)")
    listing.add_argument("--all", action="store_true", help="revoked keys too")
    revoke = actions.add_parser("revoke", help="stop a key from working, at once")
    revoke.add_argument("id", help="the key's id (`scribeflow keys list`)")
    keys.set_defaults(func=cmd_keys)
    submit = sub.add_parser("submit", help="transcribe a file through the API, with a progress bar")
    submit.add_argument("file", type=Path)
    submit.add_argument("--url", default="http://127.0.0.1:8000")
    submit.add_argument("--api-key", help="an API key (default: $SCRIBEFLOW_API_KEY)")
    submit.add_argument("--language")
    submit.add_argument("--task", choices=["transcribe", "translate"], default="transcribe")
    submit.add_argument(
        "--format",
        choices=["text", "srt", "vtt", "json", "verbose_json", "diarized_json", "rttm"],
        default="text",
        help="rttm: who spoke when (diarizes)",
    )
    submit.add_argument("--diarize", action="store_true", help="label who speaks when (srt/vtt show the speaker)")
    submit.add_argument("--speakers", type=_positive(int), help="diarize, knowing there are exactly this many")
    submit.add_argument("--postprocess", help="language-model steps, comma-separated: punctuation, paragraphs, summary")
    submit.add_argument("--no-wait", action="store_true", help="print the job id and return")
    submit.set_defaults(func=cmd_submit)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
