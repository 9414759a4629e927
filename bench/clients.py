"""Load generators for bench.load: wrk (C, one thread) when installed, else asyncio + aiohttp.

Both run a closed loop: N keep-alive connections, each sending the same request back to back
for a fixed time. Non-2xx answers and transport errors (connect, read, write, timeout) count as
errors; throughput counts 2xx answers only.
"""

import asyncio
import json
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass
class CellResult:
    """One measured cell. `rps` counts 2xx responses only; `errors` is non-2xx plus transport."""

    config: str
    model: str
    concurrency: int
    rows: int  # rows per request
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float = float("nan")  # CPU time of all the server's processes per 2xx response
    cpu_split: dict[str, float] = field(default_factory=dict)  # the same, per process role
    # Cores busy with anything but this server and the load client during the cell: the
    # other servers of the run, other work on the machine. Large values mean a disturbed cell.
    other_cores: float = float("nan")
    rounds: int = 1

    @property
    def rows_per_s(self) -> float:
        return self.rps * self.rows


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
            rows=0,
            requests=requests + transport,
            errors=non2xx + transport,
            seconds=elapsed,
            rps=(requests - non2xx) / elapsed if elapsed else 0.0,
            # No answer completed in the window (all slower than it): no latency to report.
            p50_ms=p50 / 1000 if requests else math.nan,
            p99_ms=p99 / 1000 if requests else math.nan,
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
            rows=0,
            requests=len(latencies),
            errors=counts["errors"],
            seconds=elapsed,
            rps=counts["ok"] / elapsed,
            p50_ms=_percentile(latencies, 50) * 1000,
            p99_ms=_percentile(latencies, 99) * 1000,
        )


def _percentile(ordered: Sequence[float], pct: float) -> float:
    if not ordered:
        return math.nan
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
