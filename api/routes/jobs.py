"""The job API: submit audio, follow a job, fetch its transcript in any format."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import JSONResponse, Response

from api.auth import Caller, authenticate, can_read, owner_filter
from api.deps import ServicesDep
from api.errors import ApiError, error_responses
from api.formats import MEDIA_TYPES, Granularity, ResponseFormat, render
from api.jobstore import transcript_of
from api.routes.models import resolve
from api.submission import accept_reference, accept_upload, build_options
from schemas import (
    Job,
    JobCreated,
    JobList,
    JobStatus,
    Task,
    TranscriptionJson,
    TranscriptionVerboseJson,
)

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
) -> JSONResponse:
    """Accept a job. The 202 is sent only after the broker confirmed the request event."""
    options = build_options(
        language=language,
        task=task,
        prompt=prompt,
        word_timestamps=word_timestamps,
        temperature=temperature,
        model=resolve(model, services.settings.served_models) if model else None,
    )
    if (file is None) == (audio_key is None):
        raise ApiError(400, "send exactly one of 'file' (an upload) or 'audio_key'", param="file", code="missing_file")
    if file is not None:
        event = await accept_upload(services, file, options, caller)
    else:
        assert audio_key is not None
        event = await accept_reference(services, audio_key, options, caller)
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
) -> JobList:
    """The caller's jobs (an admin key's: every job), newest first."""
    try:
        jobs, has_more = await asyncio.to_thread(
            services.jobs.page, limit=limit, after=after or None, owner=owner_filter(caller)
        )
    except KeyError as e:
        raise unknown_anchor(after) from e
    return JobList(
        data=jobs,
        has_more=has_more,
        first_id=jobs[0].id if jobs else None,
        last_id=jobs[-1].id if jobs else None,
    )


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
        # Another key's job is as absent as one that never existed.
        raise ApiError(404, f"no job with id {job_id!r}", type="not_found_error", param="job_id", code="job_not_found")
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
    words = job.options is None or job.options.word_timestamps
    granularities = frozenset({Granularity.SEGMENT, Granularity.WORD} if words else {Granularity.SEGMENT})
    return Response(render(transcript, format, granularities=granularities), media_type=MEDIA_TYPES[format])
