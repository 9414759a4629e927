"""Progress on long steps: a timed line per step and a bar for training loops, on stderr."""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True, highlight=False)
Advance = Callable[[int], None]


@contextmanager
def step(description: str) -> Iterator[None]:
    """Print `description` when it starts and its duration when it ends."""
    console.print(f"[bold]>[/bold] {description} ...")
    started = time.perf_counter()
    yield
    console.print(f"  done in {time.perf_counter() - started:.1f} s")


@contextmanager
def bar(description: str, total: int) -> Iterator[Advance]:
    """A progress bar over `total` units of work; call the yielded function with units done."""
    columns = (
        TextColumn("  {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    # Off a terminal (CI logs) the bar only disappears; the step lines still show progress.
    with Progress(*columns, console=console, transient=not console.is_terminal) as progress:
        task = progress.add_task(description, total=total)

        def advance(amount: int) -> None:
            progress.advance(task, amount)

        yield advance


def info(message: str) -> None:
    """One line of progress information."""
    console.print(message)
