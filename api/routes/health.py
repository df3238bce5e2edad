"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from ingest import StorageError

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up and serving HTTP."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(services: ServicesDep) -> JSONResponse:
    """Ready to accept jobs: the store answers and the materialiser is consuming."""
    checks: dict[str, str] = {}
    try:
        await asyncio.to_thread(services.store.check)
        checks["storage"] = "ok"
    except StorageError as e:
        checks["storage"] = f"error: {e}"
    materialiser = services.materialiser
    checks["materialiser"] = "ok" if materialiser.running and materialiser.assigned.is_set() else "starting"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(status_code=200 if ok else 503, content={"status": "ok" if ok else "unavailable", **checks})
