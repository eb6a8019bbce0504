"""`funreason self-refine`: the paper's self-refinement loop.

Each round, with the current model:
1. rollouts: K samples (reasoning and answer) per query of the source data, sampled with a
   temperature; queries that were hard (no sample kept in the previous round, or rows FCDR left in
   `hard.jsonl`) get `hard_samples` samples instead;
2. FCDR on every sample: the reference answer is known, so format and function & parameter
   correctness are decided by parsing the sample and matching its calls against the reference
   (AST equality; a statement reference needs an answer without calls); the judge(s) then score
   the reasoning of the samples that pass (`prompts/score.txt`: SCORE 0–10 and a verdict;
   several judge endpoints are averaged, a majority of PASS is needed). The passing sample with
   the highest mean score is kept;
3. SRML training of the next model, starting from the current one, on the kept samples of every
   round so far plus the earlier data (`base_data`, e.g. the FCDR output the model was trained on);
4. evaluation: BFCL categories (accuracy per category and their mean) and, if given, exact-call
   accuracy on a held-out split.

Layout of `out`: `round-0/eval` (the starting model), then per round `round-N/samples.jsonl` (one
line per query: every sample, its checks, judge scores, the kept one), `kept.jsonl`, `train.jsonl`,
`train/` (the run, `train/final` the model), `eval/`, `round.json`; and `rounds.json` with
`rounds.png`. Everything resumes: a finished round is read back, a round in progress continues
with the queries not yet in its samples file, training resumes from its last checkpoint, and
evaluation from its result files.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from funreason.calls import parse_output
from funreason.errors import BackendError, SchemaError
from funreason.formats import Reader, example_from_row
from funreason.formats.jsonl import BadLine, iter_json_rows, read_finished_rows
from funreason.llm import SamplingParams
from funreason.llm.launch import LaunchedEngine, ModelEngines, check_template
from funreason.refine.checks import parse_verdict, same_calls
from funreason.formats.jsonl import cut_torn_line, write_text_atomic
from funreason.refine.runner import fill, functions_json, prompt, stage_context
from funreason.schema import Example

DEFAULT_EVAL_CATEGORIES = ["simple_python", "multiple", "parallel", "irrelevance"]
Progress = Callable[[str, str, int], contextlib.AbstractContextManager]


@contextlib.contextmanager
def _no_progress(description: str, unit: str, total: int) -> Iterator[Callable[..., None]]:
    yield lambda n=1: None


@dataclass
class SelfRefineConfig:
    model: str
    data: str
    out: str
    judge_endpoints: list[str] = field(default_factory=list)
    judge_model: str | None = None  # the name the judge endpoints serve
    judge: str | None = None  # or a local judge model (transformers)
    judge_api_key: str | None = None
    rounds: int = 1
    samples: int = 4
    hard_samples: int = 8
    hard: list[str] = field(default_factory=list)  # FCDR hard.jsonl files
    base_data: list[str] = field(default_factory=list)  # earlier training data, trained on again each round
    limit: int | None = None  # only the first N queries of the data
    temperature: float = 0.8
    max_tokens: int = 512
    batch: int = 16  # prompts generated together
    judge_concurrency: int = 32
    judge_max_tokens: int = 1024
    format: str = "auto"
    seed: int = 0
    # training of each round (SRML)
    max_steps: int = -1
    epochs: float = 1.0
    learning_rate: float = 1e-5
    batch_size: int = 4
    alpha: float = 0.5
    alpha_mode: str = "fixed"
    lora: int = 0
    train_overrides: dict[str, Any] = field(default_factory=dict)  # any other TrainConfig field
    # evaluation of each round
    eval_categories: list[str] = field(default_factory=lambda: list(DEFAULT_EVAL_CATEGORIES))
    eval_limit: int | None = None
    eval_data: str | None = None  # a held-out split: exact-call accuracy
    eval_max_tokens: int = 512
    # an inference engine launched per model ('vllm serve {model} --port {port} ...'): rollouts and
    # evaluation go through it instead of in-process transformers; likewise the local judge
    rollout_server: str | None = None
    judge_server: str | None = None
    engine_start_timeout: float = 900.0

    def validate(self) -> None:
        if bool(self.judge_endpoints) == bool(self.judge):
            raise ValueError("give a judge: --judge-endpoint URL (one or more, with --judge-model NAME) or --judge PATH, not both")
        if self.judge_endpoints and not self.judge_model:
            raise ValueError("judge endpoints need the model name they serve (--judge-model)")
        if self.judge_server and not self.judge:
            raise ValueError("--judge-server launches the judge model given by --judge PATH")
        for template in filter(None, [self.rollout_server, self.judge_server]):
            check_template(template)
        if self.rounds < 1 or self.samples < 1 or self.hard_samples < 1:
            raise ValueError("--rounds, --samples and --hard-samples must be at least 1")
        for p in [self.data, *self.hard, *self.base_data] + ([self.eval_data] if self.eval_data else []):
            if not Path(p).exists():
                raise ValueError(f"{p}: no such file")


@dataclass
class Query:
    key: str  # file:line of the source row, stable across runs
    ex: Example


def load_queries(cfg: SelfRefineConfig, log: Callable[[str], None]) -> tuple[list[Query], set[str]]:
    """The source queries (with a reference answer) and the keys of FCDR's hard rows, which are
    added to the queries when they are not among them."""
    queries: list[Query] = []
    skipped: dict[str, int] = {}
    name = Path(cfg.data).name
    for where, raw in iter_json_rows(cfg.data):
        if cfg.limit is not None and len(queries) >= cfg.limit:
            break
        key = where.replace(str(Path(cfg.data)), name, 1)
        try:
            if isinstance(raw, BadLine):
                raise raw
            ex = example_from_row(raw, where, cfg.format)
        except SchemaError as e:
            skipped[f"{e.where}: {e.reason}"] = 1
            continue
        if ex.heldout:
            raise SchemaError("a held-out benchmark row (BFCL): never train on it", where)
        if ex.answer is None:
            skipped[f"{where}: no reference answer"] = 1
            continue
        queries.append(Query(key, ex))
    for problem in list(skipped)[:5]:
        log(f"skipped {problem}")
    if skipped:
        log(f"{len(skipped)} source rows skipped in all (unreadable or without a reference answer)")
    known = {q.key for q in queries}
    hard: set[str] = set()
    for path in cfg.hard:
        for row in read_finished_rows(path):
            key = row.get("key") if isinstance(row, dict) else None
            if not key or not isinstance(row.get("example"), dict):
                continue
            hard.add(key)
            if key not in known:
                try:
                    queries.append(Query(key, example_from_row(row["example"], f"{path}: {key}", "native")))
                    known.add(key)
                except SchemaError as e:
                    log(f"skipped hard row {key}: {e}")
    return queries, hard


# --- judging ------------------------------------------------------------------------------------

_SCORE = re.compile(r"SCORE\s*[:=]\s*\**\s*(\d+(?:\.\d+)?)", re.I)


def parse_score(text: str) -> tuple[float, bool] | None:
    """(score 0–10, passed) from a judge's reply, or None when it has no readable verdict."""
    verdict = parse_verdict(text)
    if verdict is None or verdict[0] not in ("PASS", "FAIL"):
        return None
    found = _SCORE.findall(text)
    score = min(10.0, float(found[-1])) if found else (10.0 if verdict[0] == "PASS" else 0.0)
    return score, verdict[0] == "PASS"


