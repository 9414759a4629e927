"""A real `bentoml serve services.service:Gateway` in a subprocess, for end-to-end tests.

    with serve_gateway(env={"SERVING_MODELS": "..."}) as server:
        httpx.get(f"{server.base_url}/ready")

The server inherits this process's environment (BENTOML_HOME of the test store, DB_URL, ...)
plus `env`, answers on 127.0.0.1 only, and is stopped with every process it started (the BentoML
arbiter, the gateway and each runner worker) when the block ends, whatever happened inside.
"""

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICE = "services.service:Gateway"
STARTUP_TIMEOUT_S = 120.0  # about 20 s on the 2-core reference machine; leave room under load
STOP_TIMEOUT_S = 20.0


class ServerFailed(RuntimeError):
    """The server exited or did not become ready in time; the message ends with its log."""


@dataclass(frozen=True)
class RunningServer:
    """A started server: where it answers, and where its output goes."""

    base_url: str
    pid: int
    log_path: Path
    process: "subprocess.Popen[bytes] | None" = None

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    def errors(self, containing: str = "", limit: int = 20) -> str:
        """The server log's error lines with `containing` (the first `limit`), for a report."""
        text = _tail(self.log_path, 100_000)
        found = [
            line for line in text.splitlines() if '"level": "error"' in line and containing in line
        ]
        return "\n".join(line[:600] for line in found[:limit])

    def workers(self, service_name: str) -> list[psutil.Process]:
        """The live worker processes of one BentoML service (`gateway`, `sklearn_runner`)."""
        found = []
        for child in psutil.Process(self.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                arguments = child.cmdline()
                if any(
                    flag == "--service-name" and value == service_name
                    for flag, value in itertools.pairwise(arguments)
                ):
                    found.append(child)
        return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def serve_gateway(
    *,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    startup_timeout_s: float = STARTUP_TIMEOUT_S,
    target: str = SERVICE,
) -> Iterator[RunningServer]:
    """Start the gateway (the source tree's service, or `target`: a built bento's tag), wait
    until GET /ready answers 200, yield it, then stop it."""
    port = port or free_port()
    environment = {**os.environ, **(env or {})}
    # `bentoml serve` sets up its own multiprocess metrics directory for its workers.
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_path = Path(tempfile.mkstemp(prefix="gateway-server-", suffix=".log")[1])
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [_bentoml(), "serve", target, "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so every worker can be stopped
        )
    server = RunningServer(
        base_url=f"http://127.0.0.1:{port}", pid=process.pid, log_path=log_path, process=process
    )
    try:
        wait_ready(server, process, timeout_s=startup_timeout_s)
        yield server
    finally:
        stop(process)
        log_path.unlink(missing_ok=True)


@dataclass(frozen=True)
class ExitedServer:
    """A server that was expected to refuse to start."""

    returncode: int | None  # None: still running when the time ran out (then stopped)
    log: str
    port_answered: bool  # whether its port accepted a TCP connection at any time


def run_until_exit(
    *, env: Mapping[str, str] | None = None, timeout_s: float = STARTUP_TIMEOUT_S
) -> ExitedServer:
    """Start the gateway, watch its port, and wait for it to exit by itself (stopped if it has
    not within `timeout_s`)."""
    port = free_port()
    environment = {**os.environ, **(env or {})}
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_path = Path(tempfile.mkstemp(prefix="gateway-server-", suffix=".log")[1])
    answered = False
    try:
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [_bentoml(), "serve", SERVICE, "--host", "127.0.0.1", "--port", str(port)],
                cwd=REPO_ROOT,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + timeout_s
            while process.poll() is None and time.monotonic() < deadline:
                with socket.socket() as probe:
                    probe.settimeout(0.2)
                    answered = answered or probe.connect_ex(("127.0.0.1", port)) == 0
                time.sleep(0.2)
            returncode = process.poll()
        finally:
            stop(process)
        return ExitedServer(returncode, _tail(log_path, 400), answered)
    finally:
        log_path.unlink(missing_ok=True)


def wait_ready(
    server: RunningServer, process: subprocess.Popen[bytes], *, timeout_s: float
) -> None:
    """Poll GET /ready until it answers 200; ServerFailed if the server exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=server.base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ServerFailed(
                    f"the server exited with {process.returncode} before it was ready:\n"
                    + server.log_tail()
                )
            with contextlib.suppress(httpx.TransportError):
                if client.get("/ready").status_code == 200:
                    return
            time.sleep(0.2)
    raise ServerFailed(f"/ready did not answer 200 within {timeout_s} s:\n" + server.log_tail())


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, then SIGKILL whatever is left after STOP_TIMEOUT_S.

    BentoML starts each worker in a process group of its own, so the workers are found as the
    server's descendants before it stops, and any that outlive it are ended one by one.
    """
    try:
        workers = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        workers = []
    _signal_group(process.pid, signal.SIGTERM)  # start_new_session: its pid is its group
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _signal_group(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_S)
    _, alive = psutil.wait_procs(workers, timeout=STOP_TIMEOUT_S)
    for worker in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            worker.kill()
    psutil.wait_procs(alive, timeout=STOP_TIMEOUT_S)


def _signal_group(group: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signum)


def _bentoml() -> str:
    return str(Path(sys.executable).parent / "bentoml")


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no server log)"
    return "\n".join(text.splitlines()[-lines:])
