"""How the gateway calls a runner: over BentoML's HTTP hop, or in this process."""

import asyncio
from collections.abc import Awaitable
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from services.runners.core import RunnerCore
from services.runners.protocol import PredictItem, PredictOutput, RunnerStatus


class RunnerClient(Protocol):
    """The async face of a runner."""

    def predict(self, items: list[PredictItem]) -> Awaitable[list[PredictOutput]]: ...

    def status(self) -> Awaitable[RunnerStatus]: ...


class RemoteRunner:
    """A runner service composed with `bentoml.depends`: over HTTP when served, in-process
    under `to_asgi()`."""

    def __init__(self, dependency: Any) -> None:
        self._dependency = dependency

    async def predict(self, items: list[PredictItem]) -> list[PredictOutput]:
        outputs = await self._dependency.to_async.predict(items)
        return [PredictOutput.model_validate(output) for output in outputs]

    async def status(self) -> RunnerStatus:
        return RunnerStatus.model_validate(await self._dependency.to_async.status())


class LocalRunner:
    """A RunnerCore in this process, predicting in a worker thread (as BentoML would)."""

    def __init__(self, core: RunnerCore) -> None:
        self.core = core
        self.calls = 0

    async def predict(self, items: list[PredictItem]) -> list[PredictOutput]:
        self.calls += 1
        return await asyncio.to_thread(self.core.predict, items)

    async def predict_matrix(
        self, tag: str, matrix: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float64]:
        """Probabilities for an encoded block of rows, without the list protocol."""
        self.calls += 1
        return await asyncio.to_thread(self.core.predict_matrix, tag, matrix)

    async def status(self) -> RunnerStatus:
        return RunnerStatus(framework=self.core.framework, models=sorted(self.core.models))
