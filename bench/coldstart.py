"""Cold start: seconds from launching the server to /ready 200, and where they go (goal 4).

    .venv/bin/python -m bench.coldstart               # `make bench-coldstart`: 3 runs of each way
    .venv/bin/python -m bench.coldstart --runs 5 --ways serve

Two ways of launching, taking turns run by run, models already in the store and the venv present:
`serve` is the command `make run` ends with (`.venv/bin/bentoml serve services.service:Gateway`,
default settings: the embedded database, development auth), and `make-run` is `make run` itself
(its prerequisites check the store, export nothing and migrate the embedded database first).
Each run stamps every line the server prints with the seconds since launch, watches the process
tree (when each worker process starts) and polls /ready every 50 ms; the server is then stopped
with its whole process tree. The timeline's milestones come from BentoML's own log lines and
the runners' "loaded <tag>" lines; the report gives the median of each over the runs.

Then, one at a time in fresh interpreters and without the contention of a launch, what the
pieces cost alone: interpreter start, `import bentoml`, `import services.service` (what each
worker imports), each model's verified load (digests, load, golden examples) and the schema
check `python -m db.migrate check` performs. On a launch four workers import at once, so on few
cores the timeline's phases take longer than these pieces.
"""

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import psutil  # type: ignore[import-untyped]

from bench.report import load_average, machine, markdown_table
from bench.servers import free_port, http, process_tree, stop_tree

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 5.0
SERVE = "services.service:Gateway"
# Milestones: (name, pattern on a log line). The first line matching wins.
LOG_MILESTONES = (
    ("arbiter listening", re.compile(r"Starting production HTTP BentoServer")),
    ("gateway imported and initialized", re.compile(r"Service gateway initialized")),
    ("gateway startup hook begins", re.compile(r"Running startup hook")),
    ("gateway startup hook done", re.compile(r"Completed (async )?startup hook")),
)
LOADED = re.compile(r"loaded (?P<tag>[\w.-]+:\w+): digests")


@dataclass
class Launch:
    """One cold start: when each log line, process and the first /ready 200 came."""

    way: str
    ready_s: float = float("nan")
    lines: list[tuple[float, str]] = field(default_factory=list)
    processes: dict[str, float] = field(default_factory=dict)  # role -> seconds since launch

    def first_line(self, pattern: re.Pattern[str]) -> float:
        return next((t for t, line in self.lines if pattern.search(line)), float("nan"))

    def model_loads(self) -> dict[str, float]:
        loads: dict[str, float] = {}
        for t, line in self.lines:
            match = LOADED.search(line)
            if match:
                loads.setdefault(match["tag"].split(":")[0], t)
        return loads


PHASES = (
    ("make's prerequisites (models check, migrate) until `bentoml serve` starts", None, "serve"),
    ("BentoML CLI: imports, service graph, until the workers are spawned", "serve", "workers"),
    ("gateway worker: imports + service __init__", "gateway_worker", "gateway_init"),
    ("gateway startup hook: database, schema check, Redis, runtime", "hook_begin", "hook_done"),
    ("runner workers: imports + model loads + golden checks, until the last", "workers", "models"),
    ("from the last of those until /ready answers 200", "last_event", "ready"),
    ("total: launch until /ready answers 200", None, "ready"),
)


def milestones(launch: Launch) -> dict[str, float]:
    """The seconds since launch of the events the phases are measured between."""
    workers = [t for role, t in launch.processes.items() if not role.startswith(("make", "arb"))]
    loads = list(launch.model_loads().values())
    values = {
        "serve": launch.processes.get("arbiter", math.nan),
        "workers": min(workers, default=math.nan),
        "gateway_worker": launch.processes.get("gateway", math.nan),
        "gateway_init": launch.first_line(LOG_MILESTONES[1][1]),
        "hook_begin": launch.first_line(LOG_MILESTONES[2][1]),
        "hook_done": launch.first_line(LOG_MILESTONES[3][1]),
        "models": max(loads, default=math.nan),
        "ready": launch.ready_s,
    }
    values["last_event"] = max(values["models"], values["hook_done"])
    return values


