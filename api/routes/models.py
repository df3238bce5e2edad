"""`GET /v1/models`: what the workers serve, under OpenAI's model-list shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from api.auth import authenticate
from api.deps import ServicesDep
from api.errors import ApiError
from schemas import ErrorBody, Model, ModelList

router = APIRouter(prefix="/v1/models", tags=["models"], dependencies=[Depends(authenticate)])

WHISPER_1 = "whisper-1"


def served(models: list[str]) -> list[str]:
    """`whisper-1` first (it means the default model), then every configured name."""
    return [WHISPER_1, *(m for m in models if m != WHISPER_1)]


def resolve(requested: str, models: list[str]) -> str:
    """The served model a request's `model` means; raises a 400 naming the parameter for anything else."""
    if requested == WHISPER_1:
        return models[0]
    if requested in models:
        return requested
    raise ApiError(
        400,
        f"the model {requested!r} does not exist or is not served here; use one of {', '.join(served(models))}",
        param="model",
        code="model_not_found",
    )


_ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorBody} for status in (401, 429)}


@router.get("", response_model=ModelList, responses=_ERRORS)
async def list_models(services: ServicesDep) -> ModelList:
    return ModelList(data=[Model(id=name) for name in served(services.settings.served_models)])


@router.get("/{model_id}", response_model=Model, responses={**_ERRORS, 404: {"model": ErrorBody}})
async def get_model(model_id: str, services: ServicesDep) -> Model:
    if model_id not in served(services.settings.served_models):
        raise ApiError(
            404, f"the model {model_id!r} does not exist", type="not_found_error", param="model", code="model_not_found"
        )
    return Model(id=model_id)
