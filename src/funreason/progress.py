"""Progress of long work: one type for every stage that counts, one quiet default, one bar.

Invariant: a `Progress` is called as `progress(description, unit, total)` and used as a context
manager that yields `advance(n=1)`. Library code takes a `Progress` and never draws anything
itself; the command line passes `bar` (drawn on stderr, gone when the stage ends, so a log keeps
only the lines the stage prints), tests and libraries get `quiet`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Protocol


class Progress(Protocol):
    def __call__(self, description: str, unit: str, total: int | None = None) -> contextlib.AbstractContextManager[Callable[..., None]]: ...


@contextlib.contextmanager
def quiet(description: str, unit: str, total: int | None = None) -> Iterator[Callable[..., None]]:
    """Counts nothing, draws nothing."""
    yield lambda n=1, *_: None


def bar(console):
    """A `Progress` that draws a Rich bar with a rate (`unit`/s) on `console`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, SpinnerColumn, TextColumn, TimeElapsedColumn

    @contextlib.contextmanager
    def counting(description: str, unit: str, total: int | None = None) -> Iterator[Callable[..., None]]:
        t0 = time.perf_counter()
        columns = (SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]}"), TimeElapsedColumn())
        with RichProgress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(description, total=total, rate="")

            def advance(n: int = 1, *_: object) -> None:
                done = progress.tasks[0].completed + n
                progress.update(task, completed=done, rate=f"{done / max(time.perf_counter() - t0, 1e-9):.1f} {unit}/s")

            yield advance

    return counting


@contextlib.contextmanager
def no_tqdm() -> Iterator[None]:
    """Silence libraries' own tqdm bars (TQDM_DISABLE=1) for the block: in a log they are a wall of carriage returns."""
    old = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = old
