"""One realtime transcription session: OpenAI's Realtime protocol on the client's side, live events on Kafka's.

The connection never decodes audio. It checks each client event, forwards audio and controls to the session's
worker, and turns what the worker says into OpenAI's server events. Three things end a session: the client leaves
(the worker finishes the open turn and completes the session's job), the worker reports a fatal error, or the
worker goes quiet for `worker_timeout_s` while the API keeps sending it keepalives: then the client gets an
`error` event with `worker_lost` rather than silence.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import secrets
import time
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import TypeAdapter, ValidationError

from api.auth import rate_limited
from api.deps import Services
from api.live_hub import LiveHub
from api.settings import RealtimeSettings
from ingest import PublishError
from schemas import LANGUAGES, ApiKey, AudioRef, TranscriptionOptions, TranscriptionRequested
from schemas.live import (
    LIVE_RATES,
    LiveAccepted,
    LiveAlive,
    LiveAudio,
    LiveClear,
    LiveCleared,
    LiveClose,
    LiveCommit,
    LiveCommitted,
    LiveCompleted,
    LiveConfigured,
    LiveDelta,
    LiveEnded,
    LiveEvent,
    LiveFailed,
    LiveKeepalive,
    LiveOpened,
    LiveOptions,
    LiveOutput,
    LiveSpeechStarted,
    LiveSpeechStopped,
    TurnDetection,
    live_audio_key,
)
from schemas.realtime import (
    AudioAppend,
    AudioClear,
    AudioCommit,
    BetaSessionEvent,
    BetaSessionObject,
    Cleared,
    ClientEvent,
    Committed,
    DurationUsage,
    ErrorEvent,
    RealtimeError,
    ServerEvent,
    SessionConfig,
    SessionEvent,
    SessionObject,
    SessionUpdate,
    SpeechStarted,
    SpeechStopped,
    TranscriptionCompleted,
    TranscriptionDelta,
    TranscriptionOut,
    TurnDetectionOut,
)

log = logging.getLogger(__name__)

_CLIENT: TypeAdapter[ClientEvent] = TypeAdapter(ClientEvent)
MAX_APPEND_BYTES = 15 * 1024 * 1024  # OpenAI's limit on one append event
OPEN_ATTEMPTS = 3  # a busy worker refuses; a new session id lands on another partition, often another worker


class SessionRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class InvalidConfig(Exception):
    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def new_session_id() -> str:
    return "sess_" + secrets.token_hex(12)


def merge_config(options: LiveOptions, model: str, config: SessionConfig) -> tuple[LiveOptions, str]:
    """The session's options after a `session.update` of either shape; `InvalidConfig` names the bad field."""
    update: dict[str, Any] = {}
    audio_input = config.audio.input if config.audio and config.audio.input else None
    if audio_input is not None and audio_input.format is not None:
        if audio_input.format.type != "audio/pcm":
            raise InvalidConfig(
                f"input format {audio_input.format.type!r} is not supported; use audio/pcm (16-bit little-endian mono)",
                "session.audio.input.format.type",
            )
        if audio_input.format.rate not in LIVE_RATES:
            raise InvalidConfig(
                f"rate {audio_input.format.rate} is not supported; use 24000 or 16000",
                "session.audio.input.format.rate",
            )
        update["rate"] = audio_input.format.rate
    if config.input_audio_format is not None:
        if config.input_audio_format != "pcm16":
            raise InvalidConfig(
                f"input_audio_format {config.input_audio_format!r} is not supported; use pcm16",
                "session.input_audio_format",
            )
        update["rate"] = 24_000
    transcription = (audio_input.transcription if audio_input else None) or config.input_audio_transcription
    if transcription is not None:
        if transcription.language is not None:
            language = transcription.language.strip().lower() or None
            if language is not None and language not in LANGUAGES:
                raise InvalidConfig(f"language {language!r} is not an ISO-639-1 code the models know", "language")
            update["language"] = language
        if transcription.prompt is not None:
            update["prompt"] = transcription.prompt or None
        model = transcription.model or model
    detection_set, detection = False, None
    if audio_input is not None and "turn_detection" in audio_input.model_fields_set:
        detection_set, detection = True, audio_input.turn_detection
    elif "turn_detection" in config.model_fields_set:
        detection_set, detection = True, config.turn_detection
    if detection_set:
        if detection is None:
            update["turn_detection"] = None
        elif detection.type != "server_vad":
            raise InvalidConfig(f"turn_detection type {detection.type!r} is not supported; use server_vad", "type")
        else:
            base = options.turn_detection or TurnDetection()
            given = detection.model_dump(exclude={"type"}, exclude_none=True)
            update["turn_detection"] = base.model_copy(update=given)
    try:
        merged = LiveOptions.model_validate({**options.model_dump(), **update})
    except ValidationError as e:
        first = e.errors()[0]
        raise InvalidConfig(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}", "session") from e
    return merged, model


