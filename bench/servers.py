"""Servers under test: started in a session of their own, stopped with their whole process tree.

BentoML's arbiter starts each worker in a session of its own, and LitServe forks its workers,
so stopping a server's process group alone would orphan processes: `Server.stop` looks up the
whole tree by PID first. `running()` stops every server however the block ends
(`sigterm_as_interrupt()` makes SIGTERM one of those ends). Nothing is ever stopped by name.
"""

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One server process (and its children) on 127.0.0.1:`port`, output into `log_path`."""

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], log_path: Path, port: int
    ) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_path
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl+C reaches the harness, which stops the server
            )

    def wait_ready(self, path: str, timeout: float) -> float:
        """Poll GET `path` until it answers 2xx; the seconds that took. Raises on exit/timeout."""
        started = time.monotonic()
        last = ""
        while True:
            self.check_alive()
            status, text = http("GET", self.base_url + path, None, {})
            if 200 <= status < 300:
                return time.monotonic() - started
            last = f"GET {path} -> {status} {text[:200]}"
            if time.monotonic() - started > timeout:
                raise RuntimeError(
                    f"{self.name}: not ready after {timeout:.0f} s (last: {last});"
                    f" log: {self.log_path}\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name}: server exited with {self.process.returncode};"
                f" log: {self.log_path}\n{self.log_tail()}"
            )

    def processes(self) -> list[Any]:
        """The server's process and all its descendants (psutil.Process)."""
        return process_tree(self.process.pid if self.process else -1)

    def cpu_seconds(self) -> dict[str, float]:
        """User + system CPU seconds so far of the server's processes, by role."""
        seconds: dict[str, float] = {}
        root = self.process.pid if self.process else -1
        for process in self.processes():
            with contextlib.suppress(psutil.Error):
                role = process_role(process, root)
                times = process.cpu_times()
                seconds[role] = seconds.get(role, 0.0) + times.user + times.system
        return seconds

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to the server, SIGKILL to whatever of its tree is left after a grace period."""
        process, self.process = self.process, None
        if process is not None:
            stop_tree(process)


def stop_tree(process: "subprocess.Popen[Any]") -> None:
    """Stop a process started with `start_new_session=True` and every descendant it has.

    BentoML's arbiter starts each worker in a session of its own, so signalling the process
    group alone would orphan the workers: the whole tree is looked up first by PID.
    """
    tree = process_tree(process.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)  # the arbiter stops its workers itself
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    _, alive = psutil.wait_procs(tree, timeout=10)
    for straggler in alive:
        with contextlib.suppress(psutil.Error):
            straggler.kill()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=5)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def process_role(process: Any, root: int) -> str:
    """BentoML workers by service name (`entry` for the entry service), else main/worker."""
    args = process.cmdline()
    if "--service-name" in args[:-1]:
        return str(args[args.index("--service-name") + 1])
    if "--fd" in args:
        return "entry"
    if process.pid == root:
        return "arbiter" if "bentoml" in " ".join(args) else "main"
    return "worker"


def process_tree(pid: int) -> list[Any]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except (psutil.Error, ValueError):
        return []


def http(
    method: str, url: str, body: bytes | None, headers: dict[str, str], timeout: float = 10
) -> tuple[int, str]:
    """(status, body text); status 0 with the reason when no HTTP answer came."""
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, repr(exc)


@contextlib.contextmanager
def running(servers: list[Server]) -> Iterator[list[Server]]:
    """Stop every server on exit, however the block ends."""
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt, so `finally` blocks (stop, drop) still run."""

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
