"""`funreason demo`: the whole system on a real pretrained model and real open data, offline, on a CPU.

SmolLM2-135M-Instruct (`funreason model get`) → base evaluation → FCDR of raw xLAM-style rows (the
bundled synthetic sample), open data (Seal-Tools, glaive, STE) and a few whole conversations with tool
results (glaive dialogues, ToolTalk, API-Bank; `data/OPEN_DEMO_NOTICE.md`) with a rule teacher served
on 127.0.0.1 →
SRML training (LoRA) → evaluation of the trained model → (with `self_refine`) one self-refinement
round → `report.md` with the before/after table and chart, and exact calls per assistant turn of the
held-out conversations (each turn asked with the gold history before it, `evaluate.heldout`).

What is real and what stands in: the student, its tokenizer and chat template, the data, FCDR's
pipeline and decidable checks, SRML, rollouts, BFCL scoring and the held-out split are real; the
teacher and the self-refinement judge are a rule program (`refine.rule_teacher`), because no
teacher LLM runs offline on a CPU. The report says so.

The output folder holds a `.funreason-demo` marker; a folder that has files but no marker is
refused, so the demo never deletes what it did not make.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from funreason.data import bundled
from funreason.evaluate import DEMO_CATEGORIES
from funreason.evaluate.heldout import EvalMetrics, evaluate_model
from funreason.formats import Reader
from funreason.formats.jsonl import write_text_atomic
from funreason.markdown import pct, table as md_table
from funreason.plots import figure
from funreason.progress import Progress, quiet
from funreason.selfrefine import RoundResult
from funreason.data.stats import compute_stats
from funreason.train.plot import plot_metrics, read_metrics
from funreason.train.trainer import TrainConfig, TrainSummary, train

MARKER = ".funreason-demo"
STAND_IN = (
    "The FCDR teacher and the self-refinement judge are a rule program (funreason.fcdr.rule_teacher), not an LLM: "
    "it writes templated reasoning and judges by rules (values found in the query, functions named in the reasoning). "
    "The student model, the data, FCDR's pipeline and checks, SRML, rollouts and the scoring are real. For a real "
    "teacher: `funreason refine RAW --out DIR --endpoint http://HOST:8000/v1 --teacher-model Qwen/QwQ-32B`."
)


@dataclass
class DemoConfig:
    """Every setting of `funreason demo`; the defaults fit 15 minutes on a 2-core CPU, install included."""

    out: str = "demo"
    model: str = "smollm2-135m-instruct"  # a `funreason model get` name, or a checkpoint folder
    xlam_rows: int = 200  # raw xLAM-style rows of the bundled sample (no reasoning: FCDR's teacher writes it)
    open_rows: int = 60  # rows of the bundled open data (Seal-Tools, glaive, STE)
    irrelevance_rows: int = 30  # sample queries offered tools that cannot answer them: the answer is that none fits
    # whole conversations (every assistant turn learned, each held-out one asked at every turn): few and
    # short, since each held-out turn is one more prompt of each evaluation
    conversation_rows: int = 8
    heldout_conversations: int = 3
    # the student's SRML training (model, data and out are the demo's own): 35 steps of 4 rows keep the
    # whole demo inside 15 minutes on 2 cores; LoRA on the last layers only, where a CPU's backward pass stops
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        max_steps=35, batch_size=4, learning_rate=2e-3, lora=16, lora_layers=15, max_length=1024, warmup_ratio=0.05,
        save_steps=10**6, report_to="none",
        # the bundled sample mirrors BFCL definitions (quadratic.real_roots, arith.gcd; docs/data.md) and the demo's
        # figures are dev figures: it trains on them knowingly, and run.json records the audit
        allow_benchmark_overlap=True))
    bfcl_categories: tuple[str, ...] = DEMO_CATEGORIES
    bfcl_limit: int = 10
    heldout_limit: int = 6  # held-out rows from each of the two sources
    max_tokens: int = 128
    eval_batch: int = 25  # every evaluation prompt is queued at once: two batches decode the 42 entries
    self_refine: bool = False  # one self-refinement round (about 4 more minutes): off by default to keep 15 minutes
    refine_queries: int = 8  # self-refinement round: queries, samples each, training steps
    refine_samples: int = 2
    refine_steps: int = 6


def prepare_out(out: Path) -> None:
    """Make `out` a demo folder: new, empty, or an earlier demo's (whose parts are replaced)."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file; choose another --out")
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise FileExistsError(f"{out} has files that the demo did not make; choose an empty or new --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by funreason demo\n")
    for sub in ("data", "eval", "fcdr", "train", "self-refine"):  # the demo's own parts; the model is kept
        shutil.rmtree(out / sub, ignore_errors=True)
    for name in ("report.md", "before_after.json", "before_after.png", "curves.png"):  # a failed run leaves no earlier report looking current
        (out / name).unlink(missing_ok=True)


