"""Class probabilities from the runners: per-framework coalescing, a timeout, latency metrics,
and runner readiness."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping

import numpy as np
import numpy.typing as npt

from services.batching import MicroBatcher
from services.catalog import ServedModel
from services.errors import AppError, InferenceTimeout, ModelNotLoaded, RunnerError
from services.observability.metrics import COALESCED_ROWS, INFERENCE_LATENCY
from services.runners.clients import RunnerClient
from services.runners.protocol import PredictItem, PredictOutput
from services.settings import ServingSettings

logger = logging.getLogger("services.pipeline")


class Coalescer(MicroBatcher[PredictItem, PredictOutput]):
    """Per-runner coalescing of prediction requests, weighted by rows.

    Every hop into a BentoML service costs more CPU than a small model's forward pass, so
    batching only inside the runner (after each request paid its hop) buys little: the gateway
    batches first.
    """

    def __init__(
        self,
        call: Callable[[list[PredictItem]], Awaitable[list[PredictOutput]]],
        *,
        framework: str,
        max_in_flight: int,
        max_rows: int,
    ) -> None:
        observer = COALESCED_ROWS.labels(framework=framework)
        super().__init__(
            call,
            max_in_flight=max_in_flight,
            max_weight=max_rows,
            weight=lambda item: len(item.rows),
            observe=observer.observe,
        )


class Inference:
    """Routes each prediction to its framework's runner, through a coalescer when batching."""

    def __init__(self, runners: Mapping[str, RunnerClient], settings: ServingSettings) -> None:
        self.runners = dict(runners)
        self.settings = settings
        self.coalescers = {
            framework: Coalescer(
                runner.predict,
                framework=framework,
                max_in_flight=settings.coalesce_in_flight,
                max_rows=settings.max_batch_size,
            )
            for framework, runner in self.runners.items()
        }

    async def probabilities(
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

    async def readiness(self, models: Iterable[ServedModel]) -> dict[str, tuple[bool, str]]:
        """Per framework: its runner is up with every served model loaded and golden-checked."""
        expected: dict[str, set[str]] = {}
        for model in models:
            expected.setdefault(model.ref.framework, set()).add(model.ref.tag)
        results = await asyncio.gather(
            *(self._runner_ready(framework, tags) for framework, tags in expected.items())
        )
        return {
            f"runner:{framework}": result
            for framework, result in zip(expected, results, strict=True)
        }

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
