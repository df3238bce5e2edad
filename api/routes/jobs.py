"""The job API: submit audio, follow a job, fetch its transcript in any format."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import os
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, Query, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from api.auth import Caller, authenticate, can_read, owner_filter
from api.deps import Services, ServicesDep
from api.errors import ApiError, error_responses
from api.formats import MEDIA_TYPES, Granularity, ResponseFormat, render
from api.jobstore import transcript_of
from api.live import Change
from api.routes.models import resolve
from api.speakers import diarization, references, with_references
from api.submission import accept_reference, accept_upload, build_options, checked_webhook
from ingest import ObjectNotFound, StorageError, audio_key, chunk_key, draft_key, new_job_id, speaker_key
from schemas import (
    Job,
    JobCreated,
    JobDeleted,
    JobList,
    JobStatus,
    Task,
    TranscriptionJson,
    TranscriptionVerboseJson,
    WebhookDeliveryList,
)

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[Depends(authenticate)])

_ERRORS = error_responses(400, 401, 404, 409, 413, 429, 503)


@router.post("", status_code=202, response_model=JobCreated, responses=_ERRORS)
async def create_job(
    services: ServicesDep,
    caller: Caller,
    file: Annotated[UploadFile | None, File(description="The audio: any format FFmpeg decodes.")] = None,
    audio_key: Annotated[str | None, Form(description="Instead of `file`: a key already in the audio store.")] = None,
    language: Annotated[str | None, Form()] = None,
    task: Annotated[Task, Form()] = Task.TRANSCRIBE,
    prompt: Annotated[str | None, Form()] = None,
    word_timestamps: Annotated[bool, Form()] = True,
    temperature: Annotated[float, Form()] = 0.0,
    model: Annotated[str | None, Form(description="`whisper-1` or a served model; default: the first served.")] = None,
    webhook_url: Annotated[
        str | None, Form(description="Called with a signed event when the job completes or fails.", max_length=2048)
    ] = None,
    diarize: Annotated[bool, Form(description="Label who speaks when: `speaker` on segments and words.")] = False,
    min_speakers: Annotated[int | None, Form(description="With diarize: at least this many speakers.")] = None,
    max_speakers: Annotated[int | None, Form(description="With diarize: at most this many speakers.")] = None,
    known_speaker_names: Annotated[
        list[str] | None,
        Form(alias="known_speaker_names[]", description="Names for known_speaker_references[] (diarizes)."),
    ] = None,
    known_speaker_references: Annotated[
        list[str] | None,
        Form(alias="known_speaker_references[]", description="Data URLs of 2 to 10 s of each known speaker alone."),
    ] = None,
    postprocess: Annotated[
        list[str] | None,
        Form(
            description="Language-model steps: `punctuation`, `paragraphs`, `summary` (repeat the field, or "
            "separate them with commas); off when the workers have no model configured."
        ),
    ] = None,
) -> JSONResponse:
    """Accept a job. The 202 is sent only after the broker confirmed the request event."""
    known = references(known_speaker_names, known_speaker_references)
    options = build_options(
        language=language,
        task=task,
        prompt=prompt,
        word_timestamps=word_timestamps,
        temperature=temperature,
        model=resolve(model, services.settings.served_models) if model else None,
        diarization=diarization(diarize, min_speakers, max_speakers, known),
        postprocess=[step.strip() for field in postprocess or [] for step in field.split(",") if step.strip()] or None,
    )
    if (file is None) == (audio_key is None):
        raise ApiError(400, "send exactly one of 'file' (an upload) or 'audio_key'", param="file", code="missing_file")
    hook = await checked_webhook(services, webhook_url)
    job_id = new_job_id()
    options = await with_references(services, job_id, options, known)
    if file is not None:
        event = await accept_upload(services, file, options, caller, hook, job_id=job_id)
    else:
        assert audio_key is not None
        event = await accept_reference(services, audio_key, options, caller, hook, job_id=job_id)
    body = JobCreated(id=event.job_id, status=JobStatus.QUEUED, created_at=event.occurred_at)
    return JSONResponse(
        status_code=202, content=body.model_dump(mode="json"), headers={"Location": f"/v1/jobs/{event.job_id}"}
    )


@router.get("", response_model=JobList, responses=_ERRORS)
async def list_jobs(
    services: ServicesDep,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(description="Id of the last job of the previous page.")] = None,
    status: Annotated[list[JobStatus] | None, Query(description="Only jobs in these states (repeatable).")] = None,
    created_after: Annotated[
        str | None, Query(description="Only jobs created at or after this time (ISO 8601).", json_schema_extra=_TIME)
    ] = None,
    created_before: Annotated[
        str | None, Query(description="Only jobs created before this time (ISO 8601).", json_schema_extra=_TIME)
    ] = None,
) -> JobList:
    """The caller's jobs (an admin key's: every job), newest first, as summaries: `GET /v1/jobs/{id}` has the
    transcript."""
    try:
        jobs, has_more = await asyncio.to_thread(
            services.jobs.page,
            limit=limit,
            after=after or None,
            owner=owner_filter(caller),
            statuses=status or (),
            created_after=_moment(created_after, "created_after"),
            created_before=_moment(created_before, "created_before"),
            with_result=False,
        )
    except KeyError as e:
        raise unknown_anchor(after) from e
    return job_list(jobs, has_more)


_JOB_OR_TRANSCRIPT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The job; with `format`, its transcript in that format.",
        "content": {
            "text/plain": {"schema": {"type": "string"}},
            "application/x-subrip": {"schema": {"type": "string"}},
            "text/vtt": {"schema": {"type": "string"}},
        },
    },
    **_ERRORS,
}


_TIME = {"format": "date-time"}

# One server-sent event, as OpenAPI 3.2 describes them: a `status` event's data is the job as JSON, a `segment`
# event's one segment.
_SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"type": "string", "enum": ["status", "segment"]},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {
                "anyOf": [{"$ref": "#/components/schemas/Job"}, {"$ref": "#/components/schemas/Segment"}]
            },
        },
    },
}


def _moment(value: str | None, param: str) -> datetime | None:
    """An ISO 8601 time (a number is not one); without a zone it is UTC, as every time this API writes."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as e:
        raise ApiError(400, f"{param} must be an ISO 8601 time, such as 2026-11-26T12:00:00Z", param=param) from e
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def job_list(jobs: list[Job], has_more: bool) -> JobList:
    return JobList(
        data=jobs,
        has_more=has_more,
        first_id=jobs[0].id if jobs else None,
        last_id=jobs[-1].id if jobs else None,
    )


