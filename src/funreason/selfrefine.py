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
import dataclasses
import contextlib
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from funreason.runinfo import releases_folders
from funreason.errors import BackendError, SchemaError
from funreason.formats import example_from_row
from funreason.formats.jsonl import BadLine, iter_json_rows, read_finished_rows
from funreason.llm import SamplingParams
from funreason.progress import Progress, quiet
from funreason.llm.launch import LaunchedEngine, ModelEngines, check_template, shared_gpus_warning
from funreason.config import cli
from funreason.evaluate import ROUND_CATEGORIES
from funreason.evaluate.heldout import EvalMetrics, evaluate_model
from funreason.llm.factory import BackendConfig, open_chat
from funreason.plots import figure
from funreason.fcdr.judge import Judges, check_sample
from funreason.formats.jsonl import AppendLog, atomic_open, write_jsonl_atomic, write_text_atomic
from funreason.fcdr.prompts import functions_json
from funreason.schema import Example
from funreason.train.config import TrainConfig

def round_training() -> TrainConfig:
    """Each round's SRML training, unless the config's `train:` section says otherwise (model,
    data, out and the seed are the round's own)."""
    return TrainConfig(loss="srml", learning_rate=1e-5, report_to="none", skip_invalid=True)


@dataclass
class SelfRefineConfig:
    """`funreason self-refine`'s settings (command-line options and `--config FILE.yaml` keys; the
    training of each round is the nested `train:` section, any `funreason train` setting)."""

    model: str = field(default="", metadata=cli("The SRML-trained model to start from (a directory).", required=True))
    data: str = field(default="", metadata=cli("Source data with reference answers (xLAM-style or native).", required=True))
    out: str = field(default="", metadata=cli("Output folder (rounds, models, rounds.json, rounds.png).", "--out", "-o", required=True))
    judge_endpoints: list[str] = field(default_factory=list, metadata=cli(
        "Judge endpoint (OpenAI-compatible); repeat for several judges, whose scores are averaged.", "--judge-endpoint"))
    judge_model: str | None = field(default=None, metadata=cli("Model name the judge endpoints serve."))
    judge: str | None = field(default=None, metadata=cli("Or a local judge model (transformers)."))
    judge_api_key: str | None = field(default=None, metadata=cli("API key of the judge endpoints.", "--api-key", envvar="FUNREASON_JUDGE_API_KEY"))
    rounds: int = field(default=1, metadata=cli("Self-refinement rounds."))
    samples: int = field(default=4, metadata=cli("Samples per query (K)."))
    hard_samples: int = field(default=8, metadata=cli("Samples for hard queries (failed last round, or in --hard)."))
    hard: list[str] = field(default_factory=list, metadata=cli("FCDR hard.jsonl: its rows are hard queries from the start (repeatable)."))
    base_data: list[str] = field(default_factory=list, metadata=cli("Earlier training data, trained on again with the kept samples (repeatable)."))
    limit: int | None = field(default=None, metadata=cli("Only the first N queries of --data."))
    temperature: float = field(default=0.8, metadata=cli("Sampling temperature of the rollouts."))
    max_tokens: int = field(default=512, metadata=cli("Cap on new tokens per sample."))
    batch: int = field(default=16, metadata=cli("Prompts generated together."))
    judge_concurrency: int = 32
    judge_max_tokens: int = field(default=1024, metadata=cli("Cap on the judge's reply tokens."))
    format: str = "auto"
    seed: int = field(default=0, metadata=cli("Seed of the rollouts' sampling."))
    train: TrainConfig = field(default_factory=round_training)
    # evaluation of each round
    eval_categories: list[str] = field(default_factory=lambda: list(ROUND_CATEGORIES),
                                       metadata=cli("BFCL categories evaluated after each round (comma-separated).", csv=True))
    eval_limit: int | None = field(default=None, metadata=cli("First N entries of each BFCL category."))
    eval_data: str | None = field(default=None, metadata=cli("A held-out split: exact-call accuracy after each round."))
    eval_max_tokens: int = field(default=512, metadata=cli("Cap on new tokens per evaluation answer."))
    # an inference engine launched per model ('vllm serve {model} --port {port} ...'): rollouts and
    # evaluation go through it instead of in-process transformers; likewise the local judge
    rollout_server: str | None = field(default=None, metadata=cli(
        "Launch an OpenAI-compatible engine on each round's model for rollouts and evaluation, e.g. 'vllm serve {model} --port {port}'; "
        "stopped before training."))
    judge_server: str | None = field(default=None, metadata=cli("Launch the --judge model the same way, e.g. 'vllm serve {model} --port {port}'."))
    engine_start_timeout: float = field(default=900.0, metadata=cli("Seconds a launched engine may take to answer /v1/models."))
    engine_api_key: str | None = field(default=None, metadata=cli(
        "The key a launched engine's command sets itself (e.g. vLLM's --api-key); by default each engine gets a fresh key "
        "in FUNREASON_API_KEY and VLLM_API_KEY.", envvar="FUNREASON_ENGINE_API_KEY"))

    def validate(self) -> "SelfRefineConfig":
        for name in ("model", "data", "out"):
            if not getattr(self, name):
                raise ValueError(f"--{name} is required")
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
        return self


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


