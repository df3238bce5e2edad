"""Who spoke when in a diarized job: its speaker turns, found from the voices, as JSON or as RTTM."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from api.auth import Caller, authenticate, can_read
from api.deps import ServicesDep
from api.errors import ApiError, error_responses
from api.formats import to_rttm
from api.routes.jobs import job_not_found
from schemas import JobStatus, SpeakerTurnList

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[Depends(authenticate)])


class TurnFormat(StrEnum):
    JSON = "json"
    RTTM = "rttm"


@router.get(
    "/{job_id}/speakers",
    response_model=SpeakerTurnList,
    responses={
        200: {
            "description": "The job's speaker turns; with `format=rttm`, one RTTM `SPEAKER` line each.",
            "content": {"text/x-rttm": {"schema": {"type": "string"}}},
        },
        **error_responses(400, 401, 404, 409, 503),
    },
)
async def job_speakers(
    job_id: str,
    services: ServicesDep,
    caller: Caller,
    format: Annotated[TurnFormat, Query(description="`json` or `rttm` (NIST's format that scorers read).")] = (
        TurnFormat.JSON
    ),
) -> Response:
    """Who spoke when: stretches of the recording where one voice was heard, named as on the transcript's words.
    They come from the voices alone, so they follow the speech more closely than the words' times do."""
    job = await asyncio.to_thread(services.jobs.get, job_id, with_result=False)
    if job is None or not can_read(caller, job.owner):
        raise job_not_found(job_id)
    if job.options is None or job.options.diarization is None:
        raise ApiError(
            409, f"job {job_id} was not diarized (create it with diarize=true)", param="job_id", code="not_diarized"
        )
    if job.status is not JobStatus.COMPLETED:
        raise ApiError(
            409,
            f"job {job_id} is {job.status.value}; its speakers are known once it is completed",
            param="job_id",
            code="job_not_completed",
        )
    turns = await asyncio.to_thread(services.jobs.speaker_turns, job_id)
    if turns is None:
        raise ApiError(
            409,
            f"job {job_id} has no speaker turns: its voices could not be clustered (its worker's log says why), "
            "or it was diarized before turns were kept",
            param="job_id",
            code="speaker_turns_unavailable",
        )
    if format is TurnFormat.RTTM:
        return Response(to_rttm(job_id, turns), media_type="text/x-rttm; charset=utf-8")
    speakers = list(dict.fromkeys(t.speaker for t in turns))
    body = SpeakerTurnList(job_id=job_id, speakers=speakers, data=turns)
    return JSONResponse(body.model_dump(mode="json"))