def unknown_anchor(after: str | None) -> ApiError:
    """`after` names no job the caller can see: nothing to page after."""
    return ApiError(404, f"no job {after!r} to page after", type="not_found_error", param="after", code="job_not_found")


@router.get(
    "/{job_id}",
    response_model=Job | TranscriptionJson | TranscriptionVerboseJson,
    responses=_JOB_OR_TRANSCRIPT,
)
async def get_job(
    job_id: str,
    services: ServicesDep,
    caller: Caller,
    format: Annotated[ResponseFormat | None, Query(description="Render the transcript instead of the job.")] = None,
) -> Response:
    """The job; with `format`, its transcript in that format (409 until it is completed)."""
    job = await asyncio.to_thread(services.jobs.get, job_id)
    if job is None or not can_read(caller, job.owner):
        raise job_not_found(job_id)  # another key's job is as absent as one that never existed
    if format is None:
        return JSONResponse(job.model_dump(mode="json"))
    transcript = transcript_of(job)
    if transcript is None:
        raise ApiError(
            409,
            f"job {job_id} is {job.status.value}; its transcript exists once it is completed",
            param="format",
            code="job_not_completed",
        )
    if format is ResponseFormat.DIARIZED_JSON and (job.options is None or job.options.diarization is None):
        # The request is well formed; the job is what does not fit it, as with a transcript not ready yet.
        raise ApiError(
            409, f"job {job_id} was not diarized (create it with diarize=true)", param="format", code="not_diarized"
        )
    words = job.options is None or job.options.word_timestamps
    granularities = frozenset({Granularity.SEGMENT, Granularity.WORD} if words else {Granularity.SEGMENT})
    return Response(render(transcript, format, granularities=granularities), media_type=MEDIA_TYPES[format])


@router.get(
    "/{job_id}/audio",
    response_class=FileResponse,
    responses={
        200: {
            "description": "The job's audio as it was uploaded (or, for a realtime session, as 16 kHz WAV); "
            "byte ranges are served, so players can seek.",
            "content": {"audio/*": {}, "application/octet-stream": {}},
        },
        **error_responses(401, 404, 410, 503),
    },
)
async def job_audio(job_id: str, services: ServicesDep, caller: Caller) -> FileResponse:
    """The audio the job transcribed, for players and the transcript viewer."""
    job = await asyncio.to_thread(services.jobs.get, job_id, with_result=False)
    if job is None or not can_read(caller, job.owner):
        raise job_not_found(job_id)
    key, filename, deleted = await asyncio.to_thread(services.jobs.audio_of, job_id)
    if deleted or key is None:
        raise ApiError(
            410, f"the audio of job {job_id} is no longer kept", type="not_found_error", code="audio_deleted"
        )
    try:
        spool = await asyncio.to_thread(_spool, services, key)
    except ObjectNotFound as e:
        raise ApiError(
            404, f"the audio of job {job_id} is not stored (yet)", type="not_found_error", code="audio_not_found"
        ) from e
    except StorageError as e:
        raise ApiError(503, "the audio store is unavailable; try again later", type="server_error") from e
    name = filename if filename and "." in filename else Path(key).name
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(
        spool,
        media_type=media_type,
        filename=name,
        content_disposition_type="inline",
        background=BackgroundTask(spool.unlink, missing_ok=True),
    )


