"""GET /models and /models/{name}: what is served, with schemas and metrics, never internals."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from services.auth.scopes import MODELS_READ
from services.gateway.dependencies import RuntimeDep, require
from services.gateway.query import PageQuery
from services.gateway.schemas import ERROR_RESPONSES, MODEL_REF, ModelPublic
from services.http.envelope import Envelope, PageEnvelope, success

router = APIRouter(
    prefix="/models",
    tags=["models"],
    responses=ERROR_RESPONSES,
    dependencies=[require(MODELS_READ)],
)


@router.get(
    "", response_model=PageEnvelope[ModelPublic], summary="List served models, every version"
)
async def list_models(runtime: RuntimeDep, page: Annotated[PageQuery, Query()]) -> dict[str, Any]:
    models = runtime.catalog.all()
    chosen = models[page.offset : page.offset + page.limit]
    return success([m.public() for m in chosen], **page.meta(len(models)))


@router.get("/{name}", response_model=Envelope[ModelPublic], summary="One served model")
async def get_model(
    runtime: RuntimeDep, name: Annotated[str, Path(pattern=MODEL_REF, max_length=200)]
) -> dict[str, Any]:
    return success(runtime.resolve(name).public())
