"""Charts as PNG files: one way to make, save and close a matplotlib figure, off-screen.

Invariant: `figure(path)` draws with the Agg backend (no display needed, nothing opened on a
server), writes `path` whole when the block ends without an error, and always closes the figure,
so a long run that draws a chart per round does not grow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def figure(path: str | Path, size: tuple[float, float] = (7.0, 3.6), *, ncols: int = 1, dpi: int = 110) -> Iterator[Any]:
    """`with figure(path) as ax: ax.bar(...)`: the axes (a list of `ncols` of them when ncols > 1)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=size)
    try:
        yield axes
        fig.tight_layout()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