def before_after_chart(rows: list[tuple[str, dict[str, Any]]], columns: list[str], path: Path) -> Path:
    """Grouped bars: accuracy (%) per column for each model."""
    with figure(path, (1.6 + 1.5 * len(columns), 3.8), dpi=120) as ax:
        width = 0.8 / len(rows)
        for i, (name, values) in enumerate(rows):
            xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(columns))]
            ys = [100 * (values.get(c) or 0.0) for c in columns]
            bars = ax.bar(xs, ys, width, label=name)
            ax.bar_label(bars, labels=[f"{y:.0f}" for y in ys], fontsize=7)
        ax.set_xticks(range(len(columns)), columns, rotation=15)
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 105)
        ax.legend(fontsize=8)
    return path


# the paper's BFCL score is AST accuracy on the categories that need calls (its Overall is the mean of
# Non-Live and Live AST); irrelevance (no call when none fits) is BFCL's separate hallucination check
CALLS = "BFCL AST"
HELDOUT = {"xlam": "held-out xLAM-style", "open": "held-out open", "conversations": "held-out conversation turns"}


def demo_data(cfg: DemoConfig, folder: Path) -> tuple[Path, Path, dict[str, str]]:
    """The demo's training and held-out files in FunReason's record, and the source of each row the
    held-out split is asked as (a conversation's every turn, `evaluate.heldout.asked_turns`).

    Training: the first `xlam_rows` of the bundled xLAM-style sample, calls without reasoning (raw
    data, as the paper's pipeline starts from), `irrelevance_rows` of its queries offered the tools
    of a row that shares none (the answer: no function fits), the first `open_rows` of the bundled open
    data and its first `conversation_rows` whole conversations (no reasoning: FCDR's teacher writes
    it for every step). Held-out: `heldout_limit` rows of each single-turn source and
    `heldout_conversations` whole conversations, none of which training sees (the sample's last rows,
    the open data's held-out files)."""
    from funreason.data.mix import irrelevance_rows, template_reasoning
    from funreason.evaluate.heldout import asked_turns

    xlam = list(Reader(bundled("sample_xlam.jsonl")))
    opened = list(Reader(bundled("open_demo_train.jsonl")))
    held_open = list(Reader(bundled("open_demo_heldout.jsonl")))
    conversations = list(Reader(bundled("open_demo_conversations_train.jsonl")))
    held_conversations = list(Reader(bundled("open_demo_conversations_heldout.jsonl")))
    if cfg.xlam_rows + cfg.heldout_limit > len(xlam):
        raise ValueError(f"the sample has {len(xlam)} rows: xlam_rows + heldout_limit must not exceed it")
    if cfg.conversation_rows > len(conversations) or cfg.heldout_conversations > len(held_conversations):
        raise ValueError(f"the bundled conversations are {len(conversations)} to train on and {len(held_conversations)} held out: "
                         "conversation_rows and heldout_conversations must not exceed them")
    irrelevant = irrelevance_rows([ex for ex in xlam[: cfg.xlam_rows] if ex.calls], cfg.irrelevance_rows, seed=0)
    train = xlam[: cfg.xlam_rows] + irrelevant + opened[: cfg.open_rows] + conversations[: cfg.conversation_rows]
    for ex in train[: cfg.xlam_rows + len(irrelevant)]:
        # calls lose their reasoning (the teacher writes it); FCDR keeps statements as they are, so
        # they get the templated one the open data's statements carry
        ex.reasoning = None if ex.calls else template_reasoning(ex)
    heldout = {"xlam": xlam[len(xlam) - cfg.heldout_limit :], "open": held_open[: cfg.heldout_limit],
               "conversations": held_conversations[: cfg.heldout_conversations]}
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "train.jsonl", folder / "heldout.jsonl"
    for path, rows in zip(paths, (train, [ex for rows in heldout.values() for ex in rows])):
        write_text_atomic(path, "".join(json.dumps(ex.to_dict(), ensure_ascii=False) + "\n" for ex in rows))
    return paths[0], paths[1], {turn.id: source for source, rows in heldout.items() for ex in rows for turn in asked_turns(ex)[0]}


