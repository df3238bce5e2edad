"""Accuracy tracking: score a finished job against its reference, read WER per model and language, and list the
jobs sampled for human review that nobody has scored yet."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.auth import Caller, authenticate, can_read, owner_filter
from api.deps import ServicesDep
from api.errors import ApiError, error_responses
from api.routes.jobs import job_list, job_not_found, unknown_anchor
from schemas import AccuracyReport, JobList, JobScore, JobStatus, ReferenceTranscript

router = APIRouter(tags=["accuracy"], dependencies=[Depends(authenticate)])

_ERRORS = error_responses(400, 401, 404, 409, 413, 429)


@router.post("/v1/jobs/{job_id}/reference", response_model=JobScore, responses=_ERRORS)
async def score_job(job_id: str, body: ReferenceTranscript, services: ServicesDep, caller: Caller) -> JobScore:
    """What was really said in the job's audio; answers the job's word error rate against it. Sending another
    reference replaces the first."""
    job = await asyncio.to_thread(services.jobs.get, job_id)
    if job is None or not can_read(caller, job.owner):
        raise job_not_found(job_id)
    if job.status is not JobStatus.COMPLETED:
        raise ApiError(
            409, f"job {job_id} is {job.status.value}; it can be scored once it is completed", code="job_not_completed"
        )
    try:
        score = await asyncio.to_thread(services.accuracy.score, job, body.text)
    except ValueError as e:
        raise ApiError(400, str(e), param="text", code="invalid_value") from e
    services.metrics.scored(score)
    return score


@router.get("/v1/accuracy", response_model=AccuracyReport, responses=_ERRORS)
async def accuracy(
    services: ServicesDep,
    caller: Caller,
    days: Annotated[float, Query(gt=0, le=3650, description="The window: jobs scored in the last `days` days.")] = 7,
) -> AccuracyReport:
    """Word error rate per model and language over the window (the caller's jobs; an admin key's: all)."""
    groups = await asyncio.to_thread(services.accuracy.summary, days=days, owner=owner_filter(caller))
    return AccuracyReport(window_days=days, data=groups)


@router.get("/v1/review", response_model=JobList, responses=_ERRORS)
async def review_queue(
    services: ServicesDep,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(description="Id of the last job of the previous page.")] = None,
) -> JobList:
    """Completed jobs sampled for human review (`SCRIBEFLOW_REVIEW_SHARE`) that have no reference yet, newest
    first; a job leaves the list once a reference is posted for it."""
    try:
        jobs, has_more = await asyncio.to_thread(
            services.jobs.page, limit=limit, after=after or None, owner=owner_filter(caller), review_pending=True
        )
    except KeyError as e:
        raise unknown_anchor(after) from e
    return job_list(jobs, has_more)