def session_event(sid: str, options: LiveOptions, model: str, expires_at: int, *, kind: str, beta: bool) -> ServerEvent:
    detection = options.turn_detection
    if beta:
        return BetaSessionEvent(
            type=f"transcription_session.{kind}",
            session=BetaSessionObject(
                id=sid,
                expires_at=expires_at,
                input_audio_format="pcm16",
                input_audio_transcription=TranscriptionOut(
                    model=model, language=options.language, prompt=options.prompt
                ),
                turn_detection=TurnDetectionOut(**detection.model_dump()) if detection else None,
            ),
        )
    audio = {
        "input": {
            "format": {"type": "audio/pcm", "rate": options.rate},
            "transcription": {"model": model, "language": options.language, "prompt": options.prompt},
            "turn_detection": {"type": "server_vad", **detection.model_dump()} if detection else None,
            "noise_reduction": None,
        }
    }
    return SessionEvent(
        type=f"session.{kind}",
        session=SessionObject(id=sid, expires_at=expires_at, audio=audio),
    )


def client_error(message: str, *, code: str, param: str | None = None, event_id: str | None = None) -> ErrorEvent:
    return ErrorEvent(
        error=RealtimeError(type="invalid_request_error", code=code, message=message, param=param, event_id=event_id)
    )


def translate(event: LiveOutput) -> ServerEvent | None:
    """The OpenAI server event for what the worker said (None for what only the API needs to know)."""
    if isinstance(event, LiveSpeechStarted):
        return SpeechStarted(audio_start_ms=event.audio_start_ms, item_id=event.item_id)
    if isinstance(event, LiveSpeechStopped):
        return SpeechStopped(audio_end_ms=event.audio_end_ms, item_id=event.item_id)
    if isinstance(event, LiveCommitted):
        return Committed(item_id=event.item_id, previous_item_id=event.previous_item_id)
    if isinstance(event, LiveCleared):
        return Cleared()
    if isinstance(event, LiveDelta):
        return TranscriptionDelta(item_id=event.item_id, delta=event.delta)
    if isinstance(event, LiveCompleted):
        return TranscriptionCompleted(
            item_id=event.item_id,
            transcript=event.transcript,
            usage=DurationUsage(seconds=round(max(0.0, event.end - event.start), 3)),
            language=event.language,
            start=event.start,
            end=event.end,
        )
    if isinstance(event, LiveFailed):
        kind = "invalid_request_error" if event.code.startswith("input_audio_buffer") else "server_error"
        return ErrorEvent(
            error=RealtimeError(type=kind, code=event.code, message=event.message, event_id=event.client_event_id)
        )
    return None


