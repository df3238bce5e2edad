"""OpenAI-compatible `POST /v1/audio/transcriptions` and `/v1/audio/translations`.

Each request becomes a job on the Kafka pipeline that the HTTP request waits on, so it gets the same queueing,
parallelism and durability as `/v1/jobs`; if the wait runs out, the 504 names the job so nothing is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from api.auth import Caller, authenticate
from api.deps import Services, ServicesDep
from api.errors import ApiError, error_responses
from api.formats import MEDIA_TYPES, Granularity, ResponseFormat, TranslationFormat, diarized_segment, render
from api.jobstore import transcript_of, transcript_text
from api.routes.jobs import job_not_found
from api.routes.models import resolve
from api.speakers import Reference, diarization, references, with_references
from api.submission import accept_upload, build_options, wait_for_job
from ingest import new_job_id
from schemas import (
    ApiKey,
    ErrorBody,
    ErrorDetail,
    Job,
    JobStatus,
    Segment,
    Task,
    TranscriptionDiarizedJson,
    TranscriptionJson,
    TranscriptionVerboseJson,
    TranscriptTextDelta,
    TranscriptTextDone,
)

router = APIRouter(prefix="/v1/audio", tags=["audio"], dependencies=[Depends(authenticate)])

# The JSON bodies come from the routes' `response_model` (components the document can resolve); the other formats
# are declared here.
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The transcript in `response_format`; with `stream`, server-sent events.",
        "content": {
            "text/plain": {"schema": {"type": "string"}},
            "application/x-subrip": {"schema": {"type": "string"}},
            "text/vtt": {"schema": {"type": "string"}},
            "text/event-stream": {"schema": {"type": "string"}},
        },
    },
    **error_responses(400, 401, 404, 413, 429, 500, 503, 504),
}

# Job errors that are the caller's doing, and the parameter they point at.
_CLIENT_ERRORS = {"undecodable_audio": "file", "empty_audio": "file", "model_not_served": "model"}

FileField = Annotated[
    UploadFile, File(description="The audio: flac, mp3, mp4, m4a, ogg, wav, webm, or anything FFmpeg decodes.")
]
ModelField = Annotated[
    str, Form(min_length=1, description="`whisper-1` or a served model name (see `GET /v1/models`).")
]
PromptField = Annotated[str | None, Form(description="Text that guides spelling and style.")]
FormatField = Annotated[ResponseFormat, Form()]
TemperatureField = Annotated[
    float, Form(ge=0, le=1, description="0 uses the fallback schedule: hotter only where decoding fails.")
]


@router.post(
    "/transcriptions",
    responses=_RESPONSES,
    response_model=TranscriptionJson | TranscriptionVerboseJson | TranscriptionDiarizedJson,
)
async def create_transcription(
    services: ServicesDep,
    caller: Caller,
    file: FileField,
    model: ModelField,
    language: Annotated[str | None, Form(description="ISO-639-1 code; detected when absent.")] = None,
    prompt: PromptField = None,
    response_format: FormatField = ResponseFormat.JSON,
    temperature: TemperatureField = 0.0,
    timestamp_granularities: Annotated[
        list[Granularity] | None,
        Form(alias="timestamp_granularities[]", description="`word` and/or `segment`; needs verbose_json."),
    ] = None,
    stream: Annotated[bool, Form(description="Answer with server-sent events as segments become final.")] = False,
    include: Annotated[list[str] | None, Form(alias="include[]", description="Accepted and ignored.")] = None,
    known_speaker_names: Annotated[
        list[str] | None,
        Form(alias="known_speaker_names[]", description="With diarized_json: names for known_speaker_references[]."),
    ] = None,
    known_speaker_references: Annotated[
        list[str] | None,
        Form(
            alias="known_speaker_references[]",
            description="Data URLs of 2 to 10 s of each known speaker alone, in the order of known_speaker_names[].",
        ),
    ] = None,
    chunking_strategy: Annotated[
        str | None, Form(description="Accepted and ignored: long audio is always cut at silences.")
    ] = None,
) -> Response:
    granularities = frozenset(timestamp_granularities or [Granularity.SEGMENT])
    if timestamp_granularities and response_format is not ResponseFormat.VERBOSE_JSON:
        raise ApiError(
            400,
            "timestamp_granularities[] requires response_format=verbose_json",
            param="timestamp_granularities[]",
            code="invalid_value",
        )
    known = references(known_speaker_names, known_speaker_references)
    diarized = response_format is ResponseFormat.DIARIZED_JSON
    if known and not diarized:
        raise ApiError(
            400, "known speakers need response_format=diarized_json", param="response_format", code="invalid_value"
        )
    return await _transcribe(
        services,
        caller,
        file,
        known,
        model=model,
        task=Task.TRANSCRIBE,
        language=language,
        prompt=prompt,
        response_format=response_format,
        temperature=temperature,
        granularities=granularities,
        stream=stream,
    )


@router.post("/translations", responses=_RESPONSES, response_model=TranscriptionJson | TranscriptionVerboseJson)
async def create_translation(
    services: ServicesDep,
    caller: Caller,
    file: FileField,
    model: ModelField,
    prompt: PromptField = None,
    response_format: Annotated[TranslationFormat, Form()] = TranslationFormat.JSON,
    temperature: TemperatureField = 0.0,
) -> Response:
    """English text from audio in any language the model knows."""
    return await _transcribe(
        services,
        caller,
        file,
        [],
        model=model,
        task=Task.TRANSLATE,
        language=None,
        prompt=prompt,
        response_format=ResponseFormat(response_format.value),
        temperature=temperature,
        granularities=frozenset({Granularity.SEGMENT}),
        stream=False,
    )


async def _transcribe(
    services: Services,
    caller: ApiKey | None,
    file: UploadFile,
    known: list[Reference],
    *,
    model: str,
    task: Task,
    language: str | None,
    prompt: str | None,
    response_format: ResponseFormat,
    temperature: float,
    granularities: frozenset[Granularity],
    stream: bool,
) -> Response:
    served = resolve(model, services.settings.served_models)
    words = response_format is ResponseFormat.VERBOSE_JSON and Granularity.WORD in granularities
    diarized = response_format is ResponseFormat.DIARIZED_JSON
    options = build_options(
        language=language,
        task=task,
        prompt=prompt,
        temperature=temperature,
        word_timestamps=words,
        model=served,
        diarization=diarization(diarized, None, None, known),
    )
    job_id = new_job_id()
    options = await with_references(services, job_id, options, known)
    event = await accept_upload(services, file, options, caller, job_id=job_id, interactive=True)
    if stream:
        return StreamingResponse(
            _events(services, event.job_id, diarized=diarized),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Job-Id": event.job_id},
        )
    job = await wait_for_job(services, event.job_id, within=services.settings.sync_timeout_s)
    if job is None:
        raise _timeout(event.job_id)
    if job.status is JobStatus.FAILED:
        raise _failure(job)
    transcript = transcript_of(job)
    if transcript is None:  # a terminal job that did not fail is completed, with its segments
        raise ApiError(500, "the transcript could not be read", type="server_error")
    body = render(transcript, response_format, granularities=granularities)
    return Response(body, media_type=MEDIA_TYPES[response_format], headers={"X-Job-Id": job.id})


def _timeout(job_id: str) -> ApiError:
    return ApiError(
        504,
        f"the transcription is still running; job {job_id} keeps going, fetch it from /v1/jobs/{job_id}",
        type="server_error",
        code="timeout",
        headers={"X-Job-Id": job_id},
    )


def _failure(job: Job) -> ApiError:
    code = job.error.code if job.error else "transcription_failed"
    if code in _CLIENT_ERRORS:
        message = job.error.message if job.error else "the audio could not be transcribed"
        return ApiError(400, message, param=_CLIENT_ERRORS[code], code=code)
    return ApiError(
        500,
        f"the transcription failed; job {job.id} has the details",
        type="server_error",
        code=code,
        headers={"X-Job-Id": job.id},
    )


def _sse(event: BaseModel) -> bytes:
    return f"data: {event.model_dump_json()}\n\n".encode()


async def _events(services: Services, job_id: str, *, diarized: bool) -> AsyncIterator[bytes]:
    """`transcript.text.delta` per final segment, in order (`transcript.text.segment`, with its speaker, for
    diarized_json), then `transcript.text.done`; failures as an error. Follows the job's shared live feed
    (`api.live`), as `GET /v1/jobs/{id}/events` does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + services.settings.sync_timeout_s
    changes = services.feeds.follow(job_id)
    heard: list[Segment] = []
    try:
        while True:
            try:
                change = await asyncio.wait_for(anext(changes), max(0.0, deadline - loop.time()))
            except TimeoutError:
                yield _error(_timeout(job_id))
                return
            except StopAsyncIteration:  # the job was deleted while the caller waited
                yield _error(job_not_found(job_id))
                return
            for segment in change.segments:
                if not (text := segment.text.strip()):
                    continue
                if diarized:
                    yield _sse(diarized_segment(segment))
                else:
                    yield _sse(TranscriptTextDelta(delta=(" " if heard else "") + text))
                heard.append(segment)
            if change.job.status is JobStatus.COMPLETED:
                yield _sse(TranscriptTextDone(text=transcript_text(heard)))
                return
            if change.job.status is JobStatus.FAILED:
                yield _error(_failure(change.job))
                return
    finally:
        await changes.aclose()  # type: ignore[attr-defined]


def _error(error: ApiError) -> bytes:
    detail: ErrorDetail = error.detail
    return f"data: {ErrorBody(error=detail).model_dump_json()}\n\n".encode()