def phases(launches: Sequence[Launch]) -> list[tuple[str, list[float]]]:
    """Each phase's duration per run (NaN where an event was not seen)."""
    rows = []
    for label, begin, end in PHASES:
        values = []
        for launch in launches:
            marks = milestones(launch)
            values.append(marks[end] - (marks[begin] if begin else 0.0))
        if begin is None and end == "serve" and all(v == 0 or v != v for v in values):
            continue  # launched `bentoml serve` directly: no prerequisites
        rows.append((label, values))
    return rows


def launch_command(way: str, port: int) -> list[str]:
    if way == "serve":
        serve = [str(REPO / ".venv" / "bin" / "bentoml"), "serve", SERVE]
        return [*serve, "--host", "127.0.0.1", "--port", str(port)]
    return ["make", "--no-print-directory", "run", "HOST=127.0.0.1", f"PORT={port}"]


def cold_start(way: str, timeout: float, log_path: Path) -> Launch:
    """Launch, wait for /ready 200 (or `timeout`), stop the whole tree; the stamped timeline."""
    port = free_port()
    env = {
        **os.environ,
        "BENTOML_HOME": os.environ.get("BENTOML_HOME") or str(REPO / ".bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
    }
    result = Launch(way)
    started = time.monotonic()
    process = subprocess.Popen(
        launch_command(way, port),
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    reader = threading.Thread(
        target=_read_lines, args=(process.stdout, started, result.lines), daemon=True
    )
    reader.start()
    try:
        while time.monotonic() - started < timeout:
            _record_processes(process.pid, result.processes)
            if process.poll() is not None:
                break
            status, _ = http("GET", f"http://127.0.0.1:{port}/ready", None, {}, timeout=2)
            if status == 200:
                result.ready_s = time.monotonic() - started
                break
            time.sleep(0.05)
    finally:
        stop_tree(process)
        reader.join(timeout=5)
        with log_path.open("w") as log:
            log.writelines(f"{t:8.3f} {line}\n" for t, line in result.lines)
    return result


def _read_lines(stream: IO[bytes], started: float, lines: list[tuple[float, str]]) -> None:
    for raw in iter(stream.readline, b""):
        lines.append((time.monotonic() - started, raw.decode(errors="replace").rstrip()))


def _record_processes(pid: int, seen: dict[str, float]) -> None:
    """Start time of each process role (workers by service name), in seconds after the launch.

    Relative to the launched process's own start time: psutil derives start times from the boot
    time, which the kernel gives in whole seconds, so only differences are exact.
    """
    tree = process_tree(pid)
    if not tree:
        return
    try:
        launched = tree[0].create_time()
    except psutil.Error:
        return
    for process in tree:
        try:
            role = _role(process.cmdline())
            if role is not None:
                seen.setdefault(role, process.create_time() - launched)
        except psutil.Error:
            continue


def _role(args: list[str]) -> str | None:
    text = " ".join(args)
    if "--service-name" in args[:-1]:
        return args[args.index("--service-name") + 1]
    if "bentoml" in text and " serve " in f" {text} ":
        return "arbiter"
    if "training_export" in text:
        return "make: models"
    if "db.migrate" in text:
        return "make: migrate"
    return None


# --------------------------------------------------------------------------- pieces alone

# One fresh interpreter per repetition, everything in the order a runner worker does it: the
# service module, then per model its framework, digests, file and golden examples. Uses the
# loader's public functions; if they move, the pieces report says "failed" and the timeline stays.
PIECES = """
import contextlib, importlib, io, json, sys, time
from pathlib import Path
out = {}
def timed(label, call):
    started = time.perf_counter()
    value = call()
    out[label] = time.perf_counter() - started
    return value
timed("import bentoml", lambda: importlib.import_module("bentoml"))
timed("import services.service (every worker)", lambda: importlib.import_module("services.service"))
import bentoml
from services.artifact.adapters import get_adapter
from services.artifact.execution import PlannedPredictor
from services.artifact.loader import parse_metadata, plan_execution, verify_digests, verify_golden
MODULES = {"sklearn": "sklearn.ensemble", "xgboost": "xgboost", "torch": "torch"}
for name in %r:
    stored = bentoml.models.get(name)
    meta = parse_metadata(stored.info.metadata, tag=str(stored.tag))
    module = MODULES.get(meta.framework)
    if module and module not in sys.modules:
        timed(f"import {module} (its runner)", lambda: importlib.import_module(module))
    path = Path(stored.path)
    timed(f"{name}: check digests", lambda: verify_digests(path, meta, tag=name))
    adapter = get_adapter(meta.framework)
    loaded = timed(f"{name}: load the file", lambda: adapter.load(path / meta.model_file))
    exact = adapter.kernels() == meta.kernels
    plan = timed(f"{name}: verify the batch execution", lambda: plan_execution(
        loaded, meta, tag=name, exact=exact))
    timed(f"{name}: golden examples", lambda: verify_golden(
        PlannedPredictor(loaded, plan), meta, tag=name, tolerance=0.0 if exact else 1e-5))
from db.migrate import main
with contextlib.redirect_stdout(io.StringIO()):
    timed("schema check (db.migrate check, embedded db)", lambda: main(["check"]))
print("PIECES " + json.dumps(out))
"""


def measure_pieces(models: Sequence[str], runs: int) -> dict[str, list[float]]:
    """The pieces, each repetition in a fresh interpreter, one after the other."""
    pieces: dict[str, list[float]] = {}
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "True"}
    env.setdefault("BENTOML_HOME", str(REPO / ".bentoml"))
    for _ in range(runs):
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"], cwd=REPO, env=env, check=True)
        pieces.setdefault("interpreter start", []).append(time.monotonic() - started)
        _collect(PIECES % (list(models),), env, pieces)
    return pieces


def _collect(snippet: str, env: dict[str, str], pieces: dict[str, list[float]]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", snippet], cwd=REPO, env=env, capture_output=True, text=True
    )
    line = next((r for r in done.stdout.splitlines() if r.startswith("PIECES ")), None)
    if done.returncode != 0 or line is None:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        pieces.setdefault(f"(failed: {tail[0][:120]})", []).append(math.nan)
        return
    for label, seconds in json.loads(line.removeprefix("PIECES ")).items():
        pieces.setdefault(label, []).append(float(seconds))


# --------------------------------------------------------------------------- report


def timeline(launches: Sequence[Launch]) -> list[tuple[str, list[float]]]:
    """Milestones in order, each with its seconds since launch per run (NaN where missing)."""
    rows: list[tuple[str, list[float]]] = []
    roles = sorted({role for launch in launches for role in launch.processes})

    def add(name: str, values: list[float]) -> None:
        if any(v == v for v in values):  # some run saw it (NaN != NaN)
            rows.append((name, values))

    add("`bentoml serve` process starts", [x.processes.get("arbiter", _nan()) for x in launches])
    add(*_milestone(launches, LOG_MILESTONES[0]))
    for role in (r for r in roles if r != "arbiter"):
        what = f"`{role}` starts" if role.startswith("make") else f"worker process `{role}` starts"
        add(what, [x.processes.get(role, _nan()) for x in launches])
    for milestone in LOG_MILESTONES[1:]:
        add(*_milestone(launches, milestone))
    models = sorted({model for launch in launches for model in launch.model_loads()})
    for model in models:
        values = [x.model_loads().get(model, _nan()) for x in launches]
        add(f"runner: {model} loaded, digests + golden examples verified", values)
    add("/ready answers 200", [x.ready_s for x in launches])
    return sorted(rows, key=lambda row: _median(row[1]))


def _milestone(
    launches: Sequence[Launch], milestone: tuple[str, re.Pattern[str]]
) -> tuple[str, list[float]]:
    name, pattern = milestone
    return name, [x.first_line(pattern) for x in launches]


def _nan() -> float:
    return float("nan")


def _median(values: Sequence[float]) -> float:
    numbers = [v for v in values if v == v]
    return statistics.median(numbers) if numbers else float("nan")


def _seconds(values: Sequence[float]) -> str:
    return " ".join("-" if v != v else f"{v:.2f}" for v in values)


def report(launches: Sequence[Launch], pieces: dict[str, list[float]], ways: Sequence[str]) -> str:
    parts = []
    for way in ways:
        runs = [x for x in launches if x.way == way]
        rows = [(name, f"{_median(v):.2f}", _seconds(v)) for name, v in timeline(runs)]
        title = "make run" if way == "make-run" else "bentoml serve (as `make run` launches it)"
        parts.append(f"Timeline, {title}: seconds since launch, median of {len(runs)} runs\n")
        parts.append(markdown_table(("milestone", "median s", "runs"), rows, right={1}) + "\n")
        rows = [(name, f"{_median(v):.2f}", _seconds(v)) for name, v in phases(runs)]
        parts.append(f"Where the seconds go, {title} (phases overlap: workers run in parallel)\n")
        parts.append(markdown_table(("phase", "median s", "runs"), rows, right={1}) + "\n")
    rows = [(name, f"{_median(v):.2f}", _seconds(v)) for name, v in pieces.items()]
    parts.append("Pieces alone (fresh interpreter each, one at a time), seconds\n")
    parts.append(markdown_table(("piece", "median s", "runs"), rows, right={1}) + "\n")
    for way in ways:
        ready = [x.ready_s for x in launches if x.way == way]
        value = _median(ready)
        verdict = "n/a" if value != value else ("MET" if value <= GOAL_S else "MISSED")
        parts.append(
            f"- goal 4, {way}: launch -> /ready 200 median {value:.2f} s"
            f" (runs {_seconds(ready)}; goal <= {GOAL_S:g} s: {verdict})"
        )
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.coldstart",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=3, help="cold starts per way")
    parser.add_argument(
        "--ways", default="serve,make-run", help="comma-separated, of serve and make-run"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per launch")
    parser.add_argument(
        "--models",
        default="fraud-xgb,cancer-rf,digits-mlp",
        help="models whose verified load is timed alone (the default SERVING_MODELS)",
    )
    parser.add_argument("--results-dir", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    ways = [w.strip() for w in args.ways.split(",") if w.strip()]
    if not ways or set(ways) - {"serve", "make-run"}:
        parser.error("--ways: serve and/or make-run")
    run_dir = args.results_dir / (datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-coldstart")
    run_dir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}; load average at start: {load_average()}")
    print(f"logs (stamped lines) and results.json: {run_dir}", flush=True)
    launches = []
    for run in range(args.runs):
        for way in ways:
            launch = cold_start(way, args.timeout, run_dir / f"{way}-{run + 1}.log")
            launches.append(launch)
            print(f"  {way} run {run + 1}: /ready 200 after {launch.ready_s:.2f} s", flush=True)
            time.sleep(1.0)  # let the stopped tree's ports and files go
    print("timing the pieces alone ...", flush=True)
    pieces = measure_pieces([m for m in args.models.split(",") if m], args.runs)
    print("\n" + report(launches, pieces, ways))
    print(f"- load average at the end: {load_average()} ({os.cpu_count()} CPUs)")
    document: dict[str, Any] = {
        "machine": machine(),
        "launches": [
            {"way": x.way, "ready_s": x.ready_s, "processes": x.processes} for x in launches
        ],
        "pieces": pieces,
    }
    (run_dir / "results.json").write_text(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
