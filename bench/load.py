"""Load benchmark: this service, its parts, the plain BentoML pattern and peers, in one run.

    .venv/bin/python -m bench.load                    # `make bench`: the compare suite
    .venv/bin/python -m bench.load --suite batching   # `make bench-batching`
    .venv/bin/python -m bench.load --suite overhead   # `make bench-overhead`
    .venv/bin/python -m bench.load --list             # suites and configurations

Every configuration of the run gets its own server on a free port (`bentoml serve ...` with the
configuration's env, or a peer from the benchmark env `.venv-bench`), started before the first
measurement and stopped after the last. Each server must answer its readiness probe and then
one request per workload with exactly the outputs the export recorded (so every server provably
serves the same model). Then the cells, (model, rows per request, concurrency) x configuration,
are measured in turn: a warm-up, then a fixed time of closed-loop load on N keep-alive
connections. The whole sequence runs `--rounds` times (the server order rotating each round)
and a cell reports the medians over its rounds; a ratio therefore compares numbers measured
seconds apart on the same machine. Next to req/s and latency each cell reports the server's CPU
time per request and how many cores other work used meanwhile.

A benchmark prints numbers and never fails on them: the exit code is 0 unless something broke
(a server did not start, a probe was refused or answered other numbers). Every server, the
throwaway database and the scratch files are removed on exit, error, Ctrl+C or SIGTERM.
"""

import argparse
import contextlib
import itertools
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from bench.clients import CellResult, LoadClient, pick_client
from bench.configs import (
    BASE_ENV,
    CONFIGURATIONS,
    GATEWAY,
    PEER_MODEL,
    REFERENCE_MODELS,
    SUITES,
    TARGETS,
    Configuration,
)
from bench.peers import launch
from bench.protocols import FORMATS, RequestFormat, Workload, build_workload, largest_difference
from bench.report import (
    code_version,
    command_line,
    error_line,
    format_table,
    goal_lines,
    goal_table,
    load_average,
    machine,
)
from bench.servers import Server, free_port, http, running, sigterm_as_interrupt
from bench.stack import Stack, throwaway_stack

REPO = Path(__file__).resolve().parents[1]
# Outputs must equal the recorded ones; JSON carries float64 exactly, so no tolerance is needed.
MAX_OUTPUT_DIFFERENCE = 0.0
PLACEHOLDERS = ("database_url", "redis_url", "jwt_secret")


@dataclass
class Target:
    """A configuration's running server and how to talk to it."""

    config: Configuration
    server: Server
    request_format: RequestFormat
    headers: dict[str, str]

    @property
    def name(self) -> str:
        return self.config.name


# --------------------------------------------------------------------------- set-up


def ensure_models(models: Sequence[str]) -> None:
    """Train the missing reference models into the store; exit on an unknown missing model."""
    import bentoml
    from bentoml.exceptions import NotFound

    missing = []
    for name in models:
        try:
            bentoml.models.get(name)
        except NotFound:
            missing.append(name)
    if not missing:
        return
    unknown = sorted(set(missing) - set(REFERENCE_MODELS))
    if unknown:
        sys.exit(f"models not in the store {os.environ['BENTOML_HOME']} and no recipe: {unknown}")
    print(f"training the missing reference models {missing} ...", flush=True)
    subprocess.run(
        [sys.executable, "-m", "training_export", "train", "--all", "--skip-existing"],
        cwd=REPO,
        env=os.environ.copy(),
        check=True,
    )


def fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def make_server(
    config: Configuration,
    *,
    base_env: dict[str, str],
    stack: Stack | None,
    artifact: launch.StoredArtifact | None,
    run_dir: Path,
) -> Server:
    """The server for `config`: `bentoml serve` with its env, or a peer from the bench env."""
    port = free_port()
    log = run_dir / f"server-{config.name}.log"
    if config.peer is not None:
        if artifact is None:
            raise RuntimeError(f"{config.name}: a peer needs the store's {PEER_MODEL} artifact")
        if config.peer == "litserve":
            command = launch.litserve_command(artifact, port)
        else:
            folder = run_dir / f"mlserver-{config.name}"
            command = launch.mlserver_command(artifact, port, folder, (free_port(), free_port()))
        return Server(config.name, command, launch.peer_env(), log, port)
    values = stack.placeholders() if stack is not None else {}
    env = {**base_env, **BASE_ENV}
    if stack is not None:
        env.update(stack.project_env())  # one database and JWT secret for the run's servers
    env.update({key: fill(value, values) for key, value in config.env.items()})
    unresolved = [key for key in config.env if any(f"{{{k}}}" in env[key] for k in PLACEHOLDERS)]
    if unresolved:
        raise RuntimeError(f"{config.name}: unresolved placeholders in {unresolved}")
    command = [sys.executable, "-m", "bentoml", "serve", config.service]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    return Server(config.name, command, env, log, port)


