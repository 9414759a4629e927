"""Runners outlive the gateway: on SIGTERM a runner keeps serving until no gateway worker is
left (bounded), so requests the gateway is still finishing get their predictions.

BentoML's arbiter (circus) sends SIGTERM to every worker at once; uvicorn in a runner would
stop taking calls immediately, and the gateway's in-flight requests would fail with 503.
"""

import itertools
import logging
import os
import signal
import threading
import time
from types import FrameType
from typing import Any

import psutil  # type: ignore[import-untyped]

logger = logging.getLogger("services.runners")
POLL_S = 0.1


def outlive_workers_of(service_name: str, *, longest_s: float) -> None:
    """From now on, SIGTERM waits (in a thread; the runner keeps serving) until no sibling
    worker of `service_name` is alive, or `longest_s` passed, then goes to whoever handled
    SIGTERM before (uvicorn). Call from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return  # served in-process (tests, to_asgi): there is no process signal to handle
    previous: Any = signal.getsignal(signal.SIGTERM)
    started = threading.Event()

    def stop_later(signum: int, frame: FrameType | None) -> None:
        deadline = time.monotonic() + longest_s
        while time.monotonic() < deadline and _workers_alive(service_name):
            time.sleep(POLL_S)
        logger.info("SIGTERM: no %s worker left to serve; stopping", service_name)
        if callable(previous):
            previous(signum, frame)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if started.is_set():
            return
        started.set()
        threading.Thread(target=stop_later, args=(signum, frame), daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)


def _workers_alive(service_name: str) -> bool:
    """Whether a sibling process (same parent: BentoML's arbiter) serves `service_name`."""
    try:
        siblings = psutil.Process(os.getppid()).children()
    except psutil.Error:
        return False
    for process in siblings:
        try:
            arguments = process.cmdline()
        except psutil.Error:
            continue
        if process.pid != os.getpid() and _serves(arguments, service_name):
            return True
    return False


def _serves(arguments: list[str], service_name: str) -> bool:
    for flag, value in itertools.pairwise(arguments):
        if flag == "--service-name" and value == service_name:
            return True
    return False
