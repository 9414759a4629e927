"""/models/{name}/versions and /models/{name}/deployment: which versions serve, changed by an
admin with a recorded history and a one-call rollback; reads need models:read."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from services.auth.scopes import ADMIN, MODELS_READ
from services.deployments.state import VERSION_PATTERN, DeploymentSpec, RevisionRecord
from services.deployments.views import VersionView, version_views
from services.errors import ServiceUnavailable
from services.gateway.dependencies import CallerDep, RuntimeDep, require
from services.gateway.deployment_schemas import (
    DeploymentPublic,
    RollbackRequest,
    deployment_public,
)
from services.gateway.lifecycle import Lifecycle
from services.gateway.query import PageQuery
from services.gateway.schemas import ERROR_RESPONSES
from services.http.envelope import Envelope, ErrorEnvelope, PageEnvelope, success

CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorEnvelope,
        "description": "A version not loaded or incompatible, or a concurrent change",
    }
}
router = APIRouter(
    prefix="/models", tags=["deployments"], responses={**ERROR_RESPONSES, **CONFLICT}
)
ModelName = Annotated[str, Path(pattern=VERSION_PATTERN, max_length=200)]


async def get_lifecycle(runtime: RuntimeDep) -> Lifecycle:
    """The worker's lifecycle parts; 503 where the prediction log (their database) is off."""
    if runtime.lifecycle is None:
        raise ServiceUnavailable(
            "deployments live in the prediction log's database, which is switched off on this "
            "deployment (DB_PERSIST_PREDICTIONS=false)"
        )
    return runtime.lifecycle


LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]


@router.get(
    "/{name}/versions",
    response_model=Envelope[list[VersionView]],
    summary="Every loaded version of a model, with its stage and traffic",
    dependencies=[require(MODELS_READ)],
)
async def list_versions(name: ModelName, lifecycle: LifecycleDep) -> dict[str, Any]:
    manager = lifecycle.deployments.manager
    state = await manager.current(name)
    views = version_views(manager.catalog, state, await manager.past_production(name))
    return success([view.model_dump(mode="json") for view in views])


@router.get(
    "/{name}/deployment",
    response_model=Envelope[DeploymentPublic],
    summary="A model's deployment: production, canary and shadow versions",
    dependencies=[require(MODELS_READ)],
)
async def get_deployment(name: ModelName, lifecycle: LifecycleDep) -> dict[str, Any]:
    return success(deployment_public(await lifecycle.deployments.manager.current(name)))


@router.put(
    "/{name}/deployment",
    response_model=Envelope[DeploymentPublic],
    summary="Set a model's deployment (every worker follows within about a second)",
    description="409 `version_not_loaded` names versions this service does not load and how "
    "to load them; 409 `incompatible_version` lists how a version's features or classes "
    "differ from production's.",
    dependencies=[require(ADMIN)],
)
async def set_deployment(
    name: ModelName, body: DeploymentSpec, lifecycle: LifecycleDep, caller: CallerDep
) -> dict[str, Any]:
    actor = caller.subject if caller else None
    state, warnings = await lifecycle.deployments.manager.change(name, body, actor=actor)
    await lifecycle.deployments.refresh()  # this worker follows at once, the others on poll
    return success(deployment_public(state, warnings))


@router.get(
    "/{name}/deployment/history",
    response_model=PageEnvelope[RevisionRecord],
    summary="A model's deployment revisions, newest first: who, when, what",
    dependencies=[require(MODELS_READ)],
)
async def deployment_history(
    name: ModelName, lifecycle: LifecycleDep, page: Annotated[PageQuery, Query()]
) -> dict[str, Any]:
    total, records = await lifecycle.deployments.manager.history(
        name, offset=page.offset, limit=page.limit
    )
    return success([record.model_dump(mode="json") for record in records], **page.meta(total))


@router.post(
    "/{name}/deployment/rollback",
    status_code=201,
    response_model=Envelope[DeploymentPublic],
    summary="Restore an earlier revision (by default the previous one) as a new revision",
    dependencies=[require(ADMIN)],
)
async def rollback_deployment(
    name: ModelName,
    lifecycle: LifecycleDep,
    caller: CallerDep,
    body: RollbackRequest | None = None,
) -> dict[str, Any]:
    actor = caller.subject if caller else None
    state, warnings = await lifecycle.deployments.manager.rollback(
        name, actor=actor, to_revision=body.to_revision if body else None
    )
    await lifecycle.deployments.refresh()
    return success(deployment_public(state, warnings))
