"""The job API: submit audio, follow a job, fetch its transcript in any format."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from api.deps import ServicesDep
from api.errors import ApiError
from api.formats import MEDIA_TYPES, ResponseFormat, render
from ingest import IngestUnavailable, StorageError, new_job_id, submit
from ingest.publisher import PublishError
from schemas import (
    AudioRef,
    ErrorBody,
    Job,
    JobCreated,
    JobList,
    JobStatus,
    Task,
    TranscriptionOptions,
    TranscriptionRequested,
)

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorBody},
    404: {"model": ErrorBody},
    409: {"model": ErrorBody},
    413: {"model": ErrorBody},
    503: {"model": ErrorBody},
}


def _options(**fields: object) -> TranscriptionOptions:
    try:
        return TranscriptionOptions.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as e:
        first = e.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise ApiError(400, f"{param}: {first['msg']}", param=param, code="invalid_value") from e


@router.post("", status_code=202, response_model=JobCreated, responses=_ERRORS)
async def create_job(
    services: ServicesDep,
    file: Annotated[UploadFile | None, File(description="The audio: any format FFmpeg decodes.")] = None,
    audio_key: Annotated[str | None, Form(description="Instead of `file`: a key already in the audio store.")] = None,
    language: Annotated[str | None, Form()] = None,
    task: Annotated[Task, Form()] = Task.TRANSCRIBE,
    prompt: Annotated[str | None, Form()] = None,
    word_timestamps: Annotated[bool, Form()] = True,
    temperature: Annotated[float, Form()] = 0.0,
) -> JSONResponse:
    """Accept a job. The 202 is sent only after the broker confirmed the request event."""
    options = _options(
        language=language or None, task=task, prompt=prompt, word_timestamps=word_timestamps, temperature=temperature
    )
    if (file is None) == (audio_key is None):
        raise ApiError(400, "send exactly one of 'file' (an upload) or 'audio_key'", param="file", code="missing_file")
    if file is not None:
        event = await _submit_upload(services, file, options)
    else:
        assert audio_key is not None
        event = await _submit_reference(services, audio_key, options)
    await asyncio.to_thread(services.jobs.record_request, event)
    body = JobCreated(id=event.job_id, status=JobStatus.QUEUED, created_at=event.occurred_at)
    return JSONResponse(
        status_code=202, content=body.model_dump(mode="json"), headers={"Location": f"/v1/jobs/{event.job_id}"}
    )


async def _submit_upload(
    services: ServicesDep, file: UploadFile, options: TranscriptionOptions
) -> TranscriptionRequested:
    size = file.size if file.size is not None else await asyncio.to_thread(_measure, file)
    if size == 0:
        raise ApiError(400, "the uploaded file is empty", param="file", code="empty_file")
    try:
        return await submit(
            store=services.store,
            publisher=services.publisher,
            topics=services.settings.kafka.topics,
            data=file.file,
            length=size,
            filename=file.filename,
            content_type=file.content_type,
            options=options,
        )
    except IngestUnavailable as e:
        raise ApiError(
            503, f"the job could not be queued; try again later ({e})", type="server_error", code="service_unavailable"
        ) from e


async def _submit_reference(services: ServicesDep, key: str, options: TranscriptionOptions) -> TranscriptionRequested:
    try:
        exists = await asyncio.to_thread(services.store.exists, key)
    except StorageError as e:
        raise ApiError(400, f"audio_key is not a valid object key: {e}", param="audio_key", code="invalid_value") from e
    if not exists:
        raise ApiError(400, f"no object {key!r} in the audio store", param="audio_key", code="audio_not_found")
    job_id = new_job_id()
    event = TranscriptionRequested(job_id=job_id, audio=AudioRef(key=key), options=options)
    try:
        await services.publisher.publish(services.settings.kafka.topics.requests, job_id, event)
    except PublishError as e:
        raise ApiError(
            503, "the job could not be queued; try again later", type="server_error", code="service_unavailable"
        ) from e
    return event


def _measure(file: UploadFile) -> int:
    file.file.seek(0, 2)
    size = file.file.tell()
    file.file.seek(0)
    return size


@router.get("", response_model=JobList, responses=_ERRORS)
async def list_jobs(
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(description="Id of the last job of the previous page.")] = None,
) -> JobList:
    """Jobs, newest first."""
    try:
        jobs, has_more = await asyncio.to_thread(services.jobs.page, limit=limit, after=after)
    except KeyError as e:
        raise ApiError(400, f"no job {after!r} to page after", param="after", code="invalid_value") from e
    return JobList(
        data=jobs,
        has_more=has_more,
        first_id=jobs[0].id if jobs else None,
        last_id=jobs[-1].id if jobs else None,
    )


@router.get("/{job_id}", response_model=Job, responses=_ERRORS)
async def get_job(
    job_id: str,
    services: ServicesDep,
    format: Annotated[ResponseFormat | None, Query(description="Render the transcript instead of the job.")] = None,
) -> Response:
    """The job; with `format`, its transcript in that format (409 until it is completed)."""
    job = await asyncio.to_thread(services.jobs.get, job_id)
    if job is None:
        raise ApiError(404, f"no job with id {job_id!r}", type="not_found_error", param="job_id", code="job_not_found")
    if format is None:
        return JSONResponse(job.model_dump(mode="json"))
    transcript = await asyncio.to_thread(services.jobs.transcript, job_id)
    if transcript is None:
        raise ApiError(
            409,
            f"job {job_id} is {job.status.value}; its transcript exists once it is completed",
            param="format",
            code="job_not_completed",
        )
    return Response(render(transcript, format), media_type=MEDIA_TYPES[format])
