"""FCDR's report: counts per stage and per verdict kind over the whole output folder (all runs),
and per step and per conversation (`trajectory.StepTally`), as `FcdrSummary`, written as JSON,
Markdown and a funnel chart only at the file edge."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from funreason.formats.jsonl import read_finished_rows, write_text_atomic
from funreason.markdown import table
from funreason.plots import figure
from funreason.fcdr.runner import OUTCOMES, RefineReport
from funreason.fcdr.trajectory import StepTally


@dataclass
class ThisRun:
    """What the last invocation did (the folder may hold the work of several)."""

    rows_in_shard: int
    already_done: int
    llm_calls: dict[str, int]
    seconds: float
    tokens: dict[str, int] | None = None  # endpoints only
    http: dict[str, int] | None = None

    @property
    def processed(self) -> int:
        return self.rows_in_shard - self.already_done

    @property
    def rows_per_s(self) -> float:
        return round(self.processed / self.seconds, 2) if self.seconds else 0.0


@dataclass
class FcdrSummary:
    files: dict[str, int]  # rows per outcome file
    statements_kept: int
    kept_after_regeneration: int
    dropped_by_stage: dict[str, int]
    failed_by_kind: dict[str, int]  # dropped and hard rows by their verdict's kind
    this_run: ThisRun
    funnel: list[tuple[str, int]] = field(default_factory=list)
    steps: StepTally = field(default_factory=StepTally)  # per step and per conversation (a single-turn row: one step)

    @property
    def total(self) -> int:
        return sum(self.files.values())

    def to_dict(self) -> dict[str, Any]:
        run = {**asdict(self.this_run), "processed": self.this_run.processed, "rows_per_s": self.this_run.rows_per_s}
        return {**{k: v for k, v in asdict(self).items() if k != "steps"}, **self.steps.to_dict(), "total": self.total,
                "funnel": [list(step) for step in self.funnel], "this_run": {k: v for k, v in run.items() if v is not None}}

    def funnel_markdown(self) -> list[str]:
        return table(("stage", "rows"), self.funnel)

    def markdown(self) -> str:
        run = self.this_run
        lines = ["# FCDR report", "", *self.funnel_markdown(), "", *table(("file", "rows"), [(f"{k}.jsonl", v) for k, v in self.files.items()])]
        tally = self.steps.to_dict()
        s, c = tally["steps"], tally["conversations"]
        lines += ["", *table(("steps (a single-turn row is one step)", "steps"),
                             [(k.replace("_", " "), v) for k, v in s.items() if k != "dropped_by_stage"]
                             + [(f"dropped at {stage}", v) for stage, v in s["dropped_by_stage"].items()]),
                  "", *table(("conversations", "rows"), [("of more than one step" if k == "multi_step" else k, v)
                                                         for k, v in c.items() if k != "dropped_at_step"]
                             + [(f"dropped at assistant turn {k}", v) for k, v in sorted(c["dropped_at_step"].items())])]
        if self.failed_by_kind:
            lines += ["", *table(("why rows were dropped or left hard", "rows"), sorted(self.failed_by_kind.items(), key=lambda kv: -kv[1]))]
        lines += ["", f"Statements kept as they are: {self.statements_kept}; kept after regeneration: "
                  f"{self.kept_after_regeneration}; dropped by stage: {self.dropped_by_stage or 'none'}.",
                  "", f"This run: {run.processed} rows in {run.seconds}s ({run.rows_per_s} rows/s), "
                  f"teacher calls {run.llm_calls or 'none'}" + (f", tokens {run.tokens}" if run.tokens else "") + ".",
                  "", "![funnel](funnel.png)"]
        return "\n".join(lines) + "\n"


def summarise(out: Path, run: RefineReport, usage: Any = None) -> FcdrSummary:
    files = {name: list(read_finished_rows(out / f"{name}.jsonl")) for name in OUTCOMES}
    n = {name: len(rows) for name, rows in files.items()}
    steps = StepTally()
    for name, rows in files.items():
        for row in rows:
            steps.add(name, row)
    dropped = Counter(r.get("stage") for r in files["dropped"])
    fcdr = [r.get("meta", {}).get("fcdr", {}) for r in files["kept"]]
    statements = sum(1 for m in fcdr if "statement" in m.get("passed", []) and "function_param" not in m.get("passed", []))
    total = sum(n.values())
    calls = total - n["rejected"] - n["errors"] - statements - dropped["response"]  # rows without an answer have no calls
    late = dropped["function_param"] + dropped["format"]  # a conversation's earlier step, which cannot be regenerated
    this_run = ThisRun(run.rows, run.skipped_done, dict(run.llm_calls), round(run.seconds, 2))
    if usage is not None:
        this_run.tokens = {"prompt": usage.prompt_tokens, "completion": usage.completion_tokens}
        this_run.http = {"requests": usage.requests, "retries": usage.retries, "failures": usage.failures}
    return FcdrSummary(
        files=n, statements_kept=statements, kept_after_regeneration=sum(1 for m in fcdr if m.get("regenerations", 0) > 0),
        dropped_by_stage=dict(dropped), failed_by_kind=dict(Counter(r.get("kind", "unknown") for r in files["dropped"] + files["hard"])),
        this_run=this_run, steps=steps,
        funnel=[
            ("input rows", total),
            ("readable", total - n["rejected"]),
            ("judged (no backend error)", total - n["rejected"] - n["errors"]),
            ("function-call answers", calls),
            ("passed query & tool", calls - dropped["query_tool"]),
            ("passed CoT", calls - dropped["query_tool"] - dropped["cot"]),
            ("kept calls (after stages 4–5)", calls - dropped["query_tool"] - dropped["cot"] - late - n["hard"]),
        ])


def write_report(out: Path, summary: FcdrSummary) -> None:
    write_text_atomic(out / "report.json", json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
    write_text_atomic(out / "report.md", summary.markdown())
    with figure(out / "funnel.png", (7, 3.2)) as ax:
        labels = [name for name, _ in summary.funnel][::-1]
        values = [count for _, count in summary.funnel][::-1]
        bars = ax.barh(labels, values, color="tab:blue")
        for bar, v in zip(bars, values):
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {v}", va="center")
        ax.set_xlabel("rows")
        ax.set_title("FCDR funnel")