# --- one round ----------------------------------------------------------------------------------


def _seed(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "little")


async def _judge_chunk(chunk: list[Query], texts: list[list[str]], hard: set[str], judges: Judges, r: int) -> tuple[list[dict], list[str]]:
    """Every query's samples checked, the passing ones judged, the best kept: one `samples.jsonl`
    row per query; a query whose judge failed (endpoint errors) gets no row and its error instead."""
    failures: list[str] = []

    async def one(q: Query, outs: list[str]) -> dict[str, Any] | None:
        checks = [check_sample(text, q.ex) for text in outs]
        functions = functions_json(q.ex)
        try:
            verdicts = await asyncio.gather(*[judges.judge(q.ex, functions, c.reasoning, c.answer) for c in checks if c.verdict is None])
        except BackendError as e:
            failures.append(str(e))
            return None
        it = iter(verdicts)
        samples = [{"text": text, "verdict": c.verdict.to_dict() if c.verdict else None, "reasoning": c.reasoning,
                    "answer": c.answer if c.answer is None or isinstance(c.answer, str) else [x.to_dict() for x in c.answer],
                    "judge": None if c.verdict else next(it).to_dict()} for text, c in zip(outs, checks)]
        passing = [i for i, s in enumerate(samples) if s["judge"] and s["judge"]["passed"]]
        best = max(passing, key=lambda i: samples[i]["judge"]["score"]) if passing else None
        kept = None
        if best is not None:
            s = samples[best]
            kept = {**q.ex.to_dict(), "reasoning": s["reasoning"], "answer": s["answer"]}
            kept["meta"] = {**(q.ex.meta or {}), "self_refine": {"round": r, "score": s["judge"]["score"], "samples": len(samples),
                                                                "passed_checks": sum(x["verdict"] is None for x in samples),
                                                                "passed_judge": len(passing), "hard": q.key in hard}}
        return {"key": q.key, "id": q.ex.id, "hard": q.key in hard, "samples": samples, "kept": best, "example": kept}

    rows = await asyncio.gather(*[one(q, outs) for q, outs in zip(chunk, texts)])
    return [row for row in rows if row is not None], failures


@dataclass
class RolloutStats:
    """A round's rollouts: what the checks and the judges made of the samples."""

    queries: int
    samples: int
    failed_checks: dict[str, int]  # by verdict kind
    passed_checks: int
    passed_judge: int
    unreadable_judgements: int
    kept: int
    hard_in: int
    hard_kept: int
    failed_queries: list[str]
    judge_errors: int

    def line(self, r: int) -> str:
        return (f"round {r}: {self.queries} queries, {self.samples} samples, {self.passed_checks} passed the checks, "
                f"{self.passed_judge} the judge, {self.kept} kept · hard: {self.hard_kept} of {self.hard_in} turned into data"
                + (f" · {self.unreadable_judgements} judgements unreadable (counted as failed)" if self.unreadable_judgements else ""))


