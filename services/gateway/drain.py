"""Graceful shutdown of a gateway worker.

On SIGTERM the worker, at once: answers /ready with 503 (`draining`), refuses new requests with
503 `shutting_down` + Retry-After + `Connection: close` (unambiguous for the client: not
processed, retry elsewhere; a reset connection would leave it guessing), and keeps finishing
the requests it had admitted. When the last one is done, or after SERVER_DRAIN_GRACE_S, it
hands SIGTERM to uvicorn, which closes the listener and connections and runs the shutdown
hooks (the database pool closes after the last commit). The runners outlive it
(runners/lifecycle.py).
"""

import asyncio
import logging
import signal
import threading
from types import FrameType
from typing import Any

import uvicorn

logger = logging.getLogger("services.gateway")
# uvicorn's own wait once we hand over: only probes and idle connections are left by then.
UVICORN_GRACE_S = 5


class Drain:
    """Whether this worker is shutting down, and how many admitted requests are unfinished."""

    def __init__(self) -> None:
        self.draining = False
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._handover: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.draining = True

    def enter(self) -> None:
        """An admitted request begins."""
        self.in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        """An admitted request has its response."""
        self.in_flight -= 1
        if self.in_flight <= 0:
            self._idle.set()

    async def finished(self, grace_s: float) -> bool:
        """Wait until no admitted request is left (True) or `grace_s` passed (False)."""
        try:
            async with asyncio.timeout(grace_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True


def drain_on_sigterm(drain: Drain, grace_s: float) -> None:
    """From now on, SIGTERM starts `drain` and hands the signal to its previous handler
    (uvicorn's) once the admitted requests are done or `grace_s` passed. Call from the main
    thread, inside the running event loop (an on_startup hook)."""
    if threading.current_thread() is not threading.main_thread():
        return  # served in-process (tests, to_asgi): there is no process signal to handle
    loop = asyncio.get_running_loop()
    previous: Any = signal.getsignal(signal.SIGTERM)
    server = getattr(previous, "__self__", None)
    if isinstance(server, uvicorn.Server):
        server.config.timeout_graceful_shutdown = UVICORN_GRACE_S

    async def hand_over(signum: int, frame: FrameType | None) -> None:
        finished = await drain.finished(grace_s)
        if not finished:
            logger.error("drain: %d request(s) unfinished after %g s", drain.in_flight, grace_s)
        logger.warning("drain: done; stopping this worker")
        if callable(previous):
            previous(signum, frame)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if drain.draining:
            return
        drain.start()
        logger.warning(
            "SIGTERM: not ready, refusing new requests, finishing %d in flight (up to %g s)",
            drain.in_flight,
            grace_s,
        )
        loop.call_soon_threadsafe(_start_handover, drain, hand_over(signum, frame))

    signal.signal(signal.SIGTERM, on_sigterm)


def _start_handover(drain: Drain, handover: Any) -> None:
    drain._handover = asyncio.get_running_loop().create_task(handover)
