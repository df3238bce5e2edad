"""Request-scoped access to the process's resources, which the lifespan builds and keeps on `app.state`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from api.accuracy import AccuracyStore
from api.jobstore import JobStore
from api.keys import KeyStore
from api.live import JobFeeds
from api.live_hub import LiveHub
from api.materialiser import Materialiser
from api.metrics import ApiMetrics
from api.ratelimit import RateLimiter
from api.settings import ApiSettings
from api.watch import JobWatcher
from api.webhook_store import WebhookStore
from ingest import EventPublisher, ObjectStore


@dataclass
class Services:
    settings: ApiSettings
    store: ObjectStore
    publisher: EventPublisher
    jobs: JobStore
    materialiser: Materialiser
    watcher: JobWatcher
    keys: KeyStore
    limiter: RateLimiter
    metrics: ApiMetrics
    accuracy: AccuracyStore
    feeds: JobFeeds
    webhooks: WebhookStore
    hub: LiveHub


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
