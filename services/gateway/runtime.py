"""The gateway's live state: served models, runner clients, coalescers, readiness."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from services.errors import AppError, InferenceTimeout, ModelNotLoaded
from services.gateway.coalescer import Coalescer
from services.gateway.registry import ModelRegistry, ServedModel
from services.observability import INFERENCE_LATENCY
from services.runners.protocol import PredictItem, PredictOutput, RunnerStatus
from services.settings import ServingSettings

if TYPE_CHECKING:
    from services.persistence import PredictionStore

logger = logging.getLogger("services.gateway")
ReadinessProbe = Callable[[], Awaitable[tuple[bool, str]]]


class RunnerClient(Protocol):
    """The async face of a runner: a BentoML remote proxy, or the local instance in-process."""

    def predict(self, items: list[PredictItem]) -> Awaitable[list[PredictOutput]]: ...

    def status(self) -> Awaitable[RunnerStatus]: ...


class RunnerProxy:
    """Calls a runner dependency: over HTTP when served, in-process under `to_asgi()`."""

    def __init__(self, dependency: Any) -> None:
        self._dependency = dependency

    async def predict(self, items: list[PredictItem]) -> list[PredictOutput]:
        outputs = await self._dependency.to_async.predict(items)
        return [PredictOutput.model_validate(output) for output in outputs]

    async def status(self) -> RunnerStatus:
        return RunnerStatus.model_validate(await self._dependency.to_async.status())


class RunnerError(AppError):
    status_code = 502
    error_code = "runner_error"


class GatewayRuntime:
    """Routes each prediction to its framework's runner, through a coalescer when batching."""

    def __init__(
        self,
        *,
        registry: ModelRegistry,
        runners: Mapping[str, RunnerClient],
        settings: ServingSettings,
        store: "PredictionStore | None" = None,
        auth_enabled: bool = False,
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.store = store
        self.auth_enabled = auth_enabled
        self.authenticator: Any = None
        self.signer: Any = None
        self.limiter: Any = None
        self.cache: Any = None
        self.redis: Any = None
        self.runners = dict(runners)
        self.probes: dict[str, ReadinessProbe] = {}
        self.coalescers = {
            framework: Coalescer(
                runner.predict,
                framework=framework,
                max_in_flight=settings.coalesce_in_flight,
                max_rows=settings.max_batch_size,
            )
            for framework, runner in self.runners.items()
        }

    async def predict(
        self, model: ServedModel, matrix: npt.NDArray[np.float32]
    ) -> list[list[float]]:
        """Class probabilities for each row of `matrix` (already validated and encoded)."""
        framework = model.ref.framework
        if framework not in self.runners:
            raise ModelNotLoaded(f"no runner serves {framework} models")
        item = PredictItem(model=model.ref.tag, rows=matrix.tolist())
        started = time.perf_counter()
        try:
            output = await asyncio.wait_for(
                self._call(framework, item), timeout=self.settings.inference_timeout_s
            )
        except TimeoutError:
            raise InferenceTimeout(
                f"inference took longer than {self.settings.inference_timeout_s} s"
            ) from None
        except AppError:
            raise
        except Exception as exc:
            raise _runner_failure(framework, exc) from exc
        INFERENCE_LATENCY.labels(model=model.ref.name, version=model.ref.version).observe(
            time.perf_counter() - started
        )
        return output.probabilities

    async def _call(self, framework: str, item: PredictItem) -> PredictOutput:
        if self.settings.batching:
            return await self.coalescers[framework].submit(item)
        outputs = await self.runners[framework].predict([item])
        return outputs[0]

    async def close(self) -> None:
        """Release pooled connections (database, Redis)."""
        if self.store is not None:
            await self.store.close()
        if self.redis is not None:
            await self.redis.close()

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Every runner up with its models loaded and golden-checked, plus registered probes."""
        expected: dict[str, set[str]] = {}
        for model in self.registry.all():
            expected.setdefault(model.ref.framework, set()).add(model.ref.tag)
        results = await asyncio.gather(
            *(self._runner_ready(framework, tags) for framework, tags in expected.items()),
            *(probe() for probe in self.probes.values()),
        )
        names = [f"runner:{framework}" for framework in expected] + list(self.probes)
        checks = {name: detail for name, (_, detail) in zip(names, results, strict=True)}
        return all(ok for ok, _ in results), checks

    async def _runner_ready(self, framework: str, tags: set[str]) -> tuple[bool, str]:
        runner = self.runners.get(framework)
        if runner is None:
            return False, "no runner"
        try:
            status = await asyncio.wait_for(runner.status(), timeout=2.0)
        except Exception:
            return False, "unavailable"
        missing = sorted(tags - set(status.models))
        return (False, f"models not loaded: {missing}") if missing else (True, "ok")


def _runner_failure(framework: str, exc: Exception) -> AppError:
    from bentoml.exceptions import ServiceUnavailable

    logger.error("%s runner call failed: %r", framework, exc, exc_info=exc)
    if isinstance(exc, (ServiceUnavailable, ConnectionError, OSError)):
        return ModelNotLoaded(f"the {framework} runner is not available")
    return RunnerError(f"the {framework} runner failed")
