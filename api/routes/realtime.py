"""`/v1/realtime`: OpenAI's Realtime API in transcription mode, over a WebSocket (see `api.realtime`).

The key is taken from the headers the REST API reads, or, for browsers (which cannot set headers on a WebSocket),
from the `openai-insecure-api-key.KEY` subprotocol that OpenAI's browser clients send, or an `api_key` query
parameter. A refused handshake is an HTTP response with OpenAI's error body, as for any other route.
"""

from __future__ import annotations

from fastapi import APIRouter, WebSocket
from starlette.datastructures import Headers

from api.auth import verify_key
from api.deps import Services
from api.errors import ApiError, error_response
from api.realtime import RealtimeConnection

router = APIRouter()

_KEY_PROTOCOL = "openai-insecure-api-key."


def presented_key(headers: Headers, query: dict[str, str]) -> str | None:
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    for protocol in headers.get("sec-websocket-protocol", "").split(","):
        if protocol.strip().startswith(_KEY_PROTOCOL):
            return protocol.strip()[len(_KEY_PROTOCOL) :]
    return headers.get("api-key") or headers.get("x-api-key") or query.get("api_key")


def _subprotocol(headers: Headers) -> str | None:
    """OpenAI's browser clients offer `realtime` beside the key; the handshake must pick one they offered."""
    offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    return "realtime" if "realtime" in offered else None


@router.websocket("/v1/realtime")
async def realtime(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    settings = services.settings
    try:
        if not settings.realtime.enabled:
            raise ApiError(404, "realtime sessions are not enabled on this server", code="not_found")
        intent = websocket.query_params.get("intent")
        if intent not in (None, "transcription"):
            raise ApiError(
                400,
                f"intent {intent!r} is not supported: this server serves transcription sessions (intent=transcription)",
                param="intent",
                code="unsupported_intent",
            )
        caller = None
        if settings.auth.enabled:
            caller = await verify_key(services, presented_key(websocket.headers, dict(websocket.query_params)))
        if not services.hub.ready:
            raise ApiError(503, "live sessions are not available yet; try again shortly", type="server_error")
    except ApiError as e:
        await websocket.send_denial_response(error_response(e.status, e.detail, e.headers))
        return
    await websocket.accept(subprotocol=_subprotocol(websocket.headers))
    await RealtimeConnection(websocket, services, services.hub, caller, settings.realtime).run()
