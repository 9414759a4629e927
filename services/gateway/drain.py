"""Graceful shutdown of a gateway worker: SIGTERM turns /ready 503 at once, then uvicorn stops
accepting, finishes the requests in flight within SERVER_DRAIN_GRACE_S, and only then runs the
shutdown hooks (which close the database pool after the last commit).

uvicorn already waits for in-flight requests on SIGTERM; this adds the readiness flip and bounds
the wait (BentoML starts uvicorn without a graceful-shutdown timeout, so a stuck request would
hold the pod until Kubernetes kills it). The runners outlive the gateway (runners/lifecycle.py).
"""

import logging
import math
import signal
import threading
from types import FrameType
from typing import Any

import uvicorn

logger = logging.getLogger("services.gateway")


class Drain:
    """Whether this worker is shutting down; readiness reports it before anything else."""

    def __init__(self) -> None:
        self.draining = False

    def start(self) -> None:
        self.draining = True


def drain_on_sigterm(drain: Drain, grace_s: float) -> None:
    """From now on, SIGTERM first marks `drain`, then goes to whoever handled it before (uvicorn,
    whose wait for in-flight requests is bounded to `grace_s`). Call from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return  # served in-process (tests, to_asgi): there is no process signal to handle
    previous: Any = signal.getsignal(signal.SIGTERM)
    server = getattr(previous, "__self__", None)
    if isinstance(server, uvicorn.Server):
        server.config.timeout_graceful_shutdown = math.ceil(grace_s)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if not drain.draining:
            logger.warning("SIGTERM: not ready; finishing requests in flight (up to %g s)", grace_s)
        drain.start()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
