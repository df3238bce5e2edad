"""Running one worker process: build resources, load the model, hand control to Faust."""

from __future__ import annotations

import logging

import faust

from ingest.storage import open_store
from processors.app import create_app
from processors.engine import Transcriber
from processors.recovery import RecoveryOptions
from processors.settings import WorkerSettings
from processors.split import SplitResources
from processors.stitch import StitchResources
from processors.transcribe import TranscribeResources

log = logging.getLogger(__name__)


def run_worker(settings: WorkerSettings) -> None:
    """Blocks until SIGINT/SIGTERM; Faust then finishes the events in hand and commits before exiting."""
    store = open_store(settings.storage)
    store.check()
    transcriber = Transcriber(settings.model, batch_size=settings.batch.size)
    # Loaded before joining the group, so a worker never holds partitions it cannot serve yet.
    transcriber.load()
    log.info("model %s loaded in %.2f s", settings.model.name, transcriber.load_seconds or 0.0)
    recovery = settings.recovery
    app = create_app(
        settings,
        split=SplitResources(
            store=store,
            transcriber=transcriber,
            scratch_dir=settings.scratch_dir,
            max_audio_seconds=settings.max_audio_seconds,
            chunking=settings.chunking,
            partitions=settings.kafka.partitions,
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
        ),
        stitch=StitchResources(store=store),
    )
    worker = faust.Worker(app, loglevel=settings.log_level.upper(), quiet=True)
    worker.execute_from_commandline()
