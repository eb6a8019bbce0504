"""`funreason eval compare`: several evaluation folders side by side (BFCL and HumanEval)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from funreason.evaluate.splits import wilson, with_intervals

METRICS = [("Non-Live AST", "non_live_ast"), ("Live AST", "live_ast"), ("Overall", "overall")]
# shown where the report scored a multi-turn category (reports without one have no such key)
MULTI_TURN_METRICS = [("Multi-turn overall", "multi_turn"), ("Multi-turn, scored categories", "multi_turn_scored")]


def load_run(path: Path) -> dict[str, Any]:
    """A folder's metrics, with the BFCL split and entry count and each metric's 95% interval where
    the report has them (a report written before splits existed says `unrecorded`)."""
    run: dict[str, Any] = {"name": path.name, "metrics": {}, "intervals": {}, "split": None, "entries": None}
    bfcl = path / "report.json"
    he = path / "humaneval.json"
    if not bfcl.exists() and not he.exists():
        raise FileNotFoundError(f"{path}: no report.json (eval bfcl) nor humaneval.json (eval humaneval)")
    if bfcl.exists():
        try:
            report = json.loads(bfcl.read_text(encoding="utf-8"))
        except ValueError as e:  # a torn or foreign file
            raise ValueError(f"{bfcl}: not JSON ({e})") from None
        if not isinstance(report, dict) or not {"categories", "summary"} <= set(report):
            raise ValueError(f"{bfcl}: not an eval bfcl report (no categories and summary)")
        run["split"] = report.get("split", "unrecorded")
        run["entries"] = report.get("entries", sum(s["total"] for s in report["categories"].values()))
        for label, key in METRICS:
            run["metrics"][label] = report["summary"][key]
        cats = report["categories"]
        # computed again from the counts, so a report written by an older version (whose aggregate
        # intervals could be too narrow) is shown with the intervals a report gets now
        intervals = (with_intervals({c: dict(v) for c, v in cats.items()}) if all({"correct", "total", "accuracy"} <= set(v) for v in cats.values())
                     else report.get("intervals") or {})
        run["intervals"]["Live AST"] = intervals.get("live_ast")
        if report["summary"].get("non_live_ast_scored") is not None:
            run["metrics"]["Non-Live AST, scored categories"] = report["summary"]["non_live_ast_scored"]
            run["intervals"]["Non-Live AST, scored categories"] = intervals.get("non_live_ast_scored")
        for label, key in MULTI_TURN_METRICS:
            if report["summary"].get(key) is not None:
                run["metrics"][label] = report["summary"][key]
        if intervals.get("multi_turn_scored"):
            run["intervals"]["Multi-turn, scored categories"] = intervals["multi_turn_scored"]
        if report.get("bfcl_eval"):
            run["bfcl_eval"] = report["bfcl_eval"]
        for cat, s in sorted(report["categories"].items()):
            run["metrics"][cat] = s["accuracy"]
            run["intervals"][cat] = wilson(s.get("correct", round(s["accuracy"] * s["total"])), s["total"])
    if he.exists():
        held = json.loads(he.read_text())
        run["metrics"]["HumanEval pass@1"] = held["pass@1"]
        if "passed" in held and "total" in held:
            run["intervals"]["HumanEval pass@1"] = wilson(held["passed"], held["total"])
        if held.get("reference_logprob") is not None:
            run["metrics"]["HumanEval reference log-prob / token"] = held["reference_logprob"]["mean_logprob"]
    return run


def compare(paths: list[Path], png: Path) -> tuple[list[str], list[dict[str, Any]]]:
    runs = [load_run(p) for p in paths]
    rows: list[str] = []
    for run in runs:
        rows += [k for k in run["metrics"] if k not in rows]
    _plot(png, runs)
    return rows, runs


def _plot(path: Path, runs: list[dict[str, Any]]) -> None:
    from funreason.plots import figure

    keys = [k for k, _ in METRICS] + ["Multi-turn overall", "HumanEval pass@1"]
    keys = [k for k in keys if any(k in r["metrics"] for r in runs)]
    width = 0.8 / len(runs)
    with figure(path, (max(5, 1.6 * len(keys)), 3.6)) as ax:
        for i, run in enumerate(runs):
            xs = [j + i * width for j in range(len(keys))]
            ax.bar(xs, [100 * run["metrics"].get(k, 0.0) for k in keys], width, label=run["name"])
        ax.set_xticks([j + width * (len(runs) - 1) / 2 for j in range(len(keys))], keys)
        ax.set_ylim(0, 100)
        ax.set_ylabel("%")
        ax.legend()
        ax.set_title("Evaluation runs compared")
