"""Class probabilities from the runners: per-framework coalescing, a timeout, a circuit breaker
per runner, latency metrics, and runner readiness."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from services.batching import MicroBatcher
from services.catalog import ServedModel
from services.circuit import CircuitBreaker
from services.errors import AppError, InferenceTimeout, ModelNotLoaded, RunnerError
from services.observability.metrics import (
    COALESCED_ROWS,
    INFERENCE_LATENCY,
    breaker_listener,
    report_up,
)
from services.runners.clients import LocalRunner, RunnerClient
from services.runners.protocol import PredictItem, PredictOutput
from services.settings import ServingSettings

logger = logging.getLogger("services.pipeline")
PROBE_TIMEOUT_S = 2.0
ResultT = TypeVar("ResultT")


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
        self.guards = {
            framework: RunnerGuard(framework, pause_s=settings.runner_retry_after_s)
            for framework in self.runners
        }
        self.breakers = {framework: guard.breaker for framework, guard in self.guards.items()}

    async def probabilities(
        self, model: ServedModel, matrix: npt.NDArray[np.float32]
    ) -> list[list[float]]:
        """Class probabilities for each row of `matrix` (already validated and encoded)."""
        item = PredictItem(model=model.ref.tag, rows=matrix.tolist())
        output = await self._guarded(model, lambda: self._call(model.ref.framework, item))
        return output.probabilities

    async def probability_matrix(
        self, model: ServedModel, matrix: npt.NDArray[np.float32], *, timeout_s: float
    ) -> npt.NDArray[np.float64]:
        """The same probabilities for a large block of rows (a batch job's chunk): one runner
        call, not coalesced (the block is a batch already); an in-process runner takes the
        matrix as it is, a remote one over its usual protocol."""
        framework = model.ref.framework

        async def call() -> npt.NDArray[np.float64]:
            runner = self.runners[framework]
            if isinstance(runner, LocalRunner):
                return await runner.predict_matrix(model.ref.tag, matrix)
            item = PredictItem(model=model.ref.tag, rows=matrix.tolist())
            outputs = await runner.predict([item])
            return np.asarray(outputs[0].probabilities, dtype=np.float64)

        return await self._guarded(model, call, timeout_s=timeout_s)

    async def _guarded(
        self,
        model: ServedModel,
        call: Callable[[], Awaitable[ResultT]],
        *,
        timeout_s: float | None = None,
    ) -> ResultT:
        """`call()` behind the runner's breaker and a timeout: the inference timeout, whose
        expiry opens the breaker; or `timeout_s` (a batch job's large block), whose expiry says
        nothing about the runner's health and leaves the breaker, and live traffic, alone."""
        timeout = timeout_s or self.settings.inference_timeout_s
        framework = model.ref.framework
        if framework not in self.runners:
            raise ModelNotLoaded(f"no runner serves {framework} models")
        guard = self.guards[framework]
        breaker = guard.breaker
        guard.admit(lambda: self._probe(framework))
        started = time.perf_counter()
        task = asyncio.ensure_future(call())
        opened = guard.opened()
        try:
            done, _ = await asyncio.wait(
                (task, opened), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        except BaseException:  # the request itself was cancelled (timeout, disconnect)
            task.cancel()
            raise
        if task not in done:
            task.cancel()
            if not opened.done():
                if timeout_s is None:
                    breaker.failed()
                raise InferenceTimeout(
                    f"inference took longer than {timeout:g} s",
                    retry_after_s=breaker.retry_after_s(),
                )
            # Another call found the runner gone: this one would wait for nothing.
            raise ModelNotLoaded(
                f"the {framework} runner is not available", retry_after_s=breaker.retry_after_s()
            )
        try:
            output = task.result()
        except AppError:
            breaker.succeeded()  # the runner answered: with an error about this request
            raise
        except Exception as exc:
            raise _runner_failure(framework, exc, breaker) from exc
        breaker.succeeded()
        INFERENCE_LATENCY.labels(model=model.ref.name, version=model.ref.version).observe(
            time.perf_counter() - started
        )
        return output

    async def _probe(self, framework: str) -> None:
        """While a runner's breaker is open: one status call, in the background, that closes
        the breaker when the runner answers again (no client request waits on a dead runner)."""
        try:
            await asyncio.wait_for(self.runners[framework].status(), timeout=PROBE_TIMEOUT_S)
        except Exception:
            self.breakers[framework].failed()
            report_up(f"runner:{framework}", False)
            return
        self.breakers[framework].succeeded()
        report_up(f"runner:{framework}", True)

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
        # The probe moves the breaker too, so /ready and admission agree about every runner;
        # only a slow answer does not open it (on a saturated CPU that is no sign of a dead
        # runner, and refusing everyone would turn a slow probe into an outage).
        breaker = self.breakers[framework]
        try:
            status = await asyncio.wait_for(runner.status(), timeout=PROBE_TIMEOUT_S)
        except TimeoutError:
            report_up(f"runner:{framework}", False)
            return False, f"unavailable (no answer within {PROBE_TIMEOUT_S:g} s)"
        except Exception:
            breaker.failed()
            report_up(f"runner:{framework}", False)
            return False, "unavailable"
        missing = sorted(tags - set(status.models))
        if missing:
            breaker.failed()
            report_up(f"runner:{framework}", False)
            return False, f"models not loaded: {missing}"
        breaker.succeeded()
        report_up(f"runner:{framework}", True)
        return True, "ok"


class RunnerGuard:
    """A runner's circuit breaker, plus a signal that wakes the calls already waiting on it.

    A runner that is gone (killed, restarting) holds every call: its socket still accepts, and
    nobody answers until a new process has loaded its models. Once one call has failed, the
    others waiting get 503 at once, new requests are refused at once (Retry-After), and one
    background status probe per pause finds out when the runner is back.
    """

    def __init__(self, framework: str, *, pause_s: float) -> None:
        self.framework = framework
        self._gauges = breaker_listener(f"runner:{framework}")
        self.breaker = CircuitBreaker(pause_s=pause_s, on_change=self._changed)
        self._opened: asyncio.Future[None] | None = None
        self._probe: asyncio.Task[None] | None = None  # a strong reference while it runs

    def opened(self) -> "asyncio.Future[None]":
        """Resolved when the breaker opens (from closed)."""
        if self._opened is None:
            self._opened = asyncio.get_running_loop().create_future()
        return self._opened

    def admit(self, probe: Callable[[], Awaitable[None]]) -> None:
        """Pass while closed; while open, refuse (starting the one probe per pause)."""
        if not self.breaker.degraded:
            return
        if self.breaker.allow() and (self._probe is None or self._probe.done()):
            self._probe = asyncio.get_running_loop().create_task(probe())  # type: ignore[arg-type]
        raise ModelNotLoaded(
            f"the {self.framework} runner is not available",
            retry_after_s=self.breaker.retry_after_s(),
        )

    def _changed(self, degraded: bool) -> None:
        self._gauges(degraded)
        if degraded and self._opened is not None and not self._opened.done():
            self._opened.set_result(None)
        if not degraded:
            self._opened = None


def _runner_failure(framework: str, exc: Exception, breaker: CircuitBreaker) -> AppError:
    logger.error("%s runner call failed: %r", framework, exc, exc_info=exc)
    if _unreachable(exc):
        breaker.failed()
        return ModelNotLoaded(
            f"the {framework} runner is not available", retry_after_s=breaker.retry_after_s()
        )
    breaker.succeeded()  # it answered, with a failure: not a reason to refuse everyone else
    return RunnerError(f"the {framework} runner failed")


def _unreachable(exc: Exception) -> bool:
    """Whether the runner could not be reached or dropped the call (gone, restarting)."""
    import aiohttp
    import httpx
    from bentoml.exceptions import ServiceUnavailable

    return isinstance(
        exc,
        (
            ServiceUnavailable,
            ConnectionError,
            OSError,
            httpx.TransportError,
            aiohttp.ClientConnectionError,
            aiohttp.ServerDisconnectedError,
        ),
    )
