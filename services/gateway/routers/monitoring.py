"""/models/{name}/drift, /quality and /shadow: how a model's versions fare over a window of the
prediction log (models:read)."""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.auth.scopes import MODELS_READ
from services.catalog import ServedModel
from services.deployments.views import stage_of
from services.gateway.dependencies import StoreDep, require
from services.gateway.deployment_schemas import (
    DriftPublic,
    DriftVersion,
    QualityPublic,
    QualityVersion,
    ShadowPublic,
    WindowPublic,
)
from services.gateway.monitoring_query import DriftQuery, WindowQuery
from services.gateway.routers.deployments import LifecycleDep, ModelName
from services.gateway.schemas import ERROR_RESPONSES
from services.http.envelope import Envelope, success
from services.monitoring.drift import PSI_ALERT, PSI_WARN
from services.monitoring.live import drift_over_window, quality_over_window, shadow_over_window

router = APIRouter(
    prefix="/models",
    tags=["monitoring"],
    responses=ERROR_RESPONSES,
    dependencies=[require(MODELS_READ)],
)


@router.get(
    "/{name}/drift",
    response_model=Envelope[DriftPublic],
    summary="PSI per feature: each version's reference against the served inputs",
    description="Reads the callers' inputs of the window from the prediction log (newest "
    "first, at most MONITORING_MAX_ROWS), whichever version answered them, and compares them "
    "with the reference distribution each version recorded at export. Status per feature: ok "
    "below 0.1, warn below 0.25, alert from 0.25.",
)
async def model_drift(
    name: ModelName,
    params: Annotated[DriftQuery, Query()],
    lifecycle: LifecycleDep,
    store: StoreDep,
) -> dict[str, Any]:
    manager = lifecycle.deployments.manager
    state = await manager.current(name)
    if params.version is not None:
        chosen = [manager.catalog.resolve(f"{name}:{params.version}")]
    else:
        chosen = [model for v in state.spec.versions if (model := manager.catalog.get(name, v))]
    window = params.span
    drift = await drift_over_window(
        store.sessions,
        model_name=name,
        references={m.ref.version: m.metadata.reference_distribution for m in chosen},
        window=window,
        max_rows=lifecycle.monitoring.max_rows,
    )
    past = await manager.past_production(name)
    report = DriftPublic(
        model=name,
        window=WindowPublic(**window.describe()),
        rows=drift.rows,
        sampled=drift.sampled,
        thresholds={"warn": PSI_WARN, "alert": PSI_ALERT},
        versions=[
            DriftVersion(version=version, stage=stage_of(version, state, past), drift=result)
            for version, result in drift.versions.items()
        ],
    )
    return success(report.model_dump(mode="json"))


@router.get(
    "/{name}/quality",
    response_model=Envelope[QualityPublic],
    summary="Live accuracy, log loss and ROC-AUC per version, next to the export's holdout",
    description="From the predictions of the window that have their label (PATCH "
    "/predictions/{id}); a shadow version is scored on the labels of the production "
    "predictions it shadowed.",
)
async def model_quality(
    name: ModelName,
    params: Annotated[WindowQuery, Query()],
    lifecycle: LifecycleDep,
    store: StoreDep,
) -> dict[str, Any]:
    manager = lifecycle.deployments.manager
    state = await manager.current(name)
    loaded: dict[str, ServedModel] = {m.ref.version: m for m in manager.catalog.versions(name)}
    window = params.span
    quality = await quality_over_window(
        store.sessions,
        model_name=name,
        classes={v: m.metadata.output_schema.classes for v, m in loaded.items()},
        window=window,
        max_rows=lifecycle.monitoring.max_rows,
    )
    past = await manager.past_production(name)
    report = QualityPublic(
        model=name,
        window=WindowPublic(**window.describe()),
        rows=quality.rows,
        sampled=quality.sampled,
        versions=[
            QualityVersion(
                version=version,
                stage=stage_of(version, state, past) if version in loaded else None,
                holdout=loaded[version].metadata.metrics if version in loaded else {},
                live=result.served,
                shadow=result.shadow,
            )
            for version, result in quality.versions.items()
        ],
    )
    return success(report.model_dump(mode="json"))


@router.get(
    "/{name}/shadow",
    response_model=Envelope[ShadowPublic],
    summary="Shadow versions against production over the same requests",
    description="Per shadow and production version pair: how many rows both answered, how "
    "often they chose the same class, and the mean and largest absolute difference of their "
    "class probabilities.",
)
async def model_shadow(
    name: ModelName,
    params: Annotated[WindowQuery, Query()],
    lifecycle: LifecycleDep,
    store: StoreDep,
) -> dict[str, Any]:
    lifecycle.deployments.manager.catalog.newest(name)  # 404 for a model that is not served
    window = params.span
    shadow = await shadow_over_window(
        store.sessions, model_name=name, window=window, max_rows=lifecycle.monitoring.max_rows
    )
    report = ShadowPublic(
        model=name,
        window=WindowPublic(**window.describe()),
        rows=shadow.rows,
        sampled=shadow.sampled,
        comparisons=shadow.comparisons,
    )
    return success(report.model_dump(mode="json"))
