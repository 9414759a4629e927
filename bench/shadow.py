"""Does shadow traffic delay the primary response? Latency of production requests with and
without a shadow version, at a fixed request rate, against a real `bentoml serve`.

    .venv/bin/python -m bench.shadow                  # about 2 minutes on 2 cores
    .venv/bin/python -m bench.shadow --rate 80 --duration 10 --rounds 5

One server serves two versions of cancer-rf (the two newest in the store; a second one is
trained with seed 7 when there is only one) with the prediction log on (a throwaway SQLite
file, or --db-url). Each round measures both modes in turn, `off` (production only) and
`shadow` (production plus the other version as a shadow), switching with PUT
/models/cancer-rf/deployment: an open-loop client sends single-row requests at --rate per
second for --duration seconds and records each response's latency. A shadow costs CPU (one more
model call and one more row written per request), so at a rate the machine can serve twice
over, the primary's p50 and p99 should not move beyond the round-to-round noise; at saturation
they do, because the CPUs are shared. Prints p50 and p99 per mode (medians over the rounds) and
the shadow jobs stored and dropped; after each shadow measurement it waits until the shadow
backlog is done (and says how long that took), so the next `off` measurement does not pay for it.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.clients import _percentile
from bench.configs import BASE_ENV
from bench.report import machine
from bench.servers import REPO, Server, free_port, http, running

MODEL = "cancer-rf"
SECOND_SEED = "7"


def two_versions(bentoml_home: Path) -> list[str]:
    """The two newest cancer-rf tags in the store, training what is missing."""
    os.environ["BENTOML_HOME"] = str(bentoml_home)
    import bentoml

    def newest() -> list[str]:
        models = sorted(bentoml.models.list(MODEL), key=lambda m: m.info.creation_time)
        return [str(m.tag) for m in models[-2:]]

    train = [sys.executable, "-m", "training_export", "train", MODEL]
    if not newest():
        subprocess.run([*train, "--seed", "42"], cwd=REPO, check=True)
    if len(newest()) < 2:
        subprocess.run(
            [*train, "--seed", SECOND_SEED, "--version", f"bench-seed{SECOND_SEED}"],
            cwd=REPO,
            check=True,
        )
    return newest()


def request_body(tags: Sequence[str]) -> bytes:
    """A golden row of the older version that both versions accept."""
    import bentoml

    from services.artifact.loader import parse_metadata
    from services.errors import AppError
    from services.pipeline.validation import validate_rows

    metadata = [parse_metadata(bentoml.models.get(tag).info.metadata, tag=tag) for tag in tags]
    for row in metadata[0].golden_examples.inputs:
        try:
            for each in metadata:
                validate_rows([row], each.feature_schema, policy="reject", max_rows=1)
        except AppError:
            continue
        return json.dumps({"model": MODEL, "inputs": [row]}).encode()
    sys.exit("no golden row passes both versions' validation")


async def open_loop(url: str, body: bytes, rate: float, seconds: float) -> list[float]:
    """Send at `rate` per second for `seconds`, whatever the answers; latencies in seconds
    of the 2xx responses (a non-2xx answer is reported and not counted)."""
    import aiohttp

    latencies: list[float] = []
    failures = 0
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def one() -> None:
            nonlocal failures
            sent = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if 200 <= response.status < 300:
                    latencies.append(time.perf_counter() - sent)
                else:
                    failures += 1

        tasks = []
        start = time.perf_counter()
        for k in range(int(rate * seconds)):
            delay = start + k / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    if failures:
        print(f"  {failures} non-2xx responses", flush=True)
    return sorted(latencies)


def deploy(server: Server, versions: Sequence[str], shadow: bool) -> None:
    production, other = (tag.split(":")[1] for tag in versions)
    spec = {"production": production, "shadow": [other] if shadow else []}
    status, text = http(
        "PUT",
        f"{server.base_url}/api/v1/models/{MODEL}/deployment",
        json.dumps(spec).encode(),
        {},
    )
    if status != 200:
        sys.exit(f"PUT deployment answered {status}: {text}")
    time.sleep(1.5)  # every worker follows within DEPLOYMENT_POLL_S (1 s)


def drain(server: Server, expected: int, timeout_s: float = 120.0) -> float:
    """Seconds until every shadow job so far finished (stored, failed or dropped)."""
    started = time.monotonic()
    while sum(shadow_counts(server).values()) < expected:
        if time.monotonic() - started > timeout_s:
            break
        time.sleep(0.25)
    return time.monotonic() - started


def shadow_counts(server: Server) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    _, text = http("GET", f"{server.base_url}/metrics", None, {})
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "shadow_jobs_total" and sample.labels.get("model") == MODEL:
                outcome = sample.labels["outcome"]
                counts[outcome] = counts.get(outcome, 0.0) + sample.value
    return counts


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.shadow",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db-url", help="the prediction log (default: a throwaway SQLite file)")
    parser.add_argument("--startup-timeout", type=float, default=180.0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    bentoml_home = Path(os.environ.get("BENTOML_HOME") or REPO / ".bentoml")
    versions = two_versions(bentoml_home)
    body = request_body(versions)
    with tempfile.TemporaryDirectory(prefix="bench-shadow-") as scratch:
        db_url = args.db_url or f"sqlite+aiosqlite:///{scratch}/log.sqlite3"
        env: dict[str, str] = {
            **os.environ,
            **BASE_ENV,
            "DB_PERSIST_PREDICTIONS": "true",
            "DB_URL": db_url,
            "BENTOML_HOME": str(bentoml_home),
            "SERVING_MODELS": ",".join(versions),
            "MONITORING_DRIFT_REFRESH_S": "0",
        }
        subprocess.run([sys.executable, "-m", "db.migrate", "upgrade"], env=env, check=True)
        port = free_port()
        command = [sys.executable, "-m", "bentoml", "serve", "services.service:Gateway"]
        command += ["--host", "127.0.0.1", "--port", str(port)]
        server = Server("shadow", command, env, Path(scratch) / "server.log", port)
        print(f"machine: {machine()}; versions: {versions}; rate {args.rate}/s", flush=True)
        results: dict[str, list[tuple[float, float]]] = {"off": [], "shadow": []}
        with running([server]):
            server.start()
            server.wait_ready("/ready", args.startup_timeout)
            url = f"{server.base_url}/api/v1/predictions"
            asyncio.run(open_loop(url, body, args.rate, 2.0))  # warm-up
            shadowed = 0
            for round_ in range(1, args.rounds + 1):
                for mode in results:
                    deploy(server, versions, shadow=mode == "shadow")
                    latencies = asyncio.run(open_loop(url, body, args.rate, args.duration))
                    p50, p99 = (1000 * _percentile(latencies, p) for p in (50, 99))
                    results[mode].append((p50, p99))
                    line = f"round {round_} {mode:>6}: p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  "
                    line += f"({len(latencies)} answers)"
                    if mode == "shadow":
                        # The next `off` measurement must not pay for this one's shadow backlog.
                        shadowed += len(latencies)
                        line += f"; shadow backlog done {drain(server, shadowed):.1f} s later"
                    print(line, flush=True)
            counts = shadow_counts(server)
        for mode, cells in results.items():
            p50s = sorted(c[0] for c in cells)
            p99s = sorted(c[1] for c in cells)
            print(
                f"{mode:>6}: median p50 {p50s[len(p50s) // 2]:.1f} ms, median p99 "
                f"{p99s[len(p99s) // 2]:.1f} ms (p99 per round: "
                + ", ".join(f"{v:.1f}" for v in (c[1] for c in cells))
                + ")"
            )
        print(f"shadow jobs: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
