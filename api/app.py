"""The API application. `create_app()` is a factory (`uvicorn --factory api.app:create_app`); resources are
built in the lifespan, never at import."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from api import errors, openapi
from api.accuracy import AccuracyStore
from api.database import open_database
from api.deps import Services
from api.jobstore import JobStore, Transition
from api.keys import KeyStore
from api.limits import BodySizeLimit
from api.live import JobFeeds
from api.live_hub import LiveHub
from api.materialiser import Materialiser
from api.metrics import ApiMetrics, HttpMetrics
from api.queue_depth import QueueDepth, consumer_groups
from api.ratelimit import RateLimiter
from api.retention import run_retention
from api.routes import accuracy as accuracy_route
from api.routes import audio, health, jobs, models, realtime
from api.routes import metrics as metrics_route
from api.routes import speakers as speakers_route
from api.settings import ApiSettings
from api.watch import JobWatcher
from api.webhook_store import WebhookStore
from api.webhooks import WebhookSender
from ingest import EventPublisher, open_store

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"


def on_transition(moved: Transition, metrics: ApiMetrics, webhooks: WebhookStore, settings: ApiSettings) -> None:
    """A job changed state (seen once across replicas): count it, and schedule its webhook when it ended."""
    metrics.transition(moved)
    url = moved.webhook_url or settings.webhooks.default_url
    if moved.status.terminal and url:
        webhooks.schedule(job_id=moved.job_id, status=moved.status.value, url=url)


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_store(settings.storage)
        await asyncio.to_thread(store.check)
        engine = await asyncio.to_thread(open_database, settings.database_url, settings.database_path)
        job_store = JobStore(engine)
        keys = KeyStore(engine)
        accuracy = AccuracyStore(engine)
        limiter = RateLimiter(settings.limits, engine)
        webhooks = WebhookStore(engine)
        publisher = EventPublisher(settings.kafka, client_id="scribeflow-api")
        publisher.start()
        watcher = JobWatcher()
        watcher.bind(asyncio.get_running_loop())
        materialiser = Materialiser(
            settings=settings.kafka,
            group_id=settings.materialiser_group_id,
            store=job_store,
            on_update=watcher.notify,
            on_transition=lambda moved: on_transition(moved, metrics, webhooks, settings),
            dead_letter=lambda letter: publisher.publish_blocking(settings.kafka.topics.dlq, letter.job_id, letter),
        )
        groups = consumer_groups(settings.kafka, settings.worker_group_id, settings.materialiser_group_id)
        collectors = [metrics.jobs_collector(job_store), QueueDepth(settings.kafka, groups)]
        for collector in collectors:
            metrics.registry.register(collector)
        materialiser.start()
        hub = LiveHub(settings.kafka)
        if settings.realtime.enabled:
            hub.start(asyncio.get_running_loop())
        app.state.services = Services(
            settings=settings,
            store=store,
            publisher=publisher,
            jobs=job_store,
            materialiser=materialiser,
            watcher=watcher,
            keys=keys,
            limiter=limiter,
            metrics=metrics,
            accuracy=accuracy,
            feeds=JobFeeds(job_store, watcher),
            webhooks=webhooks,
            hub=hub,
        )
        sender = WebhookSender(
            settings.webhooks,
            webhooks,
            job_store,
            dead_letter=lambda letter: publisher.publish_blocking(settings.kafka.topics.dlq, letter.job_id, letter),
        )
        background = [asyncio.create_task(sender.run(), name="webhooks")]
        retention = None
        if settings.retention_days is not None:
            retention = asyncio.create_task(
                run_retention(job_store, store, settings.retention_days, settings.retention_interval_s)
            )
        try:
            yield
        finally:
            if retention is not None:
                retention.cancel()
            for task in background:
                task.cancel()
            await asyncio.to_thread(publisher.close)
            await asyncio.to_thread(materialiser.stop)
            await asyncio.to_thread(hub.stop)
            engine.dispose()
            for collector in collectors:
                metrics.registry.unregister(collector)

    app = FastAPI(
        title="scribeflow",
        summary="Self-hosted speech transcription over Kafka",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(HttpMetrics, metrics=metrics)
    errors.install(app)
    openapi.install(app)
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.include_router(speakers_route.router)
    app.include_router(audio.router)
    app.include_router(models.router)
    app.include_router(accuracy_route.router)
    app.include_router(metrics_route.router)
    app.include_router(realtime.router)
    # The web page: plain HTML and JavaScript, no build step; it holds no data (it asks for a key and calls the API).
    app.mount("/ui", StaticFiles(directory=STATIC, html=True), name="ui")

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/ui/")

    return app
