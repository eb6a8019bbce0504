"""The self-refinement loop: round 0 evaluates the starting model; each round samples, judges,
trains the next model on everything kept so far and evaluates it.

Invariant: every step resumes from what it wrote (a finished round from `round.json`, rollouts from
`samples.jsonl`, training from its checkpoints, evaluation from its result files), and a folder of
another run (model, data or settings) is refused before any work starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from funreason.errors import BackendError, SchemaError
from funreason.evaluate.heldout import EvalMetrics, evaluate_model
from funreason.fcdr.judge import Judges
from funreason.formats.jsonl import AppendLog, atomic_open, write_text_atomic
from funreason.llm import SamplingParams
from funreason.llm.factory import BackendConfig, open_chat
from funreason.llm.launch import LaunchedEngine, ModelEngines, shared_gpus_warning
from funreason.plots import figure
from funreason.progress import Progress, quiet
from funreason.runinfo import releases_folders
from funreason.selfrefine.config import SelfRefineConfig
from funreason.selfrefine.rollouts import Query, RolloutStats, judge_chunk, load_queries, sample_seed, summarise_samples


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
# describe data they did not produce. The judge's reply cap is how its server is reached (a server
# that refuses a cap above its own is run against again, by the user, with a smaller one); a reply
# the cap cuts short is unreadable, asked again and counted as such, never read as another verdict
_RESUMABLE = {"out", "rounds", "judge_endpoints", "judge_api_key", "judge_concurrency", "judge_max_tokens", "batch", "rollout_server",
              "judge_server", "engine_start_timeout", "engine_api_key"}
_SECRETS = ("judge_api_key", "engine_api_key")  # never written to the run folder


def claim_run(out: Path, cfg: SelfRefineConfig) -> None:
    """Make `out` this run's folder, or raise RunMismatch (with the way out) when it holds rounds of
    another: another starting model, other data, hard rows, earlier data, held-out split or local
    judge (each by content) or other settings."""
    from funreason.runinfo import claim, file_sha256, model_identity

    settings = {k: v for k, v in asdict(cfg).items() if k not in _RESUMABLE}
    files = [*cfg.hard, *cfg.base_data, *([cfg.eval_data] if cfg.eval_data else []),
             *[p for p in (cfg.train.chat_template, cfg.train.system_prompt) if p]]  # each round renders its rows with these
    contents = {"inputs_sha256": {p: file_sha256(p) if Path(p).is_file() else "a folder" for p in files}} if files else {}
    judge = {"judge_identity": model_identity(cfg.judge)} if cfg.judge else {}
    claim(out, {"verb": "self-refine", **model_identity(cfg.model), "data_sha256": file_sha256(cfg.data), **contents, **judge, **settings},
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
                                                             seed=sample_seed(cfg.seed, rnd.index, q.key, k)))
                                for k in range(cfg.hard_samples if q.key in rnd.hard else cfg.samples)] for q in chunk]
                    texts = [[g.text for g in await asyncio.gather(*map(asyncio.wrap_future, fs))] for fs in futures]
                    rows, failed = await judge_chunk(chunk, texts, rnd.hard, judges, rnd.index)
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
    queries, hard = load_queries(cfg, log)  # read before the folder is claimed: a bad row mended, the same command runs
    if not queries:
        raise SchemaError(f"no query with a reference answer in {cfg.data}")
    claim_run(out, cfg)
    _write_json(out / "config.json", {k: ("(set)" if k in _SECRETS and v else v) for k, v in asdict(cfg).items()})
    warning = shared_gpus_warning(cfg.rollout_server, cfg.judge_server)
    if warning:
        log(f"warning: {warning}")
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
        ax.plot(xs, [100 * (r.eval.bfcl_mean or 0) for r in rounds], marker="o", label=f"BFCL {rounds[0].eval.split} entries (mean of the categories)")
        if all(r.eval.heldout for r in rounds):
            ax.plot(xs, [100 * r.eval.heldout.accuracy for r in rounds], marker="s", label="held-out split, exact calls")
        ax.set_xticks(xs)
        ax.set_xlabel("self-refinement round (0 = starting model)")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=8)
        ax.set_title("Accuracy per round")
    return path
