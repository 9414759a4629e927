"""The three runner services. Each declares its models as BentoModel class attributes, so
`bentoml build` ships exactly those versions, and batches `predict` adaptively."""

from typing import Any

import bentoml
from bentoml.models import BentoModel

from services.catalog import refs_for
from services.runners.core import RunnerCore
from services.runners.lifecycle import outlive_workers_of
from services.runners.protocol import PredictItem, PredictOutput, RunnerStatus
from services.settings import GATEWAY_SERVICE, server_settings, serving_settings

# Keep pooled connections from the gateway alive: BentoML's defaults recycle them after 100
# requests, and under bursts that surfaced as ServerDisconnectedError 500s (ARCHITECTURE fact 2).
RUNNER_CONNECTION = {"max_requests": 1_000_000, "max_age": 3600.0}
SETTINGS = serving_settings()


def _batching(framework: str) -> dict[str, Any]:
    """Batching comes from the models' stored `predict` signatures plus the settings."""
    signatures = [
        bentoml.models.get(ref.tag).info.signatures.get("predict") for ref in refs_for(framework)
    ]
    batchable = SETTINGS.batching and all(s is not None and s.batchable for s in signatures)
    if not batchable:
        return {"batchable": False}
    return {
        "batchable": True,
        "batch_dim": 0,
        "max_batch_size": SETTINGS.max_batch_size,
        "max_latency_ms": SETTINGS.max_latency_ms,
    }


def _resources(framework: str) -> dict[str, Any]:
    """The PyTorch runner asks for GPUs when SERVING_TORCH_GPU > 0 (the GPU bento sets 1)."""
    gpus = SETTINGS.torch_gpu
    if framework == "torch" and gpus > 0:
        return {"resources": {"gpu": int(gpus) if gpus.is_integer() else gpus}}
    return {}


def declare_models(*frameworks: str) -> Any:
    """A class decorator: these frameworks' served models as BentoModel class attributes, so
    `bentoml build` ships exactly those versions and BentoML resolves them when serving."""

    def declare(cls: type) -> type:
        for framework in frameworks:
            for index, ref in enumerate(refs_for(framework)):
                setattr(cls, f"model_{framework}_{index}", BentoModel(ref.tag))
        return cls

    return declare


def stored_models(instance: object, framework: str) -> list[Any]:
    """One framework's declared models; BentoML has already swapped each BentoModel for its
    stored model."""
    prefix = f"model_{framework}_"
    declared = [
        getattr(instance, name) for name in sorted(vars(type(instance))) if name.startswith(prefix)
    ]
    return [model.stored if isinstance(model, BentoModel) else model for model in declared]


def _runner(framework: str, doc: str) -> Any:
    """A runner service for one framework's models."""

    @declare_models(framework)
    class Runner:
        __doc__ = doc

        def __init__(self) -> None:
            if framework == "torch":
                from services.artifact.adapters import torch_adapter

                torch_adapter.make_deterministic(SETTINGS.torch_threads)
                torch_adapter.ADAPTER.device = torch_adapter.select_device(SETTINGS.torch_device)
            self.core = RunnerCore(
                framework,
                stored_models(self, framework),
                golden_tolerance=SETTINGS.golden_tolerance,
            )
            # The gateway drains for up to its grace period (then uvicorn's few seconds); this
            # runner serves until the gateway's workers are gone.
            outlive_workers_of(GATEWAY_SERVICE, longest_s=server_settings().drain_grace_s + 15)

        @bentoml.api(**_batching(framework))  # type: ignore[untyped-decorator]
        def predict(self, items: list[PredictItem]) -> list[PredictOutput]:
            return self.core.predict(items)

        @bentoml.api  # type: ignore[untyped-decorator]
        def status(self) -> RunnerStatus:
            return RunnerStatus(framework=framework, models=sorted(self.core.models))

    return bentoml.service(
        name=f"{framework}_runner",
        workers=1,
        runner_connection=RUNNER_CONNECTION,
        **_resources(framework),
    )(Runner)


SklearnRunner = _runner("sklearn", "scikit-learn models.")
XGBoostRunner = _runner("xgboost", "XGBoost models.")
TorchRunner = _runner("torch", "PyTorch models: eval mode, deterministic kernels, fixed threads.")
RUNNER_SERVICES = {"sklearn": SklearnRunner, "xgboost": XGBoostRunner, "torch": TorchRunner}
