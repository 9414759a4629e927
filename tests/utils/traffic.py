"""Steady background traffic against a served gateway, for fault-injection tests.

A thread runs `clients` workers that POST predictions back to back (each on its own keep-alive
connection) and a poller that GETs /ready every `ready_every_s`; every answer is recorded with
its time, so a test can ask what happened before, during and after the fault it injects.

    with Traffic(server.base_url, bodies) as traffic:
        ...inject a fault...
    traffic.outcomes, traffic.readiness
"""

import asyncio
import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

import httpx

PREDICTIONS = "/api/v1/predictions"


@dataclass(frozen=True)
class Outcome:
    """One prediction request: when it ran and what came back (status None: transport error)."""

    started: float
    finished: float
    status: int | None
    code: str | None = None
    ids: tuple[str, ...] = ()
    retry_after: str | None = None
    error: str | None = None
    model: str | None = None

    @property
    def seconds(self) -> float:
        return self.finished - self.started


@dataclass(frozen=True)
class ReadySample:
    at: float  # when the answer arrived
    status: int | None
    checks: dict[str, Any] = field(default_factory=dict)


class Traffic:
    """Background predictions and /ready polls until the block ends (or `stop()`)."""

    def __init__(
        self,
        base_url: str,
        bodies: Sequence[dict[str, Any]],
        *,
        clients: int = 8,
        ready_every_s: float = 0.1,
        timeout_s: float = 30.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.base_url = base_url
        self.bodies = list(bodies)
        self.clients = clients
        self.ready_every_s = ready_every_s
        self.timeout_s = timeout_s
        self.headers = {"Cache-Control": "no-cache", **(headers or {})}
        self.outcomes: list[Outcome] = []
        self.readiness: list[ReadySample] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> "Traffic":
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=self.timeout_s + 10)

    def summary(self) -> str:
        """Counts per status (and error code), for the test log."""
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            key = f"{outcome.status}" + (f" {outcome.code}" if outcome.code else "")
            counts[key] = counts.get(key, 0) + 1
        slowest = max((o.seconds for o in self.outcomes), default=0.0)
        return f"{len(self.outcomes)} requests {counts}, slowest {slowest:.2f} s"

    def between(self, start: float, end: float) -> list[Outcome]:
        """Requests that started in [start, end)."""
        return [o for o in self.outcomes if start <= o.started < end]

    async def _run(self) -> None:
        await asyncio.gather(
            self._poll_ready(), *(self._predict(number) for number in range(self.clients))
        )

    async def _predict(self, number: int) -> None:
        bodies = itertools.cycle(self.bodies[number:] + self.bodies[:number])
        async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout_s) as client:
            while not self._stopping.is_set():
                started = time.monotonic()
                body = next(bodies)
                model = body.get("model")
                try:
                    response = await client.post(PREDICTIONS, json=body, headers=self.headers)
                except httpx.HTTPError as exc:
                    failed = Outcome(started, time.monotonic(), None, error=repr(exc))
                    self.outcomes.append(replace(failed, model=model))
                    await asyncio.sleep(0.05)
                    continue
                self.outcomes.append(replace(_outcome(started, response), model=model))
                if response.status_code >= 500:
                    await asyncio.sleep(0.05)  # as a client with a short backoff would

    async def _poll_ready(self) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5.0) as client:
            while not self._stopping.is_set():
                try:
                    response = await client.get("/ready")
                except httpx.HTTPError:
                    self.readiness.append(ReadySample(time.monotonic(), None))
                else:
                    document = response.json()
                    checks = (
                        document.get("data", {}).get("checks")
                        or document.get("error", {}).get("details", {}).get("checks")
                        or {}
                    )
                    self.readiness.append(
                        ReadySample(time.monotonic(), response.status_code, checks)
                    )
                await asyncio.sleep(self.ready_every_s)


def _outcome(started: float, response: httpx.Response) -> Outcome:
    finished = time.monotonic()
    try:
        document = response.json()
    except ValueError:
        return Outcome(started, finished, response.status_code, error=response.text[:200])
    if response.status_code == 201:
        ids = tuple(p["id"] for p in document["data"]["predictions"])
        return Outcome(started, finished, 201, ids=ids)
    return Outcome(
        started,
        finished,
        response.status_code,
        code=document.get("error", {}).get("code"),
        retry_after=response.headers.get("retry-after"),
    )
