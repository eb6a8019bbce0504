"""What the generation benchmarks share: their options and the BFCL entries they time."""

from __future__ import annotations

import argparse
from typing import Any


def parse_args(doc: str) -> argparse.Namespace:
    """--model, --entries, --batch and --max-tokens, described by the script's docstring."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--entries", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=96)
    return ap.parse_args()


def speed_entries(n: int) -> dict[str, list[Any]]:
    """The first n/2 entries of simple_python and the rest of n from multiple."""
    from funreason.evaluate.bfcl_run import load_category

    half = n // 2
    return {"simple_python": load_category("simple_python", half), "multiple": load_category("multiple", n - half)}


def result_texts(folder: Any) -> dict[str, str]:
    """id → answer of every BFCL result file in `folder`."""
    from funreason.evaluate.bfcl_run import load_done

    return {k: v for f in sorted(folder.glob("*_result.json")) for k, v in load_done(f).items()}
