"""FCDR's report: counts per stage over the whole output folder (all runs), as JSON, Markdown and
a funnel chart."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from funreason.formats.jsonl import read_finished_rows
from funreason.refine.runner import OUTCOMES, RefineReport


def summarise(out: Path, run: RefineReport, usage: Any = None) -> dict[str, Any]:
    files = {name: list(read_finished_rows(out / f"{name}.jsonl")) for name in OUTCOMES}
    n = {name: len(rows) for name, rows in files.items()}
    dropped = Counter(r.get("stage") for r in files["dropped"])
    statements = sum(1 for r in files["kept"] if r.get("meta", {}).get("fcdr", {}).get("passed") == ["statement"])
    regenerated = sum(1 for r in files["kept"] if r.get("meta", {}).get("fcdr", {}).get("regenerations", 0) > 0)
    total = sum(n.values())
    calls = total - n["rejected"] - n["errors"] - statements
    funnel = [
        ("input rows", total),
        ("readable", total - n["rejected"]),
        ("judged (no backend error)", total - n["rejected"] - n["errors"]),
        ("function-call answers", calls),
        ("passed query & tool", calls - dropped["query_tool"]),
        ("passed CoT", calls - dropped["query_tool"] - dropped["cot"]),
        ("kept calls (after stages 4–5)", calls - dropped["query_tool"] - dropped["cot"] - n["hard"]),
    ]
    summary = {
        "files": n,
        "total": total,
        "statements_kept": statements,
        "kept_after_regeneration": regenerated,
        "dropped_by_stage": dict(dropped),
        "funnel": funnel,
        "this_run": {
            "rows_in_shard": run.rows,
            "already_done": run.skipped_done,
            "processed": run.rows - run.skipped_done,
            "llm_calls": dict(run.llm_calls),
            "seconds": round(run.seconds, 2),
            "rows_per_s": round((run.rows - run.skipped_done) / run.seconds, 2) if run.seconds else 0.0,
        },
    }
    if usage is not None:
        summary["this_run"]["tokens"] = {"prompt": usage.prompt_tokens, "completion": usage.completion_tokens}
        summary["this_run"]["http"] = {"requests": usage.requests, "retries": usage.retries, "failures": usage.failures}
    return summary


def write_report(out: Path, summary: dict[str, Any]) -> None:
    (out / "report.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    lines = ["# FCDR report", "", "| stage | rows |", "|---|---|"]
    lines += [f"| {name} | {count} |" for name, count in summary["funnel"]]
    lines += ["", "| file | rows |", "|---|---|"] + [f"| {k}.jsonl | {v} |" for k, v in summary["files"].items()]
    run = summary["this_run"]
    lines += ["", f"Statements kept as they are: {summary['statements_kept']}; kept after regeneration: "
              f"{summary['kept_after_regeneration']}; dropped by stage: {summary['dropped_by_stage'] or 'none'}.",
              "", f"This run: {run['processed']} rows in {run['seconds']}s ({run['rows_per_s']} rows/s), "
              f"teacher calls {run['llm_calls'] or 'none'}" + (f", tokens {run['tokens']}" if "tokens" in run else "") + ".",
              "", "![funnel](funnel.png)"]
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _funnel_png(out / "funnel.png", summary["funnel"])


def _funnel_png(path: Path, funnel: list) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [name for name, _ in funnel][::-1]
    values = [count for _, count in funnel][::-1]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    bars = ax.barh(labels, values, color="tab:blue")
    for bar, v in zip(bars, values):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {v}", va="center")
    ax.set_xlabel("rows")
    ax.set_title("FCDR funnel")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
