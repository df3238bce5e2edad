"""Running one worker process: build resources, load the model, run the three agents until told to stop."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

from ingest.publisher import EventPublisher
from ingest.storage import open_store
from processors.app import build_agents
from processors.engine import Transcriber
from processors.live import LiveResources
from processors.live_session import LivePolicy
from processors.llm import ChatClient
from processors.metrics import WorkerMetrics
from processors.postprocess import PostprocessResources
from processors.recovery import RecoveryOptions
from processors.runtime import AgentRunner, agent_group
from processors.settings import WorkerSettings
from processors.split import SplitResources
from processors.spreading import GroupMembers, Owners
from processors.stitch import StitchResources
from processors.transcribe import TranscribeResources
from processors.voices import LazyEncoder

log = logging.getLogger(__name__)

# Workers wait for the broker longer than the API does: no HTTP client is waiting, and giving up means a restart.
WORKER_DELIVERY_TIMEOUT_S = 120.0


def transcribe_owners(settings: WorkerSettings) -> Callable[[bool], Owners]:
    """Which transcribe worker holds which partitions of the chunk topics (`processors.app` names the agents)."""
    members = GroupMembers(settings.kafka.bootstrap_servers)
    topics = settings.kafka.topics

    def owners(priority: bool) -> Owners:
        if priority:
            return members.owners(agent_group(settings.group_id, "transcribe-priority"), topics.chunks_priority)
        return members.owners(agent_group(settings.group_id, "transcribe"), topics.chunks)

    return owners


def run_worker(settings: WorkerSettings) -> None:
    """Blocks until SIGINT/SIGTERM; each agent then finishes the batch in hand and commits before exiting."""
    if settings.model.cpu_threads:
        from threadpoolctl import threadpool_limits

        # numpy's BLAS keeps a thread per core in every process. Beside other workers' decoders they fight over
        # the cores: the voice features' small mel product took 5 ms instead of 0.1, half of what embedding a
        # window cost (benchmarks/RESULTS.md, diarization).
        threadpool_limits(limits=settings.model.cpu_threads)
    store = open_store(settings.storage)
    store.check()
    transcriber = Transcriber(settings.model, batch_size=settings.batch.size)
    # Loaded before joining the groups, so a worker never holds partitions it cannot serve yet.
    transcriber.load()
    log.info("model %s loaded in %.2f s", settings.model.name, transcriber.load_seconds or 0.0)
    metrics = WorkerMetrics()
    metrics.model_load.labels(settings.model.name, settings.model.device).set(transcriber.load_seconds or 0.0)
    if settings.metrics_port is not None:
        metrics.serve(settings.metrics_port, settings.metrics_host)
    kafka = settings.kafka.model_copy(
        update={"delivery_timeout_s": max(settings.kafka.delivery_timeout_s, WORKER_DELIVERY_TIMEOUT_S)}
    )
    publisher = EventPublisher(kafka, client_id=f"{settings.group_id}-producer")
    publisher.start()
    recovery = settings.recovery
    voices = LazyEncoder(
        settings.diarization.voice_model,
        threads=settings.model.cpu_threads,
        device=settings.diarization.device,
        int8=settings.diarization.precision == "int8",
    )
    llm = settings.llm
    agents = build_agents(
        settings,
        publisher=publisher,
        split=SplitResources(
            store=store,
            transcriber=transcriber,
            scratch_dir=settings.scratch_dir,
            max_audio_seconds=settings.max_audio_seconds,
            chunking=settings.chunking,
            partitions=settings.kafka.partitions,
            metrics=metrics,
            priority_chunks=settings.batch.priority_chunks,
            owners=transcribe_owners(settings),
        ),
        transcribe=TranscribeResources(
            store=store,
            transcriber=transcriber,
            scratch_dir=settings.scratch_dir,
            recovery=RecoveryOptions(
                enabled=recovery.enabled, min_stretch_s=recovery.min_stretch_s, rounds=recovery.rounds
            ),
            max_attempts=settings.max_chunk_attempts,
            batch_size=settings.batch.size,
            batch_window_s=settings.batch.window_s,
            voices=voices,
            metrics=metrics,
        ),
        stitch=StitchResources(store=store, voices=voices, scratch_dir=settings.scratch_dir),
        postprocess=PostprocessResources(
            store=store,
            llm=ChatClient(base_url=llm.base_url, model=llm.model, api_key=llm.api_key, timeout_s=llm.timeout_s)
            if llm.base_url
            else None,
            max_change=llm.max_change,
            scratch_dir=settings.scratch_dir,
        ),
        live=LiveResources(
            store=store,
            transcriber=transcriber,
            worker=settings.instance_id or settings.group_id,
            max_sessions=settings.live.max_sessions,
            policy=LivePolicy(
                interim_s=settings.live.interim_s,
                first_interim_s=settings.live.first_interim_s,
                max_turn_s=settings.live.max_turn_s,
                interim_context=settings.live.interim_context,
            ),
        )
        if settings.live.enabled
        else None,
    )
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping after the batches in hand", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    subscribed = threading.Semaphore(0)
    runners = [
        AgentRunner(
            agent,
            bootstrap=settings.kafka.bootstrap_servers,
            group_id=settings.group_id,
            instance_id=settings.instance_id,
            stopping=stopping,
            ready=subscribed.release,
        )
        for agent in agents
    ]
    for runner in runners:
        runner.start()
    for _ in runners:
        subscribed.acquire()
    log.info("worker ready: agents %s", ", ".join(a.name for a in agents))
    while not stopping.wait(0.5):
        if not all(runner.is_alive() for runner in runners):
            break
    stopping.set()
    for runner in runners:
        runner.join()
    publisher.close()
    log.info("worker stopped")