class Judges:
    """One or several judges; each sample gets one verdict and score per judge."""

    def __init__(self, backends: list[Any], params: SamplingParams, retries: int = 2, concurrency: int = 32):
        self.backends, self.params, self.retries = backends, params, retries
        self.limit = asyncio.Semaphore(concurrency)
        self.calls = 0

    async def _one(self, backend: Any, text: str) -> tuple[float, bool, str | None]:
        """(score, passed, problem). A reply without a readable verdict is asked again; after the
        retries it counts as a failed judgement (recorded with the reply). Transport failures raise
        BackendError: the query is then not recorded and is judged again on the next run."""
        reply = ""
        for _ in range(self.retries + 1):
            async with self.limit:
                self.calls += 1
                reply = (await backend.chat([{"role": "user", "content": text}], self.params)).text
            parsed = parse_score(reply)
            if parsed is not None:
                return parsed[0], parsed[1], None
        return 0.0, False, f"no readable SCORE/VERDICT after {self.retries + 1} replies; last: {reply[-200:]!r}"

    async def judge(self, ex: Example, functions: str, reasoning: str | None, answer: Any) -> dict[str, Any]:
        """`functions`: the row's functions as FCDR shows them (`functions_json(ex)`), built once per query."""
        text = fill(prompt("score"), **{**stage_context(ex, functions, answer), "reasoning": reasoning or "(none)"})
        results = await asyncio.gather(*[self._one(b, text) for b in self.backends])
        scores = [s for s, _, _ in results]
        passes = sum(p for _, p, _ in results)
        problems = [e for _, _, e in results if e]
        return {"scores": scores, "score": sum(scores) / len(scores), "passed": passes * 2 > len(results),
                **({"unreadable": problems} if problems else {})}


