"""Load benchmark: single-row predictions against real `bentoml serve` processes.

    .venv/bin/python -m bench.load            # the default run: about 10 minutes on 2 cores
    .venv/bin/python -m bench.load --models cancer-rf --concurrency 32 --rounds 1

For every configuration the script starts its own server (`bentoml serve ... --port <free>`,
with the configuration's env over BASE_ENV), waits for its readiness probe and one successful
prediction per model, then measures each (model, concurrency) cell: a warm-up, then a fixed
duration of closed-loop load on N keep-alive connections, each sending
`POST /api/v1/predictions {"model": NAME, "inputs": [one golden row]}` back to back. All the
servers run side by side and take turns cell by cell, and the whole sequence is repeated
`--rounds` times; a cell reports the medians over its rounds. A ratio therefore compares numbers
measured seconds apart, which matters on a machine shared with other work. Next to req/s and
latency each cell reports the server's CPU time per request (all its processes, from psutil),
which contention disturbs far less than throughput.

Every server it started is stopped, workers included, on exit, error, Ctrl+C or SIGTERM.
The client is `wrk` (C, one thread; durations in whole seconds) when it is installed, else an
asyncio aiohttp client. A benchmark prints numbers and never fails on them: the exit code is 0
unless something broke (a server did not start, a probe request was refused).

Adding a configuration is one line in CONFIGURATIONS: a name, the env it serves with, and
optionally the headers every request carries (an API key, say) and the service to serve.
`--variant NAME:KEY=VALUE,...` adds a gateway configuration for one run, for experiments.
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

REPO = Path(__file__).resolve().parents[1]
REFERENCE_MODELS = ("fraud-xgb", "cancer-rf", "digits-mlp")
GATEWAY = "services.service:Gateway"
PLAIN = "bench.plain_service:PlainGateway"
PREDICT_PATH = "/api/v1/predictions"
if str(REPO) not in sys.path:  # `python bench/load.py` as well as `python -m bench.load`
    sys.path.insert(0, str(REPO))


@dataclass(frozen=True)
class Configuration:
    """One way of serving: a name, the env its server gets, the headers its requests carry."""

    name: str
    env: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    service: str = GATEWAY
    ready_path: str = "/ready"
    description: str = ""
    default: bool = True  # part of a run without --configs


# Every server gets BASE_ENV first and its configuration's env over it. The base switches off
# what the batching comparisons must not measure: the prediction log (it would also write to the
# development database), authentication, rate limits (they would answer 401 and 429) and the
# result cache (one repeated golden row would be answered from it, never by a model). A
# configuration that measures one of them switches it back on, with whatever it needs.
BASE_ENV = {
    "DB_PERSIST_PREDICTIONS": "false",
    "AUTH_ENABLED": "false",
    "RATE_LIMIT_ENABLED": "false",
    "REDIS_CACHE_ENABLED": "false",
}

CONFIGURATIONS: tuple[Configuration, ...] = (
    Configuration(
        "batching",
        {"SERVING_BATCHING": "true"},
        description="this gateway, default settings (gateway coalescing + runner batching)",
    ),
    Configuration(
        "no-batching",
        {"SERVING_BATCHING": "false"},
        description="this gateway, SERVING_BATCHING=false (one runner call per request)",
    ),
    Configuration(
        "plain-bentoml",
        {"SERVING_BATCHING": "true"},
        service=PLAIN,
        ready_path="/readyz",
        description="docs pattern: plain @bentoml.api -> depends(runner), runner batching on",
    ),
    Configuration(
        "coalesce-only",
        {"SERVING_BATCHING": "true"},
        service="bench.coalesce_only:Gateway",
        description="this gateway, coalescing on, runner adaptive batching off (opt-in)",
        default=False,
    ),
    # One more line each, e.g. (bench/overhead.py adds such configurations to this tuple):
    # Configuration("persistence", {"DB_PERSIST_PREDICTIONS": "true", "DB_URL": "postgresql+..."}),
    # Configuration("auth", {"AUTH_ENABLED": "true", "RATE_LIMIT_ENABLED": "true"},
    #               headers={"Authorization": "Bearer ..."}),
)


@dataclass(frozen=True)
class Ratio:
    """A target: `numerator` config's throughput over `denominator`'s, per model and concurrency."""

    label: str
    numerator: str
    denominator: str
    models: tuple[str, ...]
    concurrencies: tuple[int, ...]
    minimum: float


TARGETS: tuple[Ratio, ...] = (
    Ratio("batching pays", "batching", "no-batching", ("cancer-rf",), (32,), 3.0),
    Ratio(
        "batching costs nothing", "batching", "no-batching", ("digits-mlp",), (1, 8, 32, 64), 0.95
    ),
    Ratio("gateway vs the docs pattern", "batching", "plain-bentoml", REFERENCE_MODELS, (32,), 2.0),
    # Shown only when the opt-in coalesce-only configuration ran: the same targets for it.
    Ratio("coalesce-only pays", "coalesce-only", "no-batching", ("cancer-rf",), (32,), 3.0),
    Ratio(
        "coalesce-only costs nothing",
        "coalesce-only",
        "no-batching",
        ("digits-mlp",),
        (1, 8, 32, 64),
        0.95,
    ),
    Ratio(
        "coalesce-only vs the docs pattern",
        "coalesce-only",
        "plain-bentoml",
        REFERENCE_MODELS,
        (32,),
        2.0,
    ),
)


@dataclass
class CellResult:
    """One measured cell. `rps` counts 2xx responses only; `errors` is non-2xx plus transport."""

    config: str
    model: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float = float("nan")  # CPU time of all the server's processes per 2xx response
    cpu_split: dict[str, float] = field(default_factory=dict)  # the same, per process role
    rounds: int = 1


# --------------------------------------------------------------------------- load clients


class LoadClient(Protocol):
    name: str

    def run(
        self, url: str, body: bytes, headers: dict[str, str], concurrency: int, seconds: float
    ) -> CellResult: ...


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
{headers}
non2xx = 0
function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + thread:get("non2xx") end
  local e = summary.errors
  io.write(string.format("BENCH_RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    bad, e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


class WrkClient:
    """wrk with one thread and N connections; a Lua script counts non-2xx responses."""

    name = "wrk"

    def __init__(self, executable: str, scratch: Path) -> None:
        self.executable = executable
        self.scratch = scratch

    def run(
        self, url: str, body: bytes, headers: dict[str, str], concurrency: int, seconds: float
    ) -> CellResult:
        header_lines = "\n".join(
            f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()
        )
        script = self.scratch / "request.lua"
        script.write_text(WRK_SCRIPT.format(body=body.decode(), headers=header_lines))
        command = [
            self.executable,
            "-t1",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "30s",
            "-s",
            str(script),
            url,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        line = next(
            (row for row in done.stdout.splitlines() if row.startswith("BENCH_RESULT ")), None
        )
        if done.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
        requests, micros, non2xx, transport, p50, p99 = (int(x) for x in line.split()[1:])
        elapsed = micros / 1e6
        return CellResult(
            config="",
            model="",
            concurrency=concurrency,
            requests=requests + transport,
            errors=non2xx + transport,
            seconds=elapsed,
            rps=(requests - non2xx) / elapsed if elapsed else 0.0,
            p50_ms=p50 / 1000,
            p99_ms=p99 / 1000,
        )


class PythonClient:
    """asyncio + aiohttp: N workers, each on its own keep-alive connection, back to back."""

    name = "python-aiohttp"

    def run(
        self, url: str, body: bytes, headers: dict[str, str], concurrency: int, seconds: float
    ) -> CellResult:
        return asyncio.run(self._run(url, body, headers, concurrency, seconds))

    async def _run(
        self, url: str, body: bytes, headers: dict[str, str], concurrency: int, seconds: float
    ) -> CellResult:
        import aiohttp

        latencies: list[float] = []
        counts = {"ok": 0, "errors": 0}
        all_headers = {"Content-Type": "application/json", **headers}
        connector = aiohttp.TCPConnector(limit=concurrency)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            started = time.perf_counter()
            deadline = started + seconds

            async def worker() -> None:
                while time.perf_counter() < deadline:
                    sent = time.perf_counter()
                    try:
                        async with session.post(url, data=body, headers=all_headers) as response:
                            await response.read()
                            ok = 200 <= response.status < 300
                    except (aiohttp.ClientError, TimeoutError):
                        ok = False
                    latencies.append(time.perf_counter() - sent)
                    counts["ok" if ok else "errors"] += 1

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
        latencies.sort()
        return CellResult(
            config="",
            model="",
            concurrency=concurrency,
            requests=len(latencies),
            errors=counts["errors"],
            seconds=elapsed,
            rps=counts["ok"] / elapsed,
            p50_ms=_percentile(latencies, 50) * 1000,
            p99_ms=_percentile(latencies, 99) * 1000,
        )


def _percentile(ordered: Sequence[float], pct: float) -> float:
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def pick_client(choice: str, scratch: Path) -> LoadClient:
    wrk = shutil.which("wrk")
    if choice == "python":
        return PythonClient()
    if wrk is None:
        if choice == "wrk":
            sys.exit("--client wrk: wrk is not installed (Debian: apt-get install -y wrk)")
        print(
            "note: wrk is not installed, using the Python aiohttp client instead; it shares the"
            " CPUs with the server, so install wrk (apt-get install -y wrk) for lighter load"
            " generation.",
            file=sys.stderr,
        )
        return PythonClient()
    return WrkClient(wrk, scratch)


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`bentoml serve` in its own process group, stopped as a group."""

    def __init__(self, config: Configuration, env: dict[str, str], log_path: Path) -> None:
        self.config = config
        self.env = env
        self.log_path = log_path
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = free_port()
        command = [sys.executable, "-m", "bentoml", "serve", self.config.service]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl+C reaches this script, which stops the server
            )

    def wait_ready(self, timeout: float, probes: dict[str, bytes]) -> None:
        """Readiness probe 200, then one 2xx prediction per model (retried until `timeout`)."""
        deadline = time.monotonic() + timeout
        pending: list[tuple[str, str, bytes | None]] = [("GET", self.config.ready_path, None)]
        pending += [("POST", PREDICT_PATH, body) for body in probes.values()]
        last = ""
        while pending:
            self._check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.config.name}: not ready after {timeout:.0f} s (last: {last});"
                    f" log: {self.log_path}\n{self.log_tail()}"
                )
            method, path, body = pending[0]
            status, text = _http(method, self.base_url + path, body, self.config.headers)
            if 200 <= status < 300:
                pending.pop(0)
                continue
            last = f"{method} {path} -> {status} {text[:300]}"
            if 400 <= status < 500 and status != 404 and body is not None:
                raise RuntimeError(f"{self.config.name}: probe request refused: {last}")
            time.sleep(0.5)

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"{self.config.name}: server exited with {self.process.returncode};"
                f" log: {self.log_path}\n{self.log_tail()}"
            )

    def cpu_seconds(self) -> dict[str, float]:
        """User + system CPU seconds so far of the server's processes, by role (service name)."""
        import psutil

        seconds: dict[str, float] = {}
        for process in _process_tree(self.process.pid if self.process else -1):
            with contextlib.suppress(psutil.Error):
                args = process.cmdline()
                role = "arbiter"
                if "--service-name" in args[:-1]:
                    role = args[args.index("--service-name") + 1]
                elif "--fd" in args:
                    role = "entry"  # BentoML names the entry service's worker implicitly
                times = process.cpu_times()
                seconds[role] = seconds.get(role, 0.0) + times.user + times.system
        return seconds

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to the server, SIGKILL to whatever of it is left after a grace period.

        BentoML's arbiter starts each worker in a session of its own, so signalling the
        server's process group alone would orphan the workers: the whole process tree is
        looked up first (and again, in case a worker was restarted meanwhile).
        """
        import psutil

        process, self.process = self.process, None
        if process is None:
            return
        tree = _process_tree(process.pid)
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


def _process_tree(pid: int) -> list[Any]:
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except (psutil.Error, ValueError):
        return []


def _http(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, repr(exc)


@contextlib.contextmanager
def running(servers: list[Server]) -> Iterator[list[Server]]:
    """Stop every server on exit, however the block ends (SIGTERM included)."""

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()
        signal.signal(signal.SIGTERM, previous)


# --------------------------------------------------------------------------- models


def request_bodies(models: Sequence[str], bentoml_home: Path) -> dict[str, bytes]:
    """Per model: a prediction body with its first golden input that passes validation."""
    os.environ["BENTOML_HOME"] = str(bentoml_home)
    import bentoml
    from bentoml.exceptions import NotFound

    missing = []
    for name in models:
        try:
            bentoml.models.get(name)
        except NotFound:
            missing.append(name)
    if missing:
        unknown = sorted(set(missing) - set(REFERENCE_MODELS))
        if unknown:
            sys.exit(f"models not in the store {bentoml_home} and no recipe for them: {unknown}")
        print(f"training the missing reference models {missing} ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "training_export", "train", "--all", "--skip-existing"],
            cwd=REPO,
            env=os.environ.copy(),
            check=True,
        )

    from services.artifact.loader import parse_metadata
    from services.errors import AppError
    from services.pipeline.validation import validate_rows

    bodies = {}
    for name in models:
        stored = bentoml.models.get(name)
        metadata = parse_metadata(stored.info.metadata, tag=str(stored.tag))
        for row in metadata.golden_examples.inputs:
            try:
                validate_rows([row], metadata.feature_schema, policy="reject", max_rows=1)
            except AppError:
                continue
            bodies[name] = json.dumps({"model": name, "inputs": [row]}).encode()
            break
        else:
            sys.exit(f"{stored.tag}: no golden input passes validation")
    return bodies


# --------------------------------------------------------------------------- report


def measure(
    client: LoadClient,
    server: Server,
    model: str,
    body: bytes,
    concurrency: int,
    args: argparse.Namespace,
) -> CellResult:
    """Warm up, then one measured cell, with the server's CPU time per 2xx response."""
    url, headers = server.base_url + PREDICT_PATH, server.config.headers
    if args.warmup > 0:
        client.run(url, body, headers, concurrency, args.warmup)
    before = server.cpu_seconds()
    cell = client.run(url, body, headers, concurrency, args.duration)
    after = server.cpu_seconds()
    cell.config, cell.model = server.config.name, model
    ok = cell.requests - cell.errors
    spent = {role: after[role] - before.get(role, 0.0) for role in after}
    if ok:
        cell.cpu_ms = 1000 * sum(spent.values()) / ok
        cell.cpu_split = {role: 1000 * value / ok for role, value in spent.items() if value > 0}
    return cell


