"""What bench.load prints: the cell table, the goals table, and where the numbers came from."""

import contextlib
import math
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.clients import CellResult
from bench.configs import Ratio

REPO = Path(__file__).resolve().parents[1]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    """A Markdown table, columns padded, the `right` ones right-aligned."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(parts) + " |"

    rule = "|" + "|".join(
        ("-" * (w + 1) + ":") if i in right else ("-" * (w + 2)) for i, w in enumerate(widths)
    )
    return "\n".join([line(header), rule + "|", *(line(row) for row in rows)])


def format_table(results: Sequence[CellResult]) -> str:
    """One line per cell: medians over the rounds, errors summed."""
    header = (
        "configuration",
        "model",
        "rows/req",
        "conc",
        "req/s",
        "rows/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "CPU ms/req",
        "other cores",
    )
    rows = [
        (
            r.config,
            r.model,
            str(r.rows),
            str(r.concurrency),
            f"{r.rps:.0f}",
            f"{r.rows_per_s:.0f}",
            f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}",
            str(r.errors),
            f"{r.cpu_ms:.2f}",
            f"{r.other_cores:.2f}",
        )
        for r in results
    ]
    return markdown_table(header, rows, right=set(range(2, 11)))


def _ratio(target: Ratio, num: CellResult, den: CellResult) -> float:
    """NaN where a side has no number: no answer in the cell, or (for p99) no 2xx answer,
    since wrk's latencies then describe error responses only."""
    if target.measure == "p99":
        if num.rps == 0 or den.rps == 0:
            return math.nan
        a, b = num.p99_ms, den.p99_ms
    else:
        a, b = num.rps, den.rps
    if math.isnan(a) or math.isnan(b) or b == 0:
        return math.nan
    return a / b


def _times(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}x"


def _verdict(target: Ratio, value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return "MET" if target.met(value) else "MISSED"


def _matches(target: Ratio, cell: CellResult) -> bool:
    return (
        (not target.models or cell.model in target.models)
        and (not target.rows or cell.rows in target.rows)
        and (not target.concurrencies or cell.concurrency in target.concurrencies)
    )


def goal_lines(results: Sequence[CellResult], targets: Sequence[Ratio]) -> list[str]:
    """Per goal and cell both configurations measured: the two numbers, the ratio, the verdict."""
    by_key = {(r.config, r.model, r.rows, r.concurrency): r for r in results}
    lines = []
    for target in targets:
        for num in results:
            if num.config != target.numerator or not _matches(target, num):
                continue
            den = by_key.get((target.denominator, num.model, num.rows, num.concurrency))
            if den is None:
                continue
            value = _ratio(target, num, den)
            if target.measure == "p99":
                numbers = f"{num.p99_ms:.1f} / {den.p99_ms:.1f} ms"
            else:
                numbers = f"{num.rps:.0f} / {den.rps:.0f} req/s"
                if num.rows > 1:
                    numbers += f" ({num.rows_per_s:.0f} / {den.rows_per_s:.0f} rows/s)"
            lines.append(
                f"- {target.label}, {num.model}, {_shape(num)}: {numbers} = {_times(value)}"
                f" (goal {target.goal_text()}: {_verdict(target, value)})"
            )
    return lines


def goal_table(results: Sequence[CellResult], targets: Sequence[Ratio]) -> str:
    """Goals down, (rows, concurrency) across: `0.49x MISSED` per cell, `-` where not measured."""
    by_key = {(r.config, r.model, r.rows, r.concurrency): r for r in results}
    shapes = sorted({(r.rows, r.concurrency) for r in results})
    models = list(dict.fromkeys(r.model for r in results))
    rows = []
    for target in targets:
        for model in models:
            cells = []
            for n_rows, conc in shapes:
                num = by_key.get((target.numerator, model, n_rows, conc))
                den = by_key.get((target.denominator, model, n_rows, conc))
                if num is None or den is None or not _matches(target, num):
                    cells.append("-")
                    continue
                value = _ratio(target, num, den)
                cells.append(f"{_times(value)} {_verdict(target, value)}".removeprefix("n/a "))
            if any(cell != "-" for cell in cells):
                label = target.label if len(models) == 1 else f"{target.label} ({model})"
                rows.append((label, target.goal_text(), *cells))
    if not rows:
        return ""
    header = ("goal", "target", *(_shape_of(n, c) for n, c in shapes))
    return markdown_table(header, rows, right=set(range(2, 2 + len(shapes))))


def error_line(results: Sequence[CellResult]) -> str:
    errors = sum(r.errors for r in results)
    requests = sum(r.requests for r in results)
    verdict = "MET" if errors == 0 else "MISSED"
    return (
        f"- errors (non-2xx + transport): {errors} of {requests} measured requests"
        f" (goal 0: {verdict})"
    )


def _shape(cell: CellResult) -> str:
    return _shape_of(cell.rows, cell.concurrency)


def _shape_of(rows: int, concurrency: int) -> str:
    return f"{rows} row{'s' if rows > 1 else ''} c={concurrency}"


def command_line() -> str:
    """The command as typed, a script path shown as its module: `python -m bench.load ...`."""
    script = Path(sys.argv[0]).resolve()
    with contextlib.suppress(ValueError):
        module = ".".join(script.relative_to(REPO).with_suffix("").parts)
        return shlex.join(["python", "-m", module, *sys.argv[1:]])
    return shlex.join(["python", *sys.argv])


def code_version() -> str:
    """The commit benchmarked, `-dirty` when services/, db/ or bench/ differ from it."""
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
    """CPU count and model, Python version, and the load average when the run started."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                cpu = row.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"