def _spool(services: Services, key: str) -> Path:
    """A temporary copy of the object (the store may be S3); removed after the response, or here on failure."""
    fd, name = tempfile.mkstemp(prefix="scribeflow-audio-")
    os.close(fd)
    spool = Path(name)
    try:
        services.store.download(key, spool)
    except BaseException:
        spool.unlink(missing_ok=True)
        raise
    return spool


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-sent events: `status` (the job, without its transcript) and `segment` (one final "
            "segment), from the beginning or after `Last-Event-ID`; the stream ends after the final status.",
            "content": {"text/event-stream": {"schema": _SSE_EVENT}},
        },
        **_ERRORS,
    },
)
async def job_events(
    job_id: str,
    services: ServicesDep,
    caller: Caller,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", description="The `id` of the last event received.")
    ] = None,
) -> StreamingResponse:
    """The job's status changes and final segments as they are materialised. Each event's `id` is the number of
    segments sent so far; a client that reconnects with `Last-Event-ID` gets the current status and the segments
    after that one."""
    job = await asyncio.to_thread(services.jobs.get, job_id, with_result=False)
    if job is None or not can_read(caller, job.owner):
        raise job_not_found(job_id)
    after = int(last_event_id) if last_event_id and last_event_id.strip().isdigit() else 0
    return StreamingResponse(
        _sse(services.feeds.follow(job_id, after)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _sse(changes: AsyncIterator[Change], keepalive_s: float = 15.0) -> AsyncIterator[bytes]:
    pending = asyncio.ensure_future(anext(changes))
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=keepalive_s)
            if not done:
                yield b": keep-alive\n\n"  # proxies close idle connections; a comment keeps this one open
                continue
            try:
                change = pending.result()
            except StopAsyncIteration:
                return
            cursor = change.first
            for segment in change.segments:
                cursor += 1
                yield f"id: {cursor}\nevent: segment\ndata: {segment.model_dump_json()}\n\n".encode()
            yield f"id: {cursor}\nevent: status\ndata: {change.job.model_dump_json()}\n\n".encode()
            pending = asyncio.ensure_future(anext(changes))
    finally:
        pending.cancel()
        await changes.aclose()  # type: ignore[attr-defined]


@router.delete("/{job_id}", response_model=JobDeleted, responses=_ERRORS)
async def delete_job(job_id: str, services: ServicesDep, caller: Caller) -> JobDeleted:
    """Removes the job's audio, its rows and its transcript; a job still running is cancelled (its remaining chunks
    find no audio and are skipped). Events already on Kafka stay there: they are history."""
    job = await asyncio.to_thread(services.jobs.get, job_id, with_result=False)
    if job is None or not can_read(caller, job.owner):
        raise job_not_found(job_id)
    audio, chunks = await asyncio.to_thread(services.jobs.delete, job_id)
    known = job.options.diarization.known_speakers if job.options and job.options.diarization else []
    drafted = bool(job.options and job.options.postprocess)
    await asyncio.to_thread(_delete_audio, services, job_id, audio, chunks, len(known), drafted=drafted)
    services.watcher.notify(job_id)  # live listeners of the job are told it is gone
    return JobDeleted(id=job_id)


def _delete_audio(
    services: Services, job_id: str, audio: str | None, chunks: int, speakers: int, *, drafted: bool
) -> None:
    keys = [chunk_key(job_id, n) for n in range(chunks)] + [speaker_key(job_id, n) for n in range(speakers)]
    if drafted:
        keys.append(draft_key(job_id))  # a transcript still waiting for its language-model steps
    if audio == audio_key(job_id):
        keys.append(audio)  # audio the API stored; an object the job only referenced stays the caller's
    for key in keys:
        try:
            services.store.delete(key)
        except StorageError as e:  # the rows are gone already; an orphaned object costs disk, not correctness
            log.warning("could not delete %s of deleted job %s: %s", key, job_id, e)


def job_not_found(job_id: str) -> ApiError:
    return ApiError(404, f"no job with id {job_id!r}", type="not_found_error", param="job_id", code="job_not_found")


@router.get("/{job_id}/webhooks", response_model=WebhookDeliveryList, responses=_ERRORS)
async def job_webhooks(job_id: str, services: ServicesDep, caller: Caller) -> WebhookDeliveryList:
    """The job's webhook deliveries, each with every attempt: time, status code, latency, error."""
    job = await asyncio.to_thread(services.jobs.get, job_id, with_result=False)
    if job is None or not can_read(caller, job.owner):
        raise job_not_found(job_id)
    return WebhookDeliveryList(data=await asyncio.to_thread(services.webhooks.for_job, job_id))