def _scores(ev: EvalMetrics, eval_dir: Path, categories: tuple[str, ...], sources: dict[str, str]) -> dict[str, float | None]:
    row: dict[str, float | None] = {c: ev.bfcl[c]["accuracy"] for c in categories}
    calls = [row[c] or 0.0 for c in categories if c != "irrelevance"]
    row[CALLS] = sum(calls) / len(calls) if calls else None
    row["BFCL with irrelevance"] = ev.bfcl_mean
    # the held-out accuracy of each source, from the per-row results evaluate_model wrote
    results = [json.loads(line) for line in (eval_dir / "heldout_results.jsonl").read_text(encoding="utf-8").splitlines()]
    for source, name in HELDOUT.items():
        mine = [r["correct"] for r in results if sources.get(r["id"]) == source]
        row[name] = sum(mine) / len(mine) if mine else None
    return row


def _round_line(rounds: list[RoundResult]) -> str:
    r1 = rounds[-1].rollouts
    if r1 is None:
        return "No rollouts."
    return (f"{r1.queries} queries, {r1.samples} samples; passed the checks {r1.passed_checks}, passed the judge "
            f"{r1.passed_judge}, kept {r1.kept}; failing checks by kind: "
            + (", ".join(f"{k} {v}" for k, v in r1.failed_checks.items()) or "none") + f". Trained on {rounds[-1].train_rows} rows.")


@dataclass
class _Run:
    """One demo run: its settings and what each stage hands to the next."""

    cfg: DemoConfig
    console: Console
    progress: Progress
    out: Path
    starts: list[tuple[str, float]] = field(default_factory=list)
    model: str = ""
    label: str = ""
    train_raw: Path = Path()
    heldout: Path = Path()
    sources: dict[str, str] = field(default_factory=dict)
    stats: Any = None
    data_line: str = ""
    funnel_lines: list[str] = field(default_factory=list)
    tsum: TrainSummary | None = None
    curves: Path = Path()
    evals: dict[str, tuple[EvalMetrics, Path]] = field(default_factory=dict)  # row name -> (metrics, its folder)
    rounds: list[RoundResult] | None = None

    @property
    def last(self) -> int:
        return 7 if self.cfg.self_refine else 6

    @property
    def fcdr(self) -> Path:
        return self.out / "fcdr"

    @property
    def sr_out(self) -> Path:
        return self.out / "self-refine"

    def stage(self, n: int, name: str, text: str) -> None:
        self.starts.append((name, time.perf_counter()))
        self.console.rule(f"[bold]{n}/{self.last}[/bold] {text}", align="left", characters="─")

    def evaluate(self, name: str, model: str, folder: Path) -> None:
        cfg = self.cfg
        metrics = evaluate_model(model, folder, categories=list(cfg.bfcl_categories), limit=cfg.bfcl_limit, eval_data=str(self.heldout),
                                 max_tokens=cfg.max_tokens, batch=cfg.eval_batch, progress=self.progress, label=name.split()[0].lower())
        self.evals[name] = (metrics, folder)
        if metrics.heldout and metrics.heldout.per_turn:  # as they fall, model by model; the report sets them side by side
            from funreason.evaluate.splits import interval_text, wilson

            self.console.print(f"{name}: held-out conversations, exact calls per assistant turn: " + ", ".join(
                f"turn {k} {c}/{n} {interval_text(wilson(c, n))}" for k, (c, n) in metrics.heldout.per_turn.items()))