def summarise_samples(path: Path, rd: Path, order: list[str], errors: int = 0) -> RolloutStats:
    """The round's counts from its samples file; its kept examples written to `rd/kept.jsonl` in the
    order of the queries' keys `order` (a query retried after a judge error lands later in the
    samples file; the next training must not see the data reordered by that)."""
    place = {key: i for i, key in enumerate(order)}
    rows = [row for row in read_finished_rows(path) if isinstance(row, dict) and "key" in row]
    rows.sort(key=lambda row: place.get(row["key"], len(place)))
    kept = [row["example"] for row in rows if row.get("example")]
    write_jsonl_atomic(rd / "kept.jsonl", kept)
    samples = [s for row in rows for s in row["samples"]]
    hard_rows = [row for row in rows if row.get("hard")]
    return RolloutStats(
        queries=len(rows), samples=len(samples),
        failed_checks=dict(Counter(s["verdict"]["kind"] for s in samples if s["verdict"])),
        passed_checks=sum(s["verdict"] is None for s in samples),
        passed_judge=sum(bool(s.get("judge") and s["judge"]["passed"]) for s in samples),
        unreadable_judgements=sum(bool(s.get("judge") and s["judge"].get("unreadable")) for s in samples),
        kept=len(kept), hard_in=len(hard_rows), hard_kept=sum(bool(row.get("example")) for row in hard_rows),
        failed_queries=sorted(row["key"] for row in rows if not row.get("example")), judge_errors=errors)


@dataclass
class RoundResult:
    """One round (round 0: the starting model, evaluated only), as `round.json` and `rounds.json` hold it."""

    round: int
    model: str
    eval: EvalMetrics
    rollouts: RolloutStats | None = None
    train_rows: int = 0
    train: dict[str, Any] | None = None  # steps, train_loss, seconds, alpha of the round's training; None when it trained nothing
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"round": self.round, "model": self.model, "rollouts": asdict(self.rollouts) if self.rollouts else None,
                "train_rows": self.train_rows, "train": self.train, "eval": self.eval.to_dict(), "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RoundResult":
        return cls(d["round"], d["model"], EvalMetrics.from_dict(d["eval"]), RolloutStats(**d["rollouts"]) if d.get("rollouts") else None,
                   d.get("train_rows", 0), d.get("train"), d.get("seconds", 0.0))


# --- the loop -----------------------------------------------------------------------------------


def _write_json(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False))


# settings that may change between a run and its continuation: more rounds, and how the work is
# reached (endpoints, engines, keys, batch sizes); any other change would make the finished rounds
# describe data they did not produce
_RESUMABLE = {"out", "rounds", "judge_endpoints", "judge_api_key", "judge_concurrency", "judge_max_tokens", "batch", "rollout_server",
              "judge_server", "engine_start_timeout", "engine_api_key"}
_SECRETS = ("judge_api_key", "engine_api_key")  # never written to the run folder


def claim_run(out: Path, cfg: SelfRefineConfig) -> None:
    """Make `out` this run's folder, or raise RunMismatch (with the way out) when it holds rounds of
    another: another starting model, other data (by content) or other settings."""
    from funreason.runinfo import claim, file_sha256, model_identity

    settings = {k: v for k, v in asdict(cfg).items() if k not in _RESUMABLE}
    claim(out, {"verb": "self-refine", **model_identity(cfg.model), "data_sha256": file_sha256(cfg.data), **settings},
          [out / "rounds.json", out / "round-1"])  # round-0/eval claims its own folder (the demo fills it first)


@dataclass
class Round:
    """One round's own state: its number, its folder, the model it starts from and the queries
    that are hard in it (more samples each)."""

    index: int
    dir: Path
    model: str
    hard: set[str]