class RealtimeConnection:
    def __init__(
        self, ws: WebSocket, services: Services, hub: LiveHub, caller: ApiKey | None, settings: RealtimeSettings
    ) -> None:
        self.ws = ws
        self.services = services
        self.hub = hub
        self.caller = caller
        self.settings = settings
        self.options = LiveOptions()
        self.model = services.settings.served_models[0]
        self.sid = ""
        self.seq = 0
        self.audio_seconds = 0.0
        self.charged_seconds = 0.0
        self.last_heard = 0.0
        self.expires_at = 0.0
        self._topic = services.settings.kafka.topics.live_input
        self._send_lock = asyncio.Lock()

    async def send(self, event: ServerEvent) -> None:
        async with self._send_lock:
            await self.ws.send_text(event.model_dump_json())

    async def publish(self, event: LiveEvent) -> None:
        await self.services.publisher.publish(self._topic, self.sid, event)

    async def run(self) -> None:
        try:
            queue = await self._open()
        except SessionRefused as e:
            await self.send(ErrorEvent(error=RealtimeError(type="server_error", code=e.code, message=str(e))))
            await self.ws.close(code=1013 if e.code == "server_busy" else 1011)
            return
        try:
            self.expires_at = time.time() + self.settings.max_session_s
            await self.send(
                session_event(self.sid, self.options, self.model, int(self.expires_at), kind="created", beta=False)
            )
            self.last_heard = asyncio.get_running_loop().time()
            tasks = [
                asyncio.create_task(self._read(), name="realtime-read"),
                asyncio.create_task(self._write(queue), name="realtime-write"),
                asyncio.create_task(self._watch(), name="realtime-watch"),
            ]
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            for task in done:
                if task.exception() is not None and not isinstance(task.exception(), WebSocketDisconnect):
                    log.warning("realtime session %s: %r", self.sid, task.exception())
        finally:
            self.hub.unregister(self.sid)
            with contextlib.suppress(PublishError):
                await self.publish(LiveClose(job_id=self.sid))
            with contextlib.suppress(Exception):
                await self.ws.close()
            log.info("realtime session %s closed after %.1f s of audio", self.sid, self.audio_seconds)

    async def _open(self) -> asyncio.Queue[LiveOutput]:
        """Opens the session on a worker; a busy worker's refusal is retried under a new id (another partition)."""
        refusal = SessionRefused("no_worker", "no worker took the session; the service has no live capacity now")
        for _ in range(OPEN_ATTEMPTS):
            self.sid = new_session_id()
            queue = self.hub.register(self.sid)
            opened = LiveOpened(
                job_id=self.sid,
                options=self.options,
                owner=self.caller.id if self.caller else None,
                max_seconds=self.settings.max_session_s,
            )
            try:
                await self.publish(opened)
                answer = await asyncio.wait_for(queue.get(), self.settings.accept_timeout_s)
            except (PublishError, TimeoutError):
                self.hub.unregister(self.sid)
                with contextlib.suppress(PublishError):
                    # A worker that takes the session after all must not keep a place for nobody.
                    await self.publish(LiveClose(job_id=self.sid, reason="nobody waited for the session"))
                raise refusal from None
            if isinstance(answer, LiveAccepted):
                await asyncio.to_thread(self._record)
                return queue
            self.hub.unregister(self.sid)
            if isinstance(answer, LiveFailed):
                refusal = SessionRefused(answer.code, answer.message)
        raise refusal

    def _record(self) -> None:
        self.services.jobs.record_request(
            TranscriptionRequested(
                job_id=self.sid,
                audio=AudioRef(key=live_audio_key(self.sid), filename="realtime session", content_type="audio/wav"),
                options=TranscriptionOptions(language=self.options.language, model=self.model),
                owner=self.caller.id if self.caller else None,
            )
        )

    async def _read(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                await self.send(client_error("send JSON events as text frames", code="invalid_event"))
                continue
            await self._handle(text)

    async def _handle(self, text: str) -> None:
        try:
            raw = json.loads(text)
        except ValueError:
            await self.send(client_error("the event is not valid JSON", code="invalid_json"))
            return
        event_id = raw.get("event_id") if isinstance(raw, dict) else None
        try:
            event = _CLIENT.validate_python(raw)
        except ValidationError as e:
            kind = raw.get("type") if isinstance(raw, dict) else None
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"][1:]) or None
            if first["type"] == "union_tag_invalid" or first["type"] == "union_tag_not_found":
                message, code = f"unsupported event type {kind!r}", "invalid_event_type"
            else:
                message, code = f"{where or 'event'}: {first['msg']}", "invalid_event"
            await self.send(client_error(message, code=code, param=where, event_id=event_id))
            return
        if isinstance(event, SessionUpdate):
            await self._update(event)
        elif isinstance(event, AudioAppend):
            await self._append(event)
        elif isinstance(event, AudioCommit):
            await self.publish(LiveCommit(job_id=self.sid, client_event_id=event.event_id))
        elif isinstance(event, AudioClear):
            await self.publish(LiveClear(job_id=self.sid))

    async def _update(self, event: SessionUpdate) -> None:
        try:
            self.options, self.model = merge_config(self.options, self.model, event.session)
        except InvalidConfig as e:
            await self.send(client_error(str(e), code="invalid_value", param=e.param, event_id=event.event_id))
            return
        await self.publish(LiveConfigured(job_id=self.sid, options=self.options))
        beta = event.type == "transcription_session.update"
        await self.send(
            session_event(self.sid, self.options, self.model, int(self.expires_at), kind="updated", beta=beta)
        )

    async def _append(self, event: AudioAppend) -> None:
        try:
            size = len(base64.b64decode(event.audio, validate=True))
        except (binascii.Error, ValueError):
            await self.send(
                client_error("audio is not base64", code="invalid_value", param="audio", event_id=event.event_id)
            )
            return
        if size > MAX_APPEND_BYTES or size % 2:
            message = "audio must be whole 16-bit samples, at most 15 MiB per event"
            await self.send(client_error(message, code="invalid_value", param="audio", event_id=event.event_id))
            return
        self.audio_seconds += size / 2 / self.options.rate
        if self.caller is not None and self.audio_seconds - self.charged_seconds >= 60:
            # Live audio counts against the daily audio quota a minute at a time.
            exceeded = await asyncio.to_thread(self.services.limiter.audio, self.caller, 60.0)
            self.charged_seconds += 60
            if exceeded is not None:
                detail = rate_limited(self.services, exceeded).detail
                await self.send(
                    ErrorEvent(error=RealtimeError(type="tokens", code=detail.code, message=detail.message))
                )
                raise WebSocketDisconnect(code=1008)
        await self.publish(LiveAudio(job_id=self.sid, seq=self.seq, pcm16=event.audio))
        self.seq += 1

    async def _write(self, queue: asyncio.Queue[LiveOutput]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            event = await queue.get()
            self.last_heard = loop.time()
            if isinstance(event, LiveEnded):
                return
            if isinstance(event, LiveAccepted | LiveAlive):
                continue
            out = translate(event)
            if out is not None:
                await self.send(out)
            if isinstance(event, LiveFailed) and event.fatal:
                return

    async def _watch(self) -> None:
        """Keeps the worker's place for a client that is quiet, notices a worker that is, and ends a session at its
        maximum length, whether the client is sending or quiet."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(self.settings.keepalive_s, max(0.0, self.expires_at - time.time())))
            if time.time() >= self.expires_at:
                message = f"the session reached its maximum length of {self.settings.max_session_s:.0f} s"
                error = RealtimeError(type="invalid_request_error", code="session_expired", message=message)
                await self.send(ErrorEvent(error=error))
                return
            await self.publish(LiveKeepalive(job_id=self.sid))
            if loop.time() - self.last_heard > self.settings.worker_timeout_s:
                message = "the worker holding this session stopped answering; reconnect to start a new session"
                await self.send(
                    ErrorEvent(error=RealtimeError(type="server_error", code="worker_lost", message=message))
                )
                return