def combine(rounds: Sequence[CellResult]) -> CellResult:
    """One cell over several rounds: the median of each number, errors and requests summed."""
    if len(rounds) == 1:
        return rounds[0]
    roles = {role for cell in rounds for role in cell.cpu_split}
    return CellResult(
        config=rounds[0].config,
        model=rounds[0].model,
        concurrency=rounds[0].concurrency,
        requests=sum(cell.requests for cell in rounds),
        errors=sum(cell.errors for cell in rounds),
        seconds=sum(cell.seconds for cell in rounds),
        rps=statistics.median(cell.rps for cell in rounds),
        p50_ms=statistics.median(cell.p50_ms for cell in rounds),
        p99_ms=statistics.median(cell.p99_ms for cell in rounds),
        cpu_ms=statistics.median(cell.cpu_ms for cell in rounds),
        cpu_split={
            role: statistics.median(cell.cpu_split.get(role, 0.0) for cell in rounds)
            for role in sorted(roles)
        },
        rounds=len(rounds),
    )


def format_table(results: Sequence[CellResult]) -> str:
    header = ("configuration", "model", "conc", "req/s", "p50 ms", "p99 ms", "errors", "CPU ms/req")
    rows = [
        (
            r.config,
            r.model,
            str(r.concurrency),
            f"{r.rps:.0f}",
            f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}",
            str(r.errors),
            f"{r.cpu_ms:.2f}",
        )
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    right = {2, 3, 4, 5, 6, 7}

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if i in right else ("-" * (w + 2)) for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def format_summary(results: Sequence[CellResult], targets: Sequence[Ratio]) -> str:
    by_key = {(r.config, r.model, r.concurrency): r for r in results}
    lines = []
    for target in targets:
        for model in target.models:
            for conc in target.concurrencies:
                num = by_key.get((target.numerator, model, conc))
                den = by_key.get((target.denominator, model, conc))
                if num is None or den is None:
                    continue
                ratio = num.rps / den.rps if den.rps else float("inf")
                verdict = "met" if ratio >= target.minimum else "MISSED"
                lines.append(
                    f"- {target.label}: {target.numerator} / {target.denominator},"
                    f" {model}, c={conc}:"
                    f" {num.rps:.0f} / {den.rps:.0f} req/s = {ratio:.2f}x"
                    f" (target >= {target.minimum:g}x: {verdict});"
                    f" server CPU {num.cpu_ms:.2f} vs {den.cpu_ms:.2f} ms/req"
                )
    errors = sum(r.errors for r in results)
    requests = sum(r.requests for r in results)
    verdict = "met" if errors == 0 else "MISSED"
    lines.append(f"- errors: {errors} of {requests} measured requests (target 0: {verdict})")
    return "\n".join(lines)