def run_demo(cfg: DemoConfig, console: Console, progress: Progress = quiet) -> Path:
    from funreason.fcdr.rule_teacher import rule_teacher_app
    from funreason.serve.app import BackgroundServer

    run = _Run(cfg, console, progress, Path(cfg.out))
    prepare_out(run.out)
    t0 = time.perf_counter()
    console.rule("FunReason demo")
    run.stage(1, "model and data", f"the student {cfg.model} and the bundled open data")
    _model_and_data(run)
    run.stage(2, "evaluation of the base model", f"base model: BFCL ({', '.join(cfg.bfcl_categories)}; {cfg.bfcl_limit} each) and the held-out split")
    run.evaluate("base model", run.model, run.out / "eval" / "base")
    teacher = BackgroundServer(rule_teacher_app())
    try:
        run.stage(3, "FCDR", f"FCDR of {run.stats.rows} rows: the rule teacher writes reasoning and judges, served on 127.0.0.1")
        _fcdr(run, teacher.url)
        run.stage(4, "SRML training", f"SRML training of the student on FCDR's kept rows (LoRA r{cfg.train.lora}, last {cfg.train.lora_layers} layers, {cfg.train.max_steps} steps)")
        _train(run)
        run.stage(5, "evaluation of the trained model", "the SRML-trained student, on the same entries")
        # written where self-refine keeps its round-0 evaluation, so the round reuses it
        run.evaluate("SRML-trained", run.tsum.final, run.sr_out / "round-0" / "eval")
        if cfg.self_refine:
            run.stage(6, "self-refinement round", f"one self-refinement round: {cfg.refine_queries} queries, {cfg.refine_samples} samples each, judged by the rule teacher, SRML again")
            _self_refine(run, teacher.url)
    finally:
        teacher.stop()
    run.stage(run.last, "report", "report")
    return _report(run, t0)


def _model_and_data(run: _Run) -> None:
    from transformers import AutoTokenizer

    from funreason.models import MODELS, get_model

    cfg = run.cfg
    run.model = cfg.model if cfg.model not in MODELS else str(get_model(cfg.model, run.out / "model", log=run.console.print))
    run.label = cfg.model if cfg.model in MODELS else Path(run.model).name
    run.train_raw, run.heldout, run.sources = demo_data(cfg, run.out / "data")
    run.stats = compute_stats(Reader(run.train_raw), AutoTokenizer.from_pretrained(run.model))
    n = run.stats.rows
    run.data_line = (f"{n} training rows: {cfg.xlam_rows} raw xLAM-style rows of the bundled sample, "
                     f"{n - cfg.xlam_rows - cfg.open_rows - cfg.conversation_rows} of its "
                     f"queries offered only tools that cannot answer them (no call fits: mostly the row's own tools less the one it calls), "
                     f"{cfg.open_rows} rows of open data (Seal-Tools, glaive, STE) and {cfg.conversation_rows} whole conversations with "
                     f"tool results (glaive dialogues, ToolTalk, API-Bank; every assistant turn learned); none from BFCL. Held out: "
                     f"{cfg.heldout_limit} rows of each single-turn source and {cfg.heldout_conversations} whole conversations "
                     f"({sum(s == 'conversations' for s in run.sources.values())} assistant turns).")
    run.console.print(run.data_line)


def _fcdr(run: _Run, teacher_url: str) -> None:
    from funreason.llm.factory import BackendConfig
    from funreason.fcdr.report import summarise, write_report
    from funreason.fcdr.runner import RefineConfig, refine

    run.console.print(f"[yellow]{STAND_IN}[/yellow]")
    teacher = BackendConfig(endpoints=[teacher_url], served_model="rule-teacher")  # its requests in flight: concurrency below
    rcfg = RefineConfig(str(run.train_raw), str(run.fcdr), teacher=teacher, max_regenerations=1, concurrency=16, max_tokens=512)

    def counted(description: str, unit: str, total: int | None = None):
        return run.progress("FCDR", unit, run.stats.rows)

    report, usage = asyncio.run(refine(rcfg, counted))
    summary = summarise(run.fcdr, report, usage)
    write_report(run.fcdr, summary)
    run.funnel_lines = [*summary.funnel_markdown(), "", "Files: " + ", ".join(f"{k} {v}" for k, v in summary.files.items())
                        + f"; statements kept as they are: {summary.statements_kept}; failed by kind: "
                        + (", ".join(f"{k} {v}" for k, v in summary.failed_by_kind.items()) or "none") + "."]
    run.console.print("\n".join(run.funnel_lines))


