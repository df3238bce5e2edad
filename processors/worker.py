"""Running one worker process: build resources, load the model, hand control to Faust."""

from __future__ import annotations

import logging

import faust

from ingest.storage import open_store
from processors.app import create_app
from processors.engine import Transcriber
from processors.pipeline import Resources
from processors.settings import WorkerSettings

log = logging.getLogger(__name__)


def run_worker(settings: WorkerSettings) -> None:
    """Blocks until SIGINT/SIGTERM; Faust then finishes the event in hand and commits before exiting."""
    store = open_store(settings.storage)
    store.check()
    transcriber = Transcriber(settings.model)
    # Loaded before joining the group, so a worker never holds partitions it cannot serve yet.
    transcriber.load()
    resources = Resources(
        store=store,
        transcriber=transcriber,
        scratch_dir=settings.scratch_dir,
        max_audio_seconds=settings.max_audio_seconds,
        progress_interval_s=settings.progress_interval_s,
    )
    app = create_app(settings, resources=resources)
    worker = faust.Worker(app, loglevel=settings.log_level.upper(), quiet=True)
    worker.execute_from_commandline()
