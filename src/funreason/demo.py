"""`funreason demo`: the whole system on the embedded default, offline, on a CPU, in minutes.

bundled raw sample → tiny student model → FCDR with a locally served tiny teacher → SRML training →
BFCL evaluation on a small subset plus a held-out split of the sample → one self-refinement round →
`demo/report.md` (funnel, loss curves, evaluation table, per-round chart).

The teacher is the tiny model fine-tuned for a few seconds to answer in FCDR's reply formats; it
is served by `funreason serve`'s app on 127.0.0.1 and reached over HTTP exactly as a real teacher
behind vLLM would be. Its judgements are not meaningful, and the report says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from funreason.calls import format_python_calls
from funreason.formats import Reader, example_from_row
from funreason.formats.jsonl import iter_json_rows
from funreason.sample import sample_path
from funreason.stats import compute_stats
from funreason.train.plot import plot_metrics, read_metrics
from funreason.train.tiny import build_tiny_model
from funreason.train.trainer import TrainConfig, train

TEACHER_WARNING = (
    "The demo's teacher is a tiny model fine-tuned for seconds to reply in FCDR's formats: its reasoning and "
    "verdicts are NOT meaningful, so the funnel and the scores below only show the machinery working. For real data, "
    "serve a strong teacher (e.g. `vllm serve Qwen/QwQ-32B`) and run "
    "`funreason refine RAW --out DIR --endpoint http://HOST:8000/v1 --teacher-model Qwen/QwQ-32B`."
)
EVAL_CATEGORIES = ["simple_python", "multiple", "parallel", "irrelevance", "live_simple"]


@contextlib.contextmanager
def _quiet_progress(description: str, unit: str, total: int | None = None) -> Iterator[Callable[..., None]]:
    yield lambda n=1: None


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def split_sample(src: Path, data_dir: Path, every: int = 10) -> tuple[Path, int, Path, int]:
    """Every `every`-th row of the sample is held out (never refined nor trained on).
    Returns (train file, its rows, held-out file, its rows)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lines = [line for line in src.read_text(encoding="utf-8").splitlines() if line.strip()]
    train, heldout = [line for i, line in enumerate(lines) if i % every], lines[::every]
    train_path, heldout_path = data_dir / "train_raw.jsonl", data_dir / "heldout.jsonl"
    train_path.write_text("".join(line + "\n" for line in train), encoding="utf-8")
    heldout_path.write_text("".join(line + "\n" for line in heldout), encoding="utf-8")
    return train_path, len(train), heldout_path, len(heldout)


def teacher_rows(raw: Path, limit: int = 120) -> list[dict[str, Any]]:
    """Chat rows that teach a tiny model FCDR's reply formats: the stage prompts exactly as
    `funreason refine` writes them, answered with templated reasoning and PASS verdicts."""
    from funreason.refine.runner import _context, _functions, fill, prompt

    rows = []
    for i, (where, row) in enumerate(iter_json_rows(str(raw))):
        if i >= limit:
            break
        ex = example_from_row(row, where)
        fn = _functions(ex)
        if isinstance(ex.answer, str):  # statements: only self-refinement's judge sees them
            text = fill(prompt("score"), **{**_context(ex, fn), "reasoning": ex.reasoning or "(none)"})
            rows.append({"id": f"teacher-{i}-score", "tools": [], "messages": [
                {"role": "user", "content": text}, {"role": "assistant", "content": "A fitting reply.\nSCORE: 6\nVERDICT: PASS"}]})
            continue
        if not ex.calls:
            continue
        names = ", ".join(sorted({c.name for c in ex.calls}))
        reasoning = f"The user asks for something {names} can do. Each argument value is taken from the query."
        ctx = _context(ex, fn)
        replies = {
            "write_cot": f"<think>\n{reasoning}\n</think>\nANSWER: {format_python_calls(ex.calls)}",
            "query_tool": "The functions cover the request and the values are in the query.\nVERDICT: PASS",
            "cot": "The reasoning leads to the answer.\nVERDICT: PASS",
            "function_param": "The names and values match the query.\nVERDICT: PASS",
            "score": "The steps follow from the query.\nSCORE: 7\nVERDICT: PASS",
        }
        for stage, reply in replies.items():
            text = fill(prompt(stage), **{**ctx, "reasoning": ex.reasoning or reasoning})
            for copy in range(2 if stage == "write_cot" else 1):  # the longest reply to learn: shown twice
                rows.append({"id": f"teacher-{i}-{stage}-{copy}", "tools": [],
                             "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": reply}]})
    return rows