# --- one round ----------------------------------------------------------------------------------


def check_sample(text: str, ex: Example) -> tuple[str | None, Any, str | None]:
    """(reasoning, answer, problem): the decidable FCDR checks of a sample against the reference."""
    out = parse_output(text)
    if ex.calls:
        if out.calls is None:
            return out.reasoning, None, f"format: {out.error or 'no calls'}"
        if not same_calls(out.calls, ex.calls):
            return out.reasoning, out.calls, "function & parameter: the calls differ from the reference"
        if not out.reasoning:
            return None, out.calls, "no reasoning"
        return out.reasoning, out.calls, None
    if out.calls:  # the reference is a statement
        return out.reasoning, out.calls, "function & parameter: calls where the reference answers in words"
    statement = (out.content or "").strip()
    if not statement:
        return out.reasoning, None, "format: empty answer"
    return out.reasoning, statement, None


def _seed(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "little")


async def rollout_round(cfg: SelfRefineConfig, r: int, model: str, queries: list[Query], hard: set[str], judges: Judges,
                        rd: Path, engines: ModelEngines, progress: Progress, log: Callable[[str], None]) -> dict[str, Any]:
    """Samples, checks and judgements of round `r` into `rd/samples.jsonl` (resumable); returns counts.
    The engine (`engines.get(model)`: in-process, or a launched server) decodes on its own; this
    loop awaits it and the judges."""
    from funreason.chat import render_prompt

    path = rd / "samples.jsonl"
    cut_torn_line(path)
    done = {row["key"] for row in read_finished_rows(path) if isinstance(row, dict) and "key" in row}
    todo = [q for q in queries if q.key not in done]
    errors: list[str] = []
    if todo:
        engine = engines.get(model)
        tok = engine.tokenizer
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            with progress(f"round {r}: rollouts", "queries", len(todo)) as advance:
                per_chunk = max(1, cfg.batch // cfg.samples)
                for i in range(0, len(todo), per_chunk):
                    chunk = todo[i : i + per_chunk]
                    futures = []
                    for q in chunk:
                        n = cfg.hard_samples if q.key in hard else cfg.samples
                        text = render_prompt(q.ex, tok)
                        futures.append([engine.submit(text, SamplingParams(max_tokens=cfg.max_tokens, temperature=cfg.temperature,
                                                                           seed=_seed(cfg.seed, r, q.key, k))) for k in range(n)])
                    texts = [[g.text for g in await asyncio.gather(*map(asyncio.wrap_future, fs))] for fs in futures]
                    rows, failed = await _judge_chunk(chunk, texts, hard, judges, r)
                    errors += failed
                    for row in rows:
                        os.write(fd, (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
                    advance(len(chunk))
        finally:
            os.close(fd)
    if errors:
        log(f"round {r}: {len(errors)} queries hit judge errors and are not recorded (first: {errors[0]}); run again to retry them")
    return summarise_samples(path, rd, len(errors))


async def _judge_chunk(chunk: list[Query], texts: list[list[str]], hard: set[str], judges: Judges, r: int) -> tuple[list[dict], list[str]]:
    failures: list[str] = []

    async def one(q: Query, outs: list[str]) -> dict[str, Any] | None:
        samples = []
        for text in outs:
            reasoning, answer, problem = check_sample(text, q.ex)
            samples.append({"text": text, "problem": problem, "reasoning": reasoning, "answer": answer})
        fn = functions_json(q.ex)
        try:
            verdicts = await asyncio.gather(*[judges.judge(q.ex, fn, s["reasoning"], s["answer"]) for s in samples if s["problem"] is None])
        except BackendError as e:
            failures.append(str(e))
            return None
        it = iter(verdicts)
        for s in samples:
            s["judge"] = next(it) if s["problem"] is None else None
            if s["answer"] is not None and not isinstance(s["answer"], str):
                s["answer"] = [c.to_dict() for c in s["answer"]]
        passing = [i for i, s in enumerate(samples) if s["judge"] and s["judge"]["passed"]]
        best = max(passing, key=lambda i: samples[i]["judge"]["score"]) if passing else None
        kept = None
        if best is not None:
            s = samples[best]
            kept = {**q.ex.to_dict(), "reasoning": s["reasoning"], "answer": s["answer"]}
            kept["meta"] = {**(q.ex.meta or {}), "self_refine": {"round": r, "score": s["judge"]["score"], "samples": len(samples),
                                                                "passed_checks": sum(x["problem"] is None for x in samples),
                                                                "passed_judge": len(passing), "hard": q.key in hard}}
        return {"key": q.key, "id": q.ex.id, "hard": q.key in hard, "samples": samples, "kept": best, "example": kept}

    rows = await asyncio.gather(*[one(q, outs) for q, outs in zip(chunk, texts)])
    return [row for row in rows if row is not None], failures


def summarise_samples(path: Path, rd: Path, errors: int = 0) -> dict[str, Any]:
    rows = [row for row in read_finished_rows(path) if isinstance(row, dict) and "key" in row]
    kept = [row["example"] for row in rows if row.get("example")]
    with open(rd / "kept.jsonl", "w", encoding="utf-8") as f:
        for ex in kept:
            f.write(json.dumps(ex, ensure_ascii=False) + "\n")
    samples = [s for row in rows for s in row["samples"]]
    problems: dict[str, int] = {}
    for s in samples:
        if s["problem"]:
            kind = s["problem"].split(":")[0]
            problems[kind] = problems.get(kind, 0) + 1
    hard_rows = [row for row in rows if row.get("hard")]
    return {
        "queries": len(rows),
        "samples": len(samples),
        "failed_checks": problems,
        "passed_checks": sum(s["problem"] is None for s in samples),
        "passed_judge": sum(bool(s.get("judge") and s["judge"]["passed"]) for s in samples),
        "unreadable_judgements": sum(bool(s.get("judge") and s["judge"].get("unreadable")) for s in samples),
        "kept": len(kept),
        "hard_in": len(hard_rows),
        "hard_kept": sum(bool(row.get("example")) for row in hard_rows),
        "failed_queries": sorted(row["key"] for row in rows if not row.get("example")),
        "judge_errors": errors,
    }


# --- evaluation ---------------------------------------------------------------------------------


def evaluate_model(model: str, out: Path, *, categories: list[str], limit: int | None, eval_data: str | None,
                   max_tokens: int, batch: int = 16, progress: Progress = _no_progress, label: str = "eval",
                   engines: ModelEngines | None = None) -> dict[str, Any]:
    """BFCL accuracy on `categories` (first `limit` entries each) and exact-call accuracy on a
    held-out split; cached in `out/metrics.json`, generation resumable through the result files.
    The model runs on `engines` (left open for the caller, e.g. for the next round's rollouts on
    the same model), or on a local engine of its own, closed at the end."""
    from funreason.chat import render_prompt
    from funreason.evaluate.bfcl_run import load_category, local_stream, prompt_size, run_categories

    from funreason.evaluate.bfcl_run import result_path
    from funreason.runinfo import claim, model_identity

    done = out / "metrics.json"
    # the cached metrics and the result files are reused only for this model and these settings
    claim(out, {"verb": "evaluate", **model_identity(model), "categories": categories, "limit": limit, "eval_data": eval_data,
                "max_tokens": max_tokens}, [done, out / "heldout_results.jsonl", *[result_path(out, c) for c in categories]])
    if done.exists():
        return json.loads(done.read_text())
    out.mkdir(parents=True, exist_ok=True)
    params = SamplingParams(max_tokens=max_tokens)
    own = engines is None
    engines = engines or ModelEngines(batch=batch)
    engine = engines.get(model)
    t0 = time.perf_counter()
    try:
        data = {c: load_category(c, limit) for c in categories}
        # every prompt, BFCL's and the held-out split's, is queued at once: the engine fills each
        # batch across categories instead of decoding a short batch at the end of each
        stream = local_stream(engine, params, data, out)
        reader = Reader(eval_data, skip_invalid=True) if eval_data else None
        exs = sorted((ex for ex in reader if ex.answer is not None), key=prompt_size) if reader else []
        pending = [engine.submit(render_prompt(ex, engine.tokenizer), params) for ex in exs]
        with progress(f"{label}: BFCL", "entries", sum(map(len, data.values()))) as advance:
            scores = run_categories(data, None, out, batch=batch, on_done=advance, stream=stream)
        heldout = None
        if reader:
            rows = []
            with progress(f"{label}: held-out split", "rows", len(exs)) as advance:
                for ex, future in zip(exs, pending):
                    text = future.result().text
                    got = parse_output(text)
                    ok = same_calls(got.calls, ex.calls) if ex.calls else not got.calls
                    rows.append({"id": ex.id, "correct": ok, "output": text})
                    advance(1)
            (out / "heldout_results.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            heldout = {"total": len(rows), "correct": sum(r["correct"] for r in rows), "unreadable_rows": reader.rejected_count,
                       "accuracy": sum(r["correct"] for r in rows) / len(rows) if rows else 0.0}
    finally:
        if own:
            engines.close()
    bfcl = {c: {"total": s["total"], "accuracy": s["accuracy"]} for c, s in scores.items()}
    metrics = {"model": model, "bfcl": bfcl, "bfcl_mean": sum(s["accuracy"] for s in bfcl.values()) / len(bfcl) if bfcl else None,
               "heldout": heldout, "seconds": round(time.perf_counter() - t0, 1)}
    done.write_text(json.dumps(metrics, indent=2))
    return metrics


# --- the loop -----------------------------------------------------------------------------------


def _write_json(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False))


# settings that may change between a run and its continuation: more rounds, and how the work is
# reached (endpoints, engines, keys, batch sizes); any other change would make the finished rounds
# describe data they did not produce
_RESUMABLE = {"out", "rounds", "judge_endpoints", "judge_api_key", "judge_concurrency", "judge_max_tokens", "batch", "rollout_server",
              "judge_server", "engine_start_timeout"}


def claim_run(out: Path, cfg: SelfRefineConfig) -> None:
    """Make `out` this run's folder, or raise RunMismatch (with the way out) when it holds rounds of
    another: another starting model, other data (by content) or other settings."""
    from funreason.runinfo import claim, file_sha256, model_identity

    settings = {k: v for k, v in asdict(cfg).items() if k not in _RESUMABLE}
    claim(out, {"verb": "self-refine", **model_identity(cfg.model), "data_sha256": file_sha256(cfg.data), **settings},
          [out / "rounds.json", out / "round-1"])  # round-0/eval claims its own folder (the demo fills it first)


def run_self_refine(cfg: SelfRefineConfig, log: Callable[[str], None] = print, progress: Progress = _no_progress) -> list[dict[str, Any]]:
    """Run (or resume) every round; returns the rounds as written to `rounds.json`."""
    cfg.validate()
    out = Path(cfg.out)
    claim_run(out, cfg)
    _write_json(out / "config.json", asdict(cfg))
    queries, hard = load_queries(cfg, log)
    if not queries:
        raise SchemaError(f"no query with a reference answer in {cfg.data}")
    log(f"{len(queries)} queries · {len(hard)} hard rows from FCDR · {cfg.rounds} round(s) of {cfg.samples} samples "
        f"({cfg.hard_samples} for hard queries)")
    # one engine at a time, for the model in use: the starting model's serves its evaluation and
    # round 1's rollouts; it is closed before each training and the new model's opened after
    with ModelEngines(cfg.rollout_server, batch=cfg.batch, log_dir=out, log=log, start_timeout=cfg.engine_start_timeout) as engines:
        ev = dict(categories=cfg.eval_categories, limit=cfg.eval_limit, eval_data=cfg.eval_data,
                  max_tokens=cfg.eval_max_tokens, batch=cfg.batch, progress=progress, engines=engines)
        rounds = [{"round": 0, "model": cfg.model, "eval": evaluate_model(cfg.model, out / "round-0" / "eval", label="round 0: eval", **ev)}]
        _write_rounds(out, rounds)
        model = cfg.model
        kept_files: list[Path] = []
        for r in range(1, cfg.rounds + 1):
            rd = out / f"round-{r}"
            rd.mkdir(exist_ok=True)
            if (rd / "round.json").exists():
                info = json.loads((rd / "round.json").read_text())
                log(f"round {r}: done already ({info['rollouts']['kept']} kept) · {rd}")
            else:
                info = _run_round(cfg, r, model, queries, hard, kept_files, rd, ev, engines, progress, log)
                _write_json(rd / "round.json", info)
            kept_files.append(rd / "kept.jsonl")
            rounds.append(info)
            model = info["model"]
            hard = set(info["rollouts"]["failed_queries"])  # the queries that stay hard get more samples next round
            _write_rounds(out, rounds)
    return rounds


def _run_round(cfg: SelfRefineConfig, r: int, model: str, queries: list[Query], hard: set[str], kept_files: list[Path],
               rd: Path, ev: dict[str, Any], engines: ModelEngines, progress: Progress, log: Callable[[str], None]) -> dict[str, Any]:
    from funreason.train.trainer import TrainConfig, train

    t0 = time.perf_counter()
    stats = asyncio.run(_rollouts_with_judges(cfg, r, model, queries, hard, rd, engines, progress, log))
    log(f"round {r}: {stats['queries']} queries, {stats['samples']} samples, {stats['passed_checks']} passed the checks, "
        f"{stats['passed_judge']} the judge, {stats['kept']} kept · hard: {stats['hard_kept']} of {stats['hard_in']} turned into data"
        + (f" · {stats['unreadable_judgements']} judgements unreadable (counted as failed)" if stats["unreadable_judgements"] else ""))
    if stats["judge_errors"]:
        raise BackendError(f"round {r}: {stats['judge_errors']} queries could not be judged (endpoint errors); run again to retry them")
    # training data: the earlier data, the kept samples of the earlier rounds and of this one
    train_rows = 0
    with open(rd / "train.jsonl", "w", encoding="utf-8") as f:
        for p in [*cfg.base_data, *map(str, kept_files), str(rd / "kept.jsonl")]:
            with open(p, encoding="utf-8") as src:
                for line in src:
                    if line.strip():
                        f.write(line if line.endswith("\n") else line + "\n")
                        train_rows += 1
    final = rd / "train" / "final"
    train_summary = None
    if train_rows == 0:
        log(f"round {r}: nothing to train on; the model stays {model}")
        new_model = model
    else:
        if not final.exists():
            engines.close()  # training needs the memory (the accelerator) the engine holds
            tc = TrainConfig(model=model, data=str(rd / "train.jsonl"), out=str(rd / "train"), loss="srml",
                             alpha=cfg.alpha, alpha_mode=cfg.alpha_mode, lora=cfg.lora, max_steps=cfg.max_steps,
                             epochs=cfg.epochs, learning_rate=cfg.learning_rate, batch_size=cfg.batch_size,
                             seed=cfg.seed + r, resume=(rd / "train").exists(), report_to="none", skip_invalid=True)
            for k, v in cfg.train_overrides.items():
                setattr(tc, k, v)
            log(f"round {r}: SRML training on {train_rows} rows")
            s = train(tc, log=log)
            train_summary = {k: s[k] for k in ("steps", "train_loss", "seconds", "alpha")}
        new_model = str(final)
    metrics = evaluate_model(new_model, rd / "eval", label=f"round {r}: eval", **ev)
    return {"round": r, "model": new_model, "rollouts": stats, "train_rows": train_rows, "train": train_summary,
            "eval": metrics, "seconds": round(time.perf_counter() - t0, 1)}


async def _rollouts_with_judges(cfg: SelfRefineConfig, r: int, model: str, queries: list[Query], hard: set[str], rd: Path,
                                engines: ModelEngines, progress: Progress, log: Callable[[str], None]) -> dict[str, Any]:
    """Open the judge(s) for the round (HTTP endpoints, a launched engine, or a local model), run
    the rollouts, close them."""
    from funreason.llm.http import HTTPBackend

    async with contextlib.AsyncExitStack() as stack:
        if cfg.judge and cfg.judge_server:
            launched = stack.enter_context(LaunchedEngine(cfg.judge_server, cfg.judge, rd / "judge-engine.log",
                                                          start_timeout=cfg.engine_start_timeout, log=log))
            backends: list[Any] = [await stack.enter_async_context(HTTPBackend([launched.url], launched.served_model,
                                                                               concurrency=cfg.judge_concurrency, timeout=3600.0))]
        elif cfg.judge:
            from funreason.llm.local import LocalChat, LocalEngine

            engine = LocalEngine.from_pretrained(cfg.judge)
            stack.callback(engine.close)
            backends = [LocalChat(engine)]
        else:
            backends = [await stack.enter_async_context(HTTPBackend([url], cfg.judge_model, api_key=cfg.judge_api_key,
                                                                    concurrency=cfg.judge_concurrency))
                        for url in cfg.judge_endpoints]
        judges = Judges(backends, SamplingParams(max_tokens=cfg.judge_max_tokens, temperature=0.0), concurrency=cfg.judge_concurrency)
        return await rollout_round(cfg, r, model, queries, hard, judges, rd, engines, progress, log)


def _write_rounds(out: Path, rounds: list[dict[str, Any]]) -> None:
    _write_json(out / "rounds.json", rounds)
    plot_rounds(rounds, out / "rounds.png")


def plot_rounds(rounds: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["round"] for r in rounds]
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    bfcl = [100 * (r["eval"]["bfcl_mean"] or 0) for r in rounds]
    ax.plot(xs, bfcl, marker="o", label="BFCL (mean of the evaluated categories)")
    if all(r["eval"].get("heldout") for r in rounds):
        ax.plot(xs, [100 * r["eval"]["heldout"]["accuracy"] for r in rounds], marker="s", label="held-out split, exact calls")
    ax.set_xticks(xs)
    ax.set_xlabel("self-refinement round (0 = starting model)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    ax.set_title("Accuracy per round")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
