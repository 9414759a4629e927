"""GET /models and /models/{name}: what is served, with schemas and metrics, never internals."""

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from services.auth.scopes import MODELS_READ
from services.gateway.dependencies import RuntimeDep, require
from services.gateway.envelope import success
from services.gateway.pagination import PageDep
from services.gateway.schemas import ERROR_RESPONSES, MODEL_REF, ModelEnvelope, ModelsEnvelope

router = APIRouter(
    prefix="/models",
    tags=["models"],
    responses=ERROR_RESPONSES,
    dependencies=[require(MODELS_READ)],
)


@router.get("", response_model=ModelsEnvelope, summary="List served models")
async def list_models(runtime: RuntimeDep, page: PageDep) -> JSONResponse:
    models = runtime.registry.all()
    chosen = models[page.offset : page.offset + page.limit]
    return JSONResponse(success([m.public() for m in chosen], **page.meta(len(models))))


@router.get("/{name}", response_model=ModelEnvelope, summary="One served model")
async def get_model(
    runtime: RuntimeDep, name: str = Path(pattern=MODEL_REF, max_length=200)
) -> JSONResponse:
    return JSONResponse(success(runtime.registry.resolve(name).public()))