def _train(run: _Run) -> None:
    cfg = run.cfg
    run_dir = run.out / "train"
    run.tsum = train(dataclasses.replace(cfg.train, model=run.model, data=str(run.fcdr / "kept.jsonl"), out=str(run_dir),
                                         logging_steps=max(1, min(5, cfg.train.max_steps // 2))), log=run.console.print)
    run.curves = plot_metrics(run_dir / "metrics.jsonl", run.out / "curves.png")


def _self_refine(run: _Run, teacher_url: str) -> None:
    from funreason.selfrefine import SelfRefineConfig, round_training, run_self_refine

    cfg = run.cfg
    run.rounds = run_self_refine(
        SelfRefineConfig(
            model=run.tsum.final, data=str(run.train_raw), out=str(run.sr_out), judge_endpoints=[teacher_url], judge_model="rule-teacher",
            rounds=1, samples=cfg.refine_samples, hard_samples=cfg.refine_samples + 1, hard=[str(run.fcdr / "hard.jsonl")],
            base_data=[str(run.fcdr / "kept.jsonl")], limit=cfg.refine_queries, temperature=0.8, max_tokens=cfg.max_tokens,
            batch=16, eval_categories=list(cfg.bfcl_categories), eval_limit=cfg.bfcl_limit, eval_data=str(run.heldout),
            eval_max_tokens=cfg.max_tokens,
            train=dataclasses.replace(round_training(), max_steps=cfg.refine_steps, learning_rate=cfg.train.learning_rate / 2,
                                      batch_size=cfg.train.batch_size, lora=cfg.train.lora, lora_layers=cfg.train.lora_layers,
                                      max_length=cfg.train.max_length, logging_steps=5, seed=1,
                                      allow_benchmark_overlap=cfg.train.allow_benchmark_overlap),
        ),
        log=run.console.print, progress=run.progress,
    )
    run.evals["after self-refinement"] = (run.rounds[-1].eval, run.sr_out / "round-1" / "eval")


def _report(run: _Run, t0: float) -> Path:
    """`report.md`, `before_after.json` and `.png` from what the stages left in `run`."""
    cfg = run.cfg
    columns = [*cfg.bfcl_categories, CALLS, "BFCL with irrelevance", *HELDOUT.values()]
    table = [(name, _scores(ev, folder, cfg.bfcl_categories, run.sources)) for name, (ev, folder) in run.evals.items()]
    chart = before_after_chart(table, columns, run.out / "before_after.png")
    eval_lines = md_table(("model", *columns), [(name, *(pct(v[c]) for c in columns)) for name, v in table])
    eval_lines += ["", "The BFCL entries are dev entries (studied while the generated training rows were designed, "
                   "`docs/evaluation.md`): development figures. Right / entries and the 95% Wilson interval, per category:", "",
                   *_intervals(run), "", *_per_turn(run)]
    before, after = table[0][1], table[1][1]
    deltas = ", ".join(f"{c} {100 * ((after[c] or 0) - (before[c] or 0)):+.1f}" for c in columns if before[c] is not None)
    total = time.perf_counter() - t0
    lines = _report_lines(run, eval_lines, deltas, chart, total)
    report_path = run.out / "report.md"
    write_text_atomic(report_path, "\n".join(lines) + "\n")
    write_text_atomic(run.out / "before_after.json", json.dumps({"columns": columns, "rows": dict(table), "seconds": round(total, 1)}, indent=2))
    run.console.print("\n".join(eval_lines))
    run.console.print(f"[bold]done in {total:.0f}s[/bold] · report: {report_path}")
    return report_path


def _per_turn(run: _Run) -> list[str]:
    """Exact calls per assistant turn of the held-out conversations, right / asked with the 95% Wilson
    interval, one column per model: each turn asked with the gold history before it."""
    from funreason.evaluate.splits import interval_text, wilson

    turns = sorted({k for ev, _ in run.evals.values() if ev.heldout for k in ev.heldout.per_turn})
    if not turns:
        return []

    def cell(ev: EvalMetrics, k: int) -> str:
        c, n = ev.heldout.per_turn.get(k, (0, 0)) if ev.heldout else (0, 0)
        return f"{c}/{n} {interval_text(wilson(c, n))}" if n else "–"

    held = sum(s == "conversations" for s in run.sources.values())
    return [f"Held-out conversations (held-out split, {run.cfg.heldout_conversations} conversations, {held} assistant turns): exact calls "
            "per assistant turn, each turn asked with the gold history before it (earlier reasoning dropped, as in training); "
            "a turn whose reference is a statement is right when no call decodes. Right / asked and the 95% Wilson interval:", "",
            *md_table(("assistant turn", *run.evals), [(k, *(cell(ev, k) for ev, _ in run.evals.values())) for k in turns])]


def _intervals(run: _Run) -> list[str]:
    """Each model's BFCL figures as right / entries with their 95% Wilson interval."""
    from funreason.evaluate.splits import interval_text, wilson

    cats = run.cfg.bfcl_categories

    def cell(score: dict[str, float]) -> str:
        n = int(score["total"])
        k = round(score["accuracy"] * n)
        return f"{k}/{n} {interval_text(wilson(k, n))}"

    return md_table(("model", *cats), [(name, *(cell(ev.bfcl[c]) if c in ev.bfcl else "–" for c in cats))
                                       for name, (ev, _) in run.evals.items()])


def _report_lines(run: _Run, eval_lines: list[str], deltas: str, chart: Path, total: float) -> list[str]:
    cfg, st, tsum = run.cfg, run.stats, run.tsum
    ends = [t for _, t in run.starts[1:]] + [time.perf_counter()]
    return [
        "# FunReason demo report",
        "",
        f"Student: **{run.label}**, a real pretrained instruct model (`{run.model}`). Data: {run.data_line} "
        f"The xLAM-style sample is synthetic (`funreason sample`, in the shape of xLAM-60k); the open rows are real "
        f"(`data/OPEN_DEMO_NOTICE.md`). Everything ran offline on the CPU in {total:.0f} s.",
        "",
        f"> {STAND_IN}",
        "",
        "## Before and after",
        "",
        f"Accuracy (%): the first {cfg.bfcl_limit} entries of each BFCL category, scored like the official checker "
        f"(`{CALLS}`: the mean of the categories that need a call, the kind of score the paper reports; `BFCL with "
        "irrelevance`: the mean of all, irrelevance included, which the paper's score leaves out), and "
        f"exact calls on the {len(run.sources)} held-out rows (each turn of a held-out conversation counts as one), by source. Greedy decoding, at most {cfg.max_tokens} new tokens. "
        "The base model answers every request in prose: that scores 100 on irrelevance (no call is the right answer "
        "there) and 0 wherever a call is needed. A held-out row whose reference is a statement counts as right when no "
        "call decodes from the answer, as BFCL's irrelevance checker counts.",
        "",
        *eval_lines,
        "",
        f"Change after SRML training, in points: {deltas}.",
        "",
        f"![before and after]({chart.name})",
        "",
        "## Segment statistics of the training rows (paper, Table 1)",
        "",
        *st.markdown(),
        "",
        f"Before FCDR: only statement rows carry reasoning ({st.no_reasoning} rows have none; the teacher writes it).",
        "",
        "## FCDR funnel",
        "",
        *run.funnel_lines,
        "",
        "## SRML training",
        "",
        "| step | loss | L_think | L_result | α | tokens/s |",
        "|---|---|---|---|---|---|",
        *[f"| {m['step']} | {m['loss']:.3f} | {m.get('think_loss', float('nan')):.3f} | {m.get('result_loss', float('nan')):.3f} | "
          f"{m['alpha']:.3f} | {m['tokens_per_s']:.0f} |" for m in read_metrics(run.out / "train" / "metrics.jsonl")],
        "",
        f"![loss curves]({run.curves.name})",
        "",
        f"{tsum.steps} steps in {tsum.seconds:.0f} s on {tsum.data.kept} rows; model: `{tsum.final}`.",
        "",
        "## Self-refinement round",
        "",
        _round_line(run.rounds) if run.rounds else "Not run (`funreason demo --self-refine` adds one round, about 4 minutes more).",
        "",
        "## Time per stage",
        "",
        "| stage | seconds |",
        "|---|---|",
        *[f"| {name} | {end - start:.1f} |" for (name, start), end in zip(run.starts, ends)],
    ]