def run_demo(out_dir: Path, console: Console, progress: Callable[..., Any] = _quiet_progress) -> Path:
    from transformers import AutoTokenizer

    from funreason.llm.http import HTTPBackend
    from funreason.llm.local import LocalEngine
    from funreason.refine.report import summarise, write_report
    from funreason.refine.runner import RefineConfig, run_refine
    from funreason.selfrefine import SelfRefineConfig, evaluate_model, run_self_refine
    from funreason.serve import BackgroundServer, ServeConfig, create_app

    out_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("tiny-model", "data", "teacher", "fcdr", "train", "self-refine"):  # every demo run starts afresh
        shutil.rmtree(out_dir / sub, ignore_errors=True)
    t0 = time.perf_counter()
    starts: list[tuple[str, float]] = []  # (stage name for the report, start time)

    def stage(n: int, name: str, text: str) -> None:
        starts.append((name, time.perf_counter()))
        console.rule(f"[bold]{n}/7[/bold] {text}", align="left", characters="─")

    console.rule("FunReason demo")
    stage(1, "model, statistics, split", f"tiny student model and tokenizer → {out_dir / 'tiny-model'}; segment statistics of the bundled sample")
    model_dir = build_tiny_model(out_dir / "tiny-model")
    tok = AutoTokenizer.from_pretrained(model_dir)
    st = compute_stats(Reader(sample_path()), tok)
    stats_lines = [
        "| segment | rows | mean | median | p90 | max |",
        "|---|---|---|---|---|---|",
        *[f"| {name} | {s.count} | {s.mean:.2f} | {s.median:.0f} | {s.p90:.0f} | {s.max} |"
          for name, s in (("think", st.think), ("result", st.result))],
        "",
        f"think:result ratio {st.think_result_ratio:.2f}; think share of answer tokens {st.think_share:.1%}; "
        f"rows without reasoning {st.no_reasoning}; rows without a call {st.no_call}.",
    ]
    console.print("\n".join(stats_lines))
    train_raw, n_train, heldout, n_heldout = split_sample(sample_path(), out_dir / "data")
    console.print(f"split: {n_train} rows to refine and train on, {n_heldout} held out ({heldout})")

    stage(2, "teacher (training, serving)", "the tiny teacher: fine-tuned for seconds on FCDR's reply formats, then served on 127.0.0.1")
    console.print(f"[yellow]{TEACHER_WARNING}[/yellow]")
    teacher_data = out_dir / "teacher" / "formats.jsonl"
    teacher_data.parent.mkdir(parents=True, exist_ok=True)
    teacher_data.write_text("".join(json.dumps(r) + "\n" for r in teacher_rows(train_raw)), encoding="utf-8")
    teacher_run = out_dir / "teacher" / "run"
    train(TrainConfig(model=str(model_dir), data=str(teacher_data), out=str(teacher_run), loss="sft", max_steps=120,
                          batch_size=8, learning_rate=3e-3, warmup_ratio=0.0, lr_scheduler="constant", logging_steps=40,
                      save_steps=10**6, report_to="none", max_length=2048), log=lambda *_: None)
    engine = LocalEngine.from_pretrained(str(teacher_run / "final"), max_batch=32)
    server = BackgroundServer(create_app(engine, ServeConfig("tiny-teacher", max_tokens_cap=512)))
    console.print(f"teacher served at {server.url}/v1 as 'tiny-teacher'")
    try:
        stage(3, "FCDR", f"FCDR: the teacher writes reasoning and judges {n_train} rows in five stages (funreason refine)")
        fcdr = out_dir / "fcdr"
        cfg = RefineConfig(str(train_raw), str(fcdr), max_regenerations=1, concurrency=32, max_tokens=160)

        async def refine():
            with progress("FCDR", "rows", n_train) as advance:
                async with HTTPBackend([server.url], "tiny-teacher", concurrency=32) as llm:
                    return await run_refine(cfg, llm, lambda _outcome: advance()), llm.usage

        report, usage = asyncio.run(refine())
        summary = summarise(fcdr, report, usage)
        write_report(fcdr, summary)
        funnel_lines = ["| stage | rows |", "|---|---|", *[f"| {name} | {count} |" for name, count in summary["funnel"]]]
        files = summary["files"]
        funnel_lines += ["", "Files: " + ", ".join(f"{k} {v}" for k, v in files.items())
                         + f"; statements kept as they are: {summary['statements_kept']}; teacher calls per stage: "
                         + ", ".join(f"{k} {v}" for k, v in summary["this_run"]["llm_calls"].items()) + "."]
        if files["errors"]:
            funnel_lines += ["", f"{files['errors']} rows are in `errors.jsonl`: the tiny teacher's replies had no readable "
                             "reasoning or verdict even when asked again. Nothing is lost: `funreason refine` run again retries them."]
        console.print("\n".join(funnel_lines))

        stage(4, "SRML training", "SRML training of the student on FCDR's kept rows (self-adjusted α)")
        run_dir = out_dir / "train"
        tsum = train(
            TrainConfig(model=str(model_dir), data=str(fcdr / "kept.jsonl"), out=str(run_dir), max_steps=80, batch_size=4,
                        learning_rate=2e-3, logging_steps=10, save_steps=40, alpha_mode="self", report_to="none",
                        max_length=2048, skip_invalid=True),
            log=console.print,
        )
        curves = plot_metrics(run_dir / "metrics.jsonl", out_dir / "curves.png")
        train_lines = [
            "| step | loss | L_think | L_result | α | tokens/s |",
            "|---|---|---|---|---|---|",
            *[f"| {m['step']} | {m['loss']:.3f} | {_fmt(m.get('think_loss'))} | {_fmt(m.get('result_loss'))} | {m['alpha']:.3f} | {m['tokens_per_s']:.0f} |"
              for m in read_metrics(run_dir / "metrics.jsonl")],
        ]
        console.print("\n".join(train_lines))

        stage(5, "evaluation", f"evaluation of the student: BFCL ({', '.join(EVAL_CATEGORIES)}; 4 entries each) and the {n_heldout}-row held-out split")
        sr_out = out_dir / "self-refine"
        # written where self-refine keeps its round-0 evaluation, so the round reuses it
        evaluate_model(tsum["final"], sr_out / "round-0" / "eval", categories=EVAL_CATEGORIES, limit=4, eval_data=str(heldout),
                       max_tokens=96, batch=32, progress=progress, label="student")
        stage(6, "self-refinement round (rollouts, judge, training, evaluation)", "one self-refinement round: 2 samples per query (4 for hard ones), judged by the teacher, SRML again")
        rounds = run_self_refine(
            SelfRefineConfig(
                model=tsum["final"], data=str(train_raw), out=str(sr_out), judge_endpoints=[server.url],
                judge_model="tiny-teacher", judge_max_tokens=160, rounds=1, samples=2, hard_samples=4, hard=[str(fcdr / "hard.jsonl")],
                base_data=[str(fcdr / "kept.jsonl")], limit=48, temperature=0.8, max_tokens=96, batch=32,
                max_steps=30, learning_rate=1e-3, batch_size=4, eval_categories=EVAL_CATEGORIES, eval_limit=4,
                eval_data=str(heldout), eval_max_tokens=96, train_overrides={"max_length": 2048, "logging_steps": 10},
            ),
            log=console.print, progress=progress,
        )
    finally:
        server.stop()
        engine.close()

    stage(7, "report", "report")
    eval_lines = ["| model | " + " | ".join(EVAL_CATEGORIES) + " | BFCL mean | held-out split |",
                  "|---|" + "---|" * (len(EVAL_CATEGORIES) + 2)]
    for r in rounds:
        ev = r["eval"]
        name = "SRML-trained student (round 0)" if r["round"] == 0 else f"after self-refinement round {r['round']}"
        eval_lines.append(f"| {name} | " + " | ".join(_pct(ev["bfcl"][c]["accuracy"]) for c in EVAL_CATEGORIES)
                          + f" | {_pct(ev['bfcl_mean'])} | {_pct(ev['heldout']['accuracy'])} |")
    r1 = rounds[-1]["rollouts"]
    round_lines = [
        "| round | queries | samples | passed checks | passed judge | kept | hard queries → kept | training rows |",
        "|---|---|---|---|---|---|---|---|",
        *[f"| {r['round']} | {r['rollouts']['queries']} | {r['rollouts']['samples']} | {r['rollouts']['passed_checks']} | "
          f"{r['rollouts']['passed_judge']} | {r['rollouts']['kept']} | {r['rollouts']['hard_kept']} of {r['rollouts']['hard_in']} | {r['train_rows']} |"
          for r in rounds[1:]],
        "",
        "Samples failing the decidable checks, by kind: "
        + (", ".join(f"{k} {v}" for k, v in r1["failed_checks"].items()) or "none") + ".",
    ]
    shutil.copy(sr_out / "rounds.png", out_dir / "rounds.png")
    total = time.perf_counter() - t0
    ends = [t for _, t in starts[1:]] + [time.perf_counter()]
    lines = [
        "# FunReason demo report",
        "",
        f"Bundled sample ({st.rows} xLAM-style rows: {n_train} refined and trained on, {n_heldout} held out); "
        f"tiny Qwen2-architecture model, byte-level BPE tokenizer ({len(tok)} tokens). Everything ran offline on CPU "
        f"in {total:.0f} s.",
        "",
        f"> {TEACHER_WARNING}",
        "",
        "## Segment statistics (paper, Table 1)",
        "",
        *stats_lines,
        "",
        "Paper, Table 1 (xLAM refined by QwQ-32B): think 350.74 mean / 248 median, result 31.07 / 27.",
        "",
        "## FCDR funnel",
        "",
        *funnel_lines,
        "",
        "## SRML training (student, 80 steps, self-adjusted α)",
        "",
        *train_lines,
        "",
        f"![loss curves: L_think, L_result, α]({curves.name})",
        "",
        f"Trained in {tsum['seconds']:.1f} s on {tsum['data']['kept']} rows; model: {tsum['final']}.",
        "",
        "## Evaluation",
        "",
        "Accuracy (%) on the first 4 entries of each BFCL category (scored like the official checker) and exact-call "
        f"accuracy on the {n_heldout}-row held-out split of the sample. A tiny model trained for a minute is expected "
        "to score near 0: the table shows the pipeline, not a result. Answers without a call pass `irrelevance` and "
        "the held-out rows whose reference is a statement.",
        "",
        *eval_lines,
        "",
        "## Self-refinement",
        "",
        *round_lines,
        "",
        "![accuracy per round](rounds.png)",
        "",
        "## Time per stage",
        "",
        "| stage | seconds |",
        "|---|---|",
        *[f"| {name} | {end - start:.1f} |" for (name, start), end in zip(starts, ends)],
        "",
        f"Files: FCDR output in `{fcdr}`, training run in `{run_dir}`, rounds in `{sr_out}` (rounds.json).",
    ]
    report_path = out_dir / "report.md"
    report_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    console.print("\n".join(eval_lines))
    console.print(f"[bold]done in {total:.0f}s[/bold] · report: {report_path}")
    return report_path
