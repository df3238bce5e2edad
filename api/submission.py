"""Turning a request into an accepted job, and waiting for it: shared by the job API and the OpenAI endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import UploadFile
from pydantic import ValidationError

from api.accuracy import sampled_for_review
from api.auth import rate_limited
from api.deps import Services
from api.errors import ApiError
from api.webhook_urls import UnsafeUrl, check_url
from ingest import IngestUnavailable, InvalidKey, StorageError, new_job_id, submit
from ingest.probe import NotAudio, probe
from ingest.publisher import PublishError
from schemas import LANGUAGES, ApiKey, AudioRef, Job, TranscriptionOptions, TranscriptionRequested

log = logging.getLogger(__name__)


def _unavailable(cause: Exception) -> ApiError:
    log.error("a job could not be queued: %s", cause)
    return ApiError(
        503, "the job could not be queued; try again later", type="server_error", code="service_unavailable"
    )


def build_options(*, language: str | None, **fields: object) -> TranscriptionOptions:
    """Options from form fields (None or blank means absent); a bad value is a 400 naming its parameter."""
    language = (language or "").strip().lower() or None
    if language is not None and language not in LANGUAGES:
        raise ApiError(
            400,
            f"language {language!r} is not an ISO-639-1 code the models know",
            param="language",
            code="unsupported_language",
        )
    fields["language"] = language
    try:
        return TranscriptionOptions.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as e:
        first = e.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise ApiError(400, f"{param}: {first['msg']}", param=param, code="invalid_value") from e


async def accept_upload(
    services: Services,
    file: UploadFile,
    options: TranscriptionOptions,
    caller: ApiKey | None,
    webhook_url: str | None = None,
    *,
    job_id: str | None = None,
    interactive: bool = False,
) -> TranscriptionRequested:
    """Check, store and publish an upload; returns once the broker confirmed the request. `interactive`: the
    caller waits on the answer, so the workers take its chunks before other recordings'.

    The content is probed before anything is stored: what FFmpeg cannot read as audio, or what lasts longer than
    the limit, is refused with a 400, and its duration is charged to the caller's daily audio quota (429 when it
    does not fit)."""
    size = file.size if file.size is not None else await asyncio.to_thread(_measure, file)
    if size == 0:
        raise ApiError(400, "the uploaded file is empty", param="file", code="empty_file")
    try:
        probed = await asyncio.to_thread(probe, file.file)
    except NotAudio as e:
        raise ApiError(400, f"the uploaded file cannot be used: {e}", param="file", code="undecodable_audio") from e
    limit = services.settings.max_audio_seconds
    if probed.seconds > limit:
        raise ApiError(
            400,
            f"the audio lasts {probed.seconds:.0f} s, longer than the limit of {limit:.0f} s",
            param="file",
            code="audio_too_long",
        )
    if caller is not None:
        exceeded = await asyncio.to_thread(services.limiter.audio, caller, probed.seconds)
        if exceeded is not None:
            raise rate_limited(services, exceeded)
    try:
        event = await submit(
            store=services.store,
            publisher=services.publisher,
            topics=services.settings.kafka.topics,
            data=file.file,
            length=size,
            filename=file.filename,
            content_type=file.content_type,
            options=options,
            owner=caller.id if caller else None,
            webhook_url=webhook_url,
            job_id=job_id,
            interactive=interactive,
        )
    except IngestUnavailable as e:
        raise _unavailable(e) from e
    await asyncio.to_thread(_record, services, event)
    return event


async def accept_reference(
    services: Services,
    key: str,
    options: TranscriptionOptions,
    caller: ApiKey | None,
    webhook_url: str | None = None,
    *,
    job_id: str | None = None,
) -> TranscriptionRequested:
    """Publish a request for an object already in the store (the workers enforce the duration limit on it)."""
    try:
        exists = await asyncio.to_thread(services.store.exists, key)
    except InvalidKey as e:
        raise ApiError(400, "audio_key is not a valid object key", param="audio_key", code="invalid_value") from e
    except StorageError as e:
        raise _unavailable(e) from e
    if not exists:
        raise ApiError(400, f"no object {key!r} in the audio store", param="audio_key", code="audio_not_found")
    job_id = job_id or new_job_id()
    owner = caller.id if caller else None
    event = TranscriptionRequested(
        job_id=job_id, audio=AudioRef(key=key), options=options, owner=owner, webhook_url=webhook_url
    )
    try:
        await services.publisher.publish(services.settings.kafka.topics.requests, job_id, event)
    except PublishError as e:
        raise _unavailable(e) from e
    await asyncio.to_thread(_record, services, event)
    return event


async def wait_for_job(services: Services, job_id: str, *, within: float) -> Job | None:
    """The job once it is completed or failed, or None if `within` seconds passed first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    with services.watcher.watch(job_id) as changed:
        while True:
            changed.clear()
            job = await asyncio.to_thread(services.jobs.get, job_id)
            if job is not None and job.status.terminal:
                return job
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                # Woken by this replica's materialiser; the periodic look covers events another replica applied.
                await asyncio.wait_for(changed.wait(), min(remaining, 2.0))


async def checked_webhook(services: Services, url: str | None) -> str | None:
    """A job's webhook URL, if it may be called; a 400 naming `webhook_url` otherwise."""
    if url is None or not url.strip():
        return None
    settings = services.settings.webhooks
    if settings.secret is None:
        raise ApiError(
            400,
            "webhooks are not configured on this server (SCRIBEFLOW_WEBHOOKS__SECRET)",
            param="webhook_url",
            code="webhooks_not_configured",
        )
    try:
        await asyncio.to_thread(check_url, url.strip(), allow_private=settings.allow_private_urls)
    except UnsafeUrl as e:
        raise ApiError(400, f"webhook_url cannot be used: {e}", param="webhook_url", code="invalid_webhook_url") from e
    return url.strip()


def _record(services: Services, event: TranscriptionRequested) -> None:
    services.jobs.record_request(event)
    if sampled_for_review(event.job_id, services.settings.review_share):
        services.jobs.mark_for_review(event.job_id)


def _measure(file: UploadFile) -> int:
    file.file.seek(0, 2)
    size = file.file.tell()
    file.file.seek(0)
    return size