class _Loop:
    """What every round of a run shares: the settings, the queries, the engines (one model's at a
    time), and where progress and messages go."""

    def __init__(self, cfg: SelfRefineConfig, queries: list[Query], engines: ModelEngines, progress: Progress, log: Callable[[str], None]):
        self.cfg, self.queries, self.engines, self.progress, self.log = cfg, queries, engines, progress, log

    def evaluate(self, model: str, folder: Path, label: str) -> EvalMetrics:
        cfg = self.cfg
        return evaluate_model(model, folder, categories=cfg.eval_categories, limit=cfg.eval_limit, eval_data=cfg.eval_data,
                              max_tokens=cfg.eval_max_tokens, batch=cfg.batch, progress=self.progress, label=label, engines=self.engines)

    def run(self, rnd: Round, kept_files: list[Path]) -> RoundResult:
        """Rollouts and judgements, training on everything kept so far, evaluation."""
        t0 = time.perf_counter()
        stats = asyncio.run(self.rollouts(rnd))
        self.log(stats.line(rnd.index))
        if stats.judge_errors:
            raise BackendError(f"round {rnd.index}: {stats.judge_errors} queries could not be judged (endpoint errors); run again to retry them")
        model, train_rows, summary = self.train(rnd, kept_files)
        metrics = self.evaluate(model, rnd.dir / "eval", f"round {rnd.index}: eval")
        return RoundResult(rnd.index, model, metrics, stats, train_rows, summary, round(time.perf_counter() - t0, 1))

    def train(self, rnd: Round, kept_files: list[Path]) -> tuple[str, int, dict[str, Any] | None]:
        """(the next model, its training rows, its training summary): trained on the earlier data
        and the kept samples of every round so far; the same model when nothing was kept."""
        from funreason.train.trainer import train

        cfg, data = self.cfg, rnd.dir / "train.jsonl"
        rows = 0
        with atomic_open(data) as f:  # streamed: the earlier data may be tens of thousands of rows
            for p in [*cfg.base_data, *map(str, kept_files), str(rnd.dir / "kept.jsonl")]:
                with open(p, encoding="utf-8") as src:
                    for line in src:
                        if line.strip():
                            f.write(line if line.endswith("\n") else line + "\n")
                            rows += 1
        final = rnd.dir / "train" / "final"
        if not rows:
            self.log(f"round {rnd.index}: nothing to train on; the model stays {rnd.model}")
            return rnd.model, 0, None
        if final.exists():
            return str(final), rows, None
        self.engines.close()  # training needs the memory (the accelerator) the engine holds
        # round 1 trains with the section's seed, each later round with the next one
        tc = dataclasses.replace(cfg.train, model=rnd.model, data=str(data), out=str(rnd.dir / "train"),
                                 seed=cfg.train.seed + rnd.index - 1, resume=(rnd.dir / "train").exists()).validate()
        self.log(f"round {rnd.index}: {tc.loss.upper()} training on {rows} rows")
        s = train(tc, log=self.log)
        return str(final), rows, {"steps": s.steps, "train_loss": s.train_loss, "seconds": round(s.seconds, 1), "alpha": s.alpha}

    async def rollouts(self, rnd: Round) -> RolloutStats:
        """Open the judge(s) for the round (HTTP endpoints, a launched engine, or a local model),
        sample and judge, close them."""
        cfg = self.cfg
        async with contextlib.AsyncExitStack() as stack:
            if cfg.judge and cfg.judge_server:
                launched = stack.enter_context(LaunchedEngine(cfg.judge_server, cfg.judge, rnd.dir / "judge-engine.log",
                                                              start_timeout=cfg.engine_start_timeout, log=self.log,
                                                              api_key=cfg.engine_api_key))
                specs = [BackendConfig(endpoints=[launched.url], served_model=launched.served_model, concurrency=cfg.judge_concurrency,
                                       timeout=3600.0, api_key=launched.api_key)]
            elif cfg.judge:
                specs = [BackendConfig(local=cfg.judge, concurrency=16)]
            else:
                specs = [BackendConfig(endpoints=[url], served_model=cfg.judge_model, api_key=cfg.judge_api_key,
                                       concurrency=cfg.judge_concurrency) for url in cfg.judge_endpoints]
            backends = [await stack.enter_async_context(open_chat(spec)) for spec in specs]
            judges = Judges(backends, SamplingParams(max_tokens=cfg.judge_max_tokens, temperature=0.0), concurrency=cfg.judge_concurrency)
            return await self.sample(rnd, judges)

    async def sample(self, rnd: Round, judges: Judges) -> RolloutStats:
        """Samples, checks and judgements of the round into `samples.jsonl` (resumable). The engine
        (in-process, or a launched server) decodes on its own; this loop awaits it and the judges."""
        from funreason.chat import render_prompt

        cfg, errors = self.cfg, []
        with AppendLog(rnd.dir / "samples.jsonl") as samples:
            recorded = {row["key"] for row in samples.rows if isinstance(row, dict) and "key" in row}
            todo = [q for q in self.queries if q.key not in recorded]
            engine = self.engines.get(rnd.model) if todo else None
            with self.progress(f"round {rnd.index}: rollouts", "queries", len(todo)) as advance:
                per_chunk = max(1, cfg.batch // cfg.samples)
                for i in range(0, len(todo), per_chunk):
                    chunk = todo[i : i + per_chunk]
                    futures = [[engine.submit(render_prompt(q.ex, engine.tokenizer),
                                              SamplingParams(max_tokens=cfg.max_tokens, temperature=cfg.temperature,
                                                             seed=_seed(cfg.seed, rnd.index, q.key, k)))
                                for k in range(cfg.hard_samples if q.key in rnd.hard else cfg.samples)] for q in chunk]
                    texts = [[g.text for g in await asyncio.gather(*map(asyncio.wrap_future, fs))] for fs in futures]
                    rows, failed = await _judge_chunk(chunk, texts, rnd.hard, judges, rnd.index)
                    errors += failed
                    for row in rows:
                        samples.append(row)
                    advance(len(chunk))
        if errors:
            self.log(f"round {rnd.index}: {len(errors)} queries hit judge errors and are not recorded (first: {errors[0]}); run again to retry them")
        return summarise_samples(rnd.dir / "samples.jsonl", rnd.dir, [q.key for q in self.queries], len(errors))


@releases_folders
def run_self_refine(cfg: SelfRefineConfig, log: Callable[[str], None] = print, progress: Progress = quiet) -> list[RoundResult]:
    """Run (or resume) every round; returns the rounds as written to `rounds.json`."""
    cfg.validate()
    out = Path(cfg.out)
    claim_run(out, cfg)
    _write_json(out / "config.json", {k: ("(set)" if k in _SECRETS and v else v) for k, v in asdict(cfg).items()})
    warning = shared_gpus_warning(cfg.rollout_server, cfg.judge_server)
    if warning:
        log(f"warning: {warning}")
    queries, hard = load_queries(cfg, log)
    if not queries:
        raise SchemaError(f"no query with a reference answer in {cfg.data}")
    log(f"{len(queries)} queries · {len(hard)} hard rows from FCDR · {cfg.rounds} round(s) of {cfg.samples} samples "
        f"({cfg.hard_samples} for hard queries)")
    # one engine at a time, for the model in use: the starting model's serves its evaluation and
    # round 1's rollouts; it is closed before each training and the new model's opened after
    with ModelEngines(cfg.rollout_server, batch=cfg.batch, log_dir=out, log=log, start_timeout=cfg.engine_start_timeout,
                      api_key=cfg.engine_api_key) as engines:
        loop = _Loop(cfg, queries, engines, progress, log)
        rounds = [RoundResult(0, cfg.model, loop.evaluate(cfg.model, out / "round-0" / "eval", "round 0: eval"))]
        _write_rounds(out, rounds)
        kept_files: list[Path] = []
        for r in range(1, cfg.rounds + 1):
            rnd = Round(r, out / f"round-{r}", rounds[-1].model, hard)
            rnd.dir.mkdir(exist_ok=True)
            if (rnd.dir / "round.json").exists():
                result = RoundResult.from_dict(json.loads((rnd.dir / "round.json").read_text()))
                log(f"round {r}: done already ({result.rollouts.kept if result.rollouts else 0} kept) · {rnd.dir}")
            else:
                result = loop.run(rnd, kept_files)
                _write_json(rnd.dir / "round.json", result.to_dict())
            kept_files.append(rnd.dir / "kept.jsonl")
            rounds.append(result)
            hard = set(result.rollouts.failed_queries if result.rollouts else [])  # the queries that stay hard get more samples next round
            _write_rounds(out, rounds)
    return rounds


def _write_rounds(out: Path, rounds: list[RoundResult]) -> None:
    _write_json(out / "rounds.json", [r.to_dict() for r in rounds])
    plot_rounds(rounds, out / "rounds.png")


def plot_rounds(rounds: list[RoundResult], path: Path) -> Path:
    xs = [r.round for r in rounds]
    with figure(path, (5.5, 3.4)) as ax:
        ax.plot(xs, [100 * (r.eval.bfcl_mean or 0) for r in rounds], marker="o", label="BFCL (mean of the evaluated categories)")
        if all(r.eval.heldout for r in rounds):
            ax.plot(xs, [100 * r.eval.heldout.accuracy for r in rounds], marker="s", label="held-out split, exact calls")
        ax.set_xticks(xs)
        ax.set_xlabel("self-refinement round (0 = starting model)")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=8)
        ax.set_title("Accuracy per round")
    return path
