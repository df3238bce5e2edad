"""Who is calling: the API key of a request, checked on every route but `/health` and `/ready`, and its request
rate counted.

The key is read from `Authorization: Bearer …` (what the `openai` SDK sends), or from an `api-key` or
`x-api-key` header for clients that use those. Missing, malformed, unknown and revoked keys all get 401 with
OpenAI's error body; a key over its request rate gets 429 with `Retry-After`.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.deps import Services, ServicesDep
from api.errors import ApiError
from api.ratelimit import Exceeded
from schemas import ApiKey

_bearer = HTTPBearer(auto_error=False, description="An API key made with `scribeflow keys create NAME`.")
_api_key = APIKeyHeader(name="api-key", auto_error=False, description="The same key, for clients that send it so.")
_x_api_key = APIKeyHeader(name="x-api-key", auto_error=False, description="The same key, as `x-api-key`.")

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="scribeflow"'}


def rate_limited(services: Services, exceeded: Exceeded) -> ApiError:
    services.metrics.rate_limited.labels(exceeded.limit).inc()
    unit = "requests per minute" if exceeded.limit == "requests_per_minute" else "minutes of audio per day"
    return ApiError(
        429,
        f"rate limit reached: this key may use {exceeded.allowed:g} {unit}; retry after {exceeded.retry_after_s} s",
        type="requests" if exceeded.limit == "requests_per_minute" else "tokens",
        param=exceeded.limit,
        code="rate_limit_exceeded",
        headers={"Retry-After": str(exceeded.retry_after_s)},
    )


async def authenticate(
    services: ServicesDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
    api_key: Annotated[str | None, Security(_api_key)] = None,
    x_api_key: Annotated[str | None, Security(_x_api_key)] = None,
) -> ApiKey | None:
    """The caller's key; None when authentication is off."""
    if not services.settings.auth.enabled:
        return None
    return await verify_key(services, (bearer.credentials if bearer else None) or api_key or x_api_key)


async def verify_key(services: Services, presented: str | None) -> ApiKey:
    """The key presented, checked and its request counted; a 401 or 429 `ApiError` otherwise."""
    if not presented:
        raise ApiError(
            401,
            "You didn't provide an API key. Send it in an Authorization header using Bearer auth "
            "(Authorization: Bearer YOUR_KEY); `scribeflow keys create NAME` makes one.",
            code="missing_api_key",
            headers=_CHALLENGE,
        )
    key = await asyncio.to_thread(services.keys.verify, presented.strip())
    if key is None:
        shown = presented[:8] + "…" if len(presented) > 8 else "…"
        raise ApiError(
            401,
            f"Incorrect API key provided: {shown}. The key is unknown or was revoked.",
            code="invalid_api_key",
            headers=_CHALLENGE,
        )
    exceeded = await asyncio.to_thread(services.limiter.request, key)
    if exceeded is not None:
        raise rate_limited(services, exceeded)
    return key


Caller = Annotated[ApiKey | None, Depends(authenticate)]
"""The calling key (None when authentication is off)."""


def can_read(caller: ApiKey | None, owner: str | None) -> bool:
    """Jobs are private to the key that created them; admin keys, and everyone when auth is off, see all."""
    return caller is None or caller.admin or caller.id == owner


def owner_filter(caller: ApiKey | None) -> str | None:
    """The owner to restrict a listing to, or None for every job."""
    return None if caller is None or caller.admin else caller.id