def bring_up(
    target: Target,
    workloads: Sequence[Workload],
    stack: Stack | None,
    timeout: float,
    issuers: Sequence[Target] = (),
) -> None:
    """Start, wait for readiness, get a token if the configuration sends one, check outputs."""
    started = time.monotonic()
    target.server.start()
    target.server.wait_ready(target.config.ready_path, timeout)
    if stack is not None and any("{token}" in value for value in target.config.headers.values()):
        token = stack.token or _token(stack, [target, *issuers])
        target.headers = {k: fill(v, {"token": token}) for k, v in target.config.headers.items()}
    for work in workloads:
        probe(target, work, deadline=started + timeout)
    print(
        f"started {target.name} on port {target.server.port} in"
        f" {time.monotonic() - started:.0f} s; outputs for"
        f" {', '.join(f'{w.model} x{w.rows}' for w in workloads)} equal the recorded ones",
        flush=True,
    )


def _token(stack: Stack, candidates: Sequence[Target]) -> str:
    """From the first project server that issues one (public path), else signed directly."""
    for candidate in candidates:
        env = candidate.server.env
        # The token route needs the database (log on) and the signer (auth on).
        issues = env.get("DB_PERSIST_PREDICTIONS") == "true" and env.get("AUTH_ENABLED") == "true"
        if candidate.config.peer is None and candidate.config.service == GATEWAY and issues:
            token = stack.fetch_token(candidate.server.base_url)
            if token is not None:
                print(f"token: POST /api/v1/auth/token on {candidate.name}", flush=True)
                return token
    print(
        "token: no server of this run has both the log and auth on, so none issues tokens;"
        " signed with the run's secret (HS256, the claims the service issues)"
    )
    return stack.sign_token()


def probe(target: Target, work: Workload, deadline: float) -> None:
    """One request; 2xx with exactly the recorded outputs, retried on 5xx until `deadline`."""
    fmt, server = target.request_format, target.server
    url = server.base_url + fmt.path(work)
    while True:
        server.check_alive()
        status, text = http("POST", url, fmt.body(work), target.headers, timeout=30)
        if 200 <= status < 300:
            break
        if (400 <= status < 500 and status != 404) or time.monotonic() > deadline:
            raise RuntimeError(f"{target.name}: probe {url} -> {status} {text[:300]}")
        time.sleep(0.5)
    difference = largest_difference(fmt.probabilities(json.loads(text), work), work)
    if difference > MAX_OUTPUT_DIFFERENCE:
        raise RuntimeError(
            f"{target.name}: {work.model} x{work.rows} answered other outputs than recorded"
            f" (largest difference {difference})"
        )


# --------------------------------------------------------------------------- measuring


def _busy_cpu_seconds() -> float:
    times = psutil.cpu_times()
    return float(
        sum(
            getattr(times, name, 0.0)
            for name in ("user", "nice", "system", "irq", "softirq", "steal")
        )
    )


def _own_cpu_seconds() -> float:
    """This process and its reaped children (wrk): the load client's CPU."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(
    client: LoadClient, target: Target, work: Workload, concurrency: int, args: argparse.Namespace
) -> CellResult:
    """Warm up, then one measured cell, with the server's CPU time per 2xx response."""
    url = target.server.base_url + target.request_format.path(work)
    body = target.request_format.body(work)
    if args.warmup > 0:
        client.run(url, body, target.headers, concurrency, args.warmup)
    before, busy, own = target.server.cpu_seconds(), _busy_cpu_seconds(), _own_cpu_seconds()
    cell = client.run(url, body, target.headers, concurrency, args.duration)
    after = target.server.cpu_seconds()
    busy, own = _busy_cpu_seconds() - busy, _own_cpu_seconds() - own
    spent = {role: after[role] - before.get(role, 0.0) for role in after}
    cell = replace(cell, config=target.name, model=work.model, rows=work.rows)
    ok = cell.requests - cell.errors
    if ok:
        cell.cpu_ms = 1000 * sum(spent.values()) / ok
        cell.cpu_split = {role: 1000 * value / ok for role, value in spent.items() if value > 0}
    if cell.seconds:
        cell.other_cores = max(0.0, busy - sum(spent.values()) - own) / cell.seconds
    return cell


def _median(values: Sequence[float]) -> float:
    """The median of the numbers that are not NaN (a round without any answer); NaN if none."""
    numbers = [v for v in values if not math.isnan(v)]
    return statistics.median(numbers) if numbers else math.nan


