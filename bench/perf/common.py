"""What the performance benchmarks share: where results go, and the generation benchmarks' options
and BFCL entries.

Every script here is run from anywhere as `python bench/perf/<script>.py`; it finds the repository
from its own file and writes its JSON to bench/results/<script>.json unless `--out` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]  # the repository: bench/perf/common.py -> ../..


def default_out(script: str) -> Path:
    """bench/results/<stem of the script>.json, in this checkout."""
    return ROOT / "bench" / "results" / f"{Path(script).stem}.json"


def add_out(ap: argparse.ArgumentParser, script: str) -> None:
    """--out, defaulting to bench/results/<script>.json."""
    out = default_out(script)
    ap.add_argument("--out", type=Path, default=out, help=f"write the JSON here (default: {out.relative_to(ROOT)})")


def write_result(data: dict[str, Any], out: Path) -> None:
    """Print the JSON and write it to `out`."""
    text = json.dumps(data, indent=2, default=str)
    print(text)
    sys.stdout.flush()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")


def tiny_model(folder: Path) -> str:
    """An untrained tiny Qwen2 with its own tokenizer and chat template (seconds to build): the
    small default of the benchmarks that otherwise take --model."""
    from funreason.train.tiny import build_tiny_model

    return str(build_tiny_model(folder))


def parse_args(doc: str, script: str) -> argparse.Namespace:
    """--model, --entries, --batch, --max-tokens and --out, described by the script's docstring.
    Without --model: the tiny model, 8 entries, batch 4, 32 new tokens (the small default that
    `make bench` runs); with --model, 32 entries, batch 8 and 96 new tokens unless given."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="checkpoint folder (default: an untrained tiny model, the small run)")
    ap.add_argument("--entries", type=int, default=None, help="BFCL entries (default: 32, or 8 with the tiny model)")
    ap.add_argument("--batch", type=int, default=None, help="rows decoded together (default: 8, or 4 with the tiny model)")
    ap.add_argument("--max-tokens", type=int, default=None, help="new tokens per answer (default: 96, or 32 with the tiny model)")
    add_out(ap, script)
    a = ap.parse_args()
    small = a.model is None
    a.entries = a.entries or (8 if small else 32)
    a.batch = a.batch or (4 if small else 8)
    a.max_tokens = a.max_tokens or (32 if small else 96)
    return a


def speed_entries(n: int) -> dict[str, list[Any]]:
    """The first n/2 entries of simple_python and the rest of n from multiple."""
    from funreason.evaluate.runner import load_category

    half = n // 2
    return {"simple_python": load_category("simple_python", half), "multiple": load_category("multiple", n - half)}


def result_texts(folder: Any) -> dict[str, str]:
    """id → answer of every BFCL result file in `folder`."""
    from funreason.evaluate.runner import load_done

    return {k: v for f in sorted(folder.glob("*_result.json")) for k, v in load_done(f).items()}
