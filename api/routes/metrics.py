"""`GET /metrics`: the API's Prometheus metrics (a key is needed, as everywhere but the probes)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.auth import authenticate
from api.deps import ServicesDep

router = APIRouter(tags=["metrics"], dependencies=[Depends(authenticate)])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(services: ServicesDep) -> Response:
    """Prometheus text exposition: HTTP traffic, jobs by state, queue wait, times realtime, audio and languages of
    completed jobs, rate-limit refusals, consumer lag per group, topic and partition."""
    body = await asyncio.to_thread(generate_latest, services.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