def combine(rounds: Sequence[CellResult]) -> CellResult:
    """One cell over several rounds: the median of each number, errors and requests summed."""
    if len(rounds) == 1:
        return rounds[0]
    roles = {role for cell in rounds for role in cell.cpu_split}
    return replace(
        rounds[0],
        requests=sum(cell.requests for cell in rounds),
        errors=sum(cell.errors for cell in rounds),
        seconds=sum(cell.seconds for cell in rounds),
        rps=statistics.median(cell.rps for cell in rounds),
        p50_ms=_median([cell.p50_ms for cell in rounds]),
        p99_ms=_median([cell.p99_ms for cell in rounds]),
        cpu_ms=_median([cell.cpu_ms for cell in rounds]),
        cpu_split={
            role: statistics.median(cell.cpu_split.get(role, 0.0) for cell in rounds)
            for role in sorted(roles)
        },
        other_cores=_median([cell.other_cores for cell in rounds]),
        rounds=len(rounds),
    )


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    names = [c.name for c in CONFIGURATIONS]
    parser = argparse.ArgumentParser(
        prog="python -m bench.load",
        description="Serve each configuration, load it cell by cell in turn, print req/s, rows/s,"
        " p50, p99, errors and CPU per cell and the goals' ratios. Suites: "
        + "; ".join(f"{s.name} = {s.description}" for s in SUITES.values()),
    )
    parser.add_argument("--suite", choices=sorted(SUITES), default="compare", help="(compare)")
    parser.add_argument("--list", action="store_true", help="print suites and configurations")
    parser.add_argument("--configs", help=f"comma-separated, of {names} (default: the suite's)")
    parser.add_argument("--models", help="comma-separated (default: the suite's)")
    parser.add_argument("--rows", help="rows per request, comma-separated (default: the suite's)")
    parser.add_argument("--concurrency", help="comma-separated (default: the suite's)")
    parser.add_argument("--duration", type=float, default=4.0, help="measured s per cell (4)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured s per cell (1)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; cells report medians (3)")
    parser.add_argument(
        "--client", choices=("auto", "wrk", "python"), default="auto", help="(auto: wrk if found)"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra env for every project server (repeatable), e.g. SERVING_COALESCE_IN_FLIGHT=4",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE[,KEY=VALUE]",
        help="an extra gateway configuration (serving-only plus this env) for experiments",
    )
    parser.add_argument("--startup-timeout", type=float, default=180.0, help="s per server (180)")
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=REPO / "bench" / "results",
        help="where results.json and server logs go, a timestamped folder per run (bench/results)",
    )
    args = parser.parse_args(argv)
    suite = SUITES[args.suite]
    args.config_names = _split(args.configs) if args.configs else list(suite.configs)
    unknown = set(args.config_names) - set(names)
    if unknown:
        parser.error(f"unknown configurations {sorted(unknown)}; known: {names}")
    args.model_names = _split(args.models) if args.models else list(suite.models)
    args.row_counts = [int(x) for x in _split(args.rows)] if args.rows else list(suite.rows)
    args.concurrencies = (
        [int(x) for x in _split(args.concurrency)]
        if args.concurrency
        else list(suite.concurrencies)
    )
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
        args.variants.append(Configuration(name, env, description=f"serving-only with {env}"))
    return args


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def print_catalogue() -> None:
    for suite in SUITES.values():
        print(f"suite {suite.name}: {suite.description}")
        print(
            f"  configurations {', '.join(suite.configs)}; models {', '.join(suite.models)};"
            f" rows/request {suite.rows}; concurrency {suite.concurrencies}"
        )
    for config in CONFIGURATIONS:
        print(f"configuration {config.name}: {config.description}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        print_catalogue()
        return 0
    configs = [c for c in CONFIGURATIONS if c.name in args.config_names] + args.variants
    bentoml_home = Path(os.environ.get("BENTOML_HOME") or REPO / ".bentoml")
    os.environ["BENTOML_HOME"] = str(bentoml_home)
    run_dir = args.results_dir / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir.mkdir(parents=True, exist_ok=True)

    ensure_models(args.model_names)
    workloads = {
        (model, rows): build_workload(model, rows)
        for model in args.model_names
        for rows in args.row_counts
    }
    artifact, versions = None, {}
    if any(c.peer for c in configs):
        artifact = launch.stored_artifact(PEER_MODEL)  # SHA-256 checked against the store
        versions = launch.peer_versions()
    base_env = {
        **os.environ,
        "BENTOML_DO_NOT_TRACK": "True",
        "SERVING_MODELS": ",".join(args.model_names),
        **dict(item.split("=", 1) for item in args.env),
    }
    command = command_line()
    with sigterm_as_interrupt(), contextlib.ExitStack() as cleanup:
        scratch = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        client = pick_client(args.client, scratch)
        stack = None
        if any(c.needs_stack for c in configs):
            stack = cleanup.enter_context(throwaway_stack(run_dir))
        print(f"machine: {machine()}; load average at start: {load_average()}")
        print(f"client: {client.name}; code: {code_version()}; command: {command}")
        print(f"store: {bentoml_home}; logs and results.json: {run_dir}")
        if artifact is not None:
            print(f"peers serve {artifact.path} (sha256 {artifact.sha256}, verified); {versions}")
        if stack is not None:
            print(f"throwaway PostgreSQL database {stack.database}; Redis {stack.redis_url}")
        sys.stdout.flush()
        targets = [
            Target(
                config=c,
                server=make_server(
                    c, base_env=base_env, stack=stack, artifact=artifact, run_dir=run_dir
                ),
                request_format=FORMATS[c.request_format],
                headers=dict(c.headers),
            )
            for c in configs
        ]
        cells: dict[tuple[str, str, int, int], list[CellResult]] = {}
        loads: list[float] = []
        with running([t.server for t in targets]):
            for i, target in enumerate(targets):
                served = [w for w in workloads.values() if target.config.serves(w.model)]
                bring_up(target, served, stack, args.startup_timeout, issuers=targets[:i])
            for round_ in range(args.rounds):
                print(f"round {round_ + 1} of {args.rounds}", flush=True)
                order = targets[round_ % len(targets) :] + targets[: round_ % len(targets)]
                shapes = itertools.product(args.model_names, args.row_counts, args.concurrencies)
                for (model, rows, conc), target in itertools.product(shapes, order):
                    if not target.config.serves(model):
                        continue
                    loads.append(os.getloadavg()[0])
                    cell = measure(client, target, workloads[(model, rows)], conc, args)
                    cells.setdefault((target.name, model, rows, conc), []).append(cell)
                    print(_progress(cell), flush=True)
    results = [combine(rounds) for rounds in cells.values()]
    order_of = {c.name: i for i, c in enumerate(configs)}
    results.sort(
        key=lambda r: (args.model_names.index(r.model), r.rows, r.concurrency, order_of[r.config])
    )
    print(f"\n{format_table(results)}\n")
    table = goal_table(results, TARGETS)
    if table:
        print("Goals (ratios of medians from this run; throughput ratios hold for rows/s too):\n")
        print(table + "\n")
    print("\n".join([*goal_lines(results, TARGETS), error_line(results)]))
    if loads:
        print(
            f"- 1-minute load average during the run: min {min(loads):.1f},"
            f" median {statistics.median(loads):.1f}, max {max(loads):.1f}"
            f" ({os.cpu_count()} CPUs); `other cores` in results.json per cell"
        )
    write_results(run_dir, args, configs, results, command, client, versions, artifact)
    return 0


def _progress(cell: CellResult) -> str:
    split = " + ".join(f"{k} {v:.2f}" for k, v in cell.cpu_split.items())
    return (
        f"  {cell.config:<20} {cell.model:<10} x{cell.rows:<3} c={cell.concurrency:<3}"
        f" {cell.rps:7.0f} req/s {cell.rows_per_s:8.0f} rows/s  p50 {cell.p50_ms:7.1f} ms"
        f"  p99 {cell.p99_ms:7.1f} ms  errors {cell.errors}  CPU ms/req {cell.cpu_ms:.2f}"
        f" ({split})  other cores {cell.other_cores:.2f}"
    )


def write_results(
    run_dir: Path,
    args: argparse.Namespace,
    configs: Sequence[Configuration],
    results: Sequence[CellResult],
    command: str,
    client: LoadClient,
    versions: dict[str, str],
    artifact: launch.StoredArtifact | None,
) -> None:
    document: dict[str, Any] = {
        "command": command,
        "suite": args.suite,
        "machine": machine(),
        "code": code_version(),
        "client": client.name,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "configurations": [asdict(c) for c in configs],
        "peer_versions": versions,
        "peer_artifact": (
            {"tag": artifact.tag, "path": str(artifact.path), "sha256": artifact.sha256}
            if artifact
            else None
        ),
        "extra_env": args.env,
        "results": [{**asdict(r), "rows_per_s": r.rows_per_s} for r in results],
    }
    (run_dir / "results.json").write_text(json.dumps(document, indent=2))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
