"""The pieces every report is written with: a Markdown table and a percentage.

Invariant: a missing figure is written as "–", never as 0, so a table never claims a score that
was not measured.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def pct(value: float | None, digits: int = 1) -> str:
    """A share in 0..1 as a percentage, "–" when there is none."""
    return "–" if value is None else f"{100 * value:.{digits}f}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """A Markdown table, as lines."""
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers), *("| " + " | ".join(map(str, r)) + " |" for r in rows)]
