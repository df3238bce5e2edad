"""Liveness and readiness."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from ingest import PublishError, StorageError

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up and serving HTTP."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(services: ServicesDep) -> JSONResponse:
    """Ready to accept jobs: the broker, the object store and the job database answer, and the materialiser holds
    its partitions. Each check is named with `ok` or why it failed; any failure is a 503."""
    checks = {
        "kafka": await _check(services.publisher.ping),
        "storage": await _check(services.store.check),
        "database": await _check(services.jobs.ping),
    }
    materialiser = services.materialiser
    checks["materialiser"] = "ok" if materialiser.running and materialiser.assigned.is_set() else "starting"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(status_code=200 if ok else 503, content={"status": "ok" if ok else "unavailable", **checks})


async def _check(probe: Callable[[], object], within: float = 5.0) -> str:
    try:
        await asyncio.wait_for(asyncio.to_thread(probe), within)
    except TimeoutError:
        return f"error: no answer within {within:.0f} s"
    except (StorageError, PublishError, sqlite3.Error) as e:
        return f"error: {e}"
    return "ok"