def command_line() -> str:
    """The command as typed, a script path shown as its module: `python -m bench.load ...`."""
    script = Path(sys.argv[0]).resolve()
    with contextlib.suppress(ValueError):
        module = ".".join(script.relative_to(REPO).with_suffix("").parts)
        return shlex.join(["python", "-m", module, *sys.argv[1:]])
    return shlex.join(["python", *sys.argv])


def code_version() -> str:
    """The commit benchmarked, `-dirty` when services/ or bench/ differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "status", "--porcelain", "--", "services", "db", "bench"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return (head or "unknown") + ("-dirty" if changes else "")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                cpu = row.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}"


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    names = [c.name for c in CONFIGURATIONS]
    parser = argparse.ArgumentParser(
        prog="python -m bench.load",
        description=(
            "Start one `bentoml serve` per configuration, drive single-row predictions at"
            " several concurrencies and print req/s, p50, p99 and errors per cell, then the"
            " target ratios. Configurations: "
            + "; ".join(f"{c.name} = {c.description or c.env}" for c in CONFIGURATIONS)
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    defaults = ",".join(c.name for c in CONFIGURATIONS if c.default)
    parser.add_argument("--configs", default=defaults, help=f"comma-separated, of {names}")
    parser.add_argument("--models", default=",".join(REFERENCE_MODELS), help="comma-separated")
    parser.add_argument("--concurrency", default="1,8,32,64", help="comma-separated")
    parser.add_argument(
        "--duration", type=float, default=4.0, help="measured seconds per cell and round"
    )
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="unmeasured seconds before each measurement"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="measure every cell this many times, all cells in turn, and report the medians"
        " (one noisy moment on a shared machine then moves no number)",
    )
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra env for every server (repeatable), e.g. SERVING_COALESCE_IN_FLIGHT=4",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE[,KEY=VALUE]",
        help="an extra gateway configuration for experiments (repeatable), e.g."
        " inflight4:SERVING_COALESCE_IN_FLIGHT=4",
    )
    parser.add_argument("--startup-timeout", type=float, default=180.0, help="seconds per server")
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=REPO / "bench" / "results",
        help="where results.json and server logs go (a timestamped folder per run)",
    )
    args = parser.parse_args(argv)
    unknown = set(_split(args.configs)) - set(names)
    if unknown:
        parser.error(f"unknown configurations {sorted(unknown)}; known: {names}")
    for item in args.env:
        if "=" not in item:
            parser.error(f"--env {item!r}: expected KEY=VALUE")
    args.variants = []
    for item in args.variant:
        name, _, assignments = item.partition(":")
        pairs = _split(assignments)
        if not name or name in names or not pairs or any("=" not in p for p in pairs):
            parser.error(f"--variant {item!r}: expected a new NAME:KEY=VALUE[,KEY=VALUE]")
        env = dict(pair.split("=", 1) for pair in pairs)
        args.variants.append(Configuration(name, env, description=f"gateway with {env}"))
    return args


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configs = [c for c in CONFIGURATIONS if c.name in _split(args.configs)] + args.variants
    models = _split(args.models)
    concurrencies = [int(c) for c in _split(args.concurrency)]
    bentoml_home = Path(os.environ.get("BENTOML_HOME") or REPO / ".bentoml")
    run_dir = args.results_dir / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir.mkdir(parents=True, exist_ok=True)

    bodies = request_bodies(models, bentoml_home)
    base_env = {
        **os.environ,
        "BENTOML_HOME": str(bentoml_home),
        "BENTOML_DO_NOT_TRACK": "True",
        "SERVING_MODELS": ",".join(models),
        **BASE_ENV,
        **dict(item.split("=", 1) for item in args.env),
    }
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        client = pick_client(args.client, Path(scratch))
        command = command_line()
        print(f"machine: {machine()}; client: {client.name}; code: {code_version()}")
        print(f"command: {command}")
        print(f"store: {bentoml_home}; logs and results.json: {run_dir}", flush=True)
        servers = [
            Server(c, {**base_env, **c.env}, run_dir / f"server-{c.name}.log") for c in configs
        ]
        cells: dict[tuple[str, str, int], list[CellResult]] = {}
        with running(servers):
            for server in servers:
                started = time.monotonic()
                server.start()
                server.wait_ready(args.startup_timeout, bodies)
                print(
                    f"started {server.config.name} ({server.config.service}) on port"
                    f" {server.port} in {time.monotonic() - started:.0f} s",
                    flush=True,
                )
            for round_ in range(1, args.rounds + 1):
                if args.rounds > 1:
                    print(f"round {round_} of {args.rounds}", flush=True)
                for model, conc, server in itertools.product(models, concurrencies, servers):
                    cell = measure(client, server, model, bodies[model], conc, args)
                    cells.setdefault((server.config.name, model, conc), []).append(cell)
                    split = " + ".join(f"{k} {v:.2f}" for k, v in cell.cpu_split.items())
                    print(
                        f"  {cell.config:<14} {model:<11} c={conc:<3} {cell.rps:7.0f} req/s"
                        f"  p50 {cell.p50_ms:7.1f} ms  p99 {cell.p99_ms:7.1f} ms"
                        f"  errors {cell.errors}  CPU ms/req {cell.cpu_ms:.2f} ({split})",
                        flush=True,
                    )
    results = [combine(rounds) for rounds in cells.values()]
    order = {c.name: i for i, c in enumerate(configs)}
    results.sort(key=lambda r: (order[r.config], models.index(r.model), r.concurrency))
    table, summary = format_table(results), format_summary(results, TARGETS)
    print(f"\n{table}\n\nSummary (ratios from this run):\n{summary}")
    (run_dir / "results.json").write_text(
        json.dumps(
            {
                "command": command,
                "machine": machine(),
                "code": code_version(),
                "client": client.name,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "rounds": args.rounds,
                "configurations": [asdict(c) for c in configs],
                "arguments": list(argv if argv is not None else sys.argv[1:]),
                "extra_env": args.env,
                "results": [asdict(r) for r in results],
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
