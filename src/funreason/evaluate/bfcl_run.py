"""`funreason eval bfcl`: generate BFCL results with a model, score them, and report.

Prompting mode: the model's chat template, BFCL's system prompt with the functions (descriptions
carrying BFCL's language hint, Java / JavaScript parameters as typed strings, as its prompting
handlers send them), the model writes the Python call list (optionally after `<think>`). Native
mode (endpoints): `tools` in the request, `tool_calls` back, written into the result as a Python
call list (Java / JavaScript values as their source text). Result files are BFCL's
(`BFCL_v4_<category>_result.json`, one `{"id", "result"}` per line), appended per entry, so an
interrupted run resumes.

Aggregates follow the leaderboard code: Non-Live AST is the unweighted mean of simple (itself the
unweighted mean of simple_python / simple_java / simple_javascript), multiple, parallel and
parallel_multiple; Live AST is the mean of live_simple / live_multiple / live_parallel /
live_parallel_multiple weighted by their entry counts; Overall, as the paper reports it, is the
mean of the two. A category that was not scored counts as 0 there, as on the leaderboard, and the
report names it; `*_scored` aggregates use the scored categories only.

Multi-turn categories (`multi_turn_base`, `_miss_func`, `_miss_param`, `_long_context`; every entry
is test) run BFCL's conversation loop (`conversation`) and are judged by its multi-turn checker
(`multi_turn`); Multi-turn overall is their unweighted mean, as the leaderboard's, a category not
scored counting as 0 (`multi_turn_scored`: the scored ones only). The report names the bfcl-eval
release whose data, environments and checker rules were used.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from funreason.config import cli
from funreason.evaluate import LIVE_AST, MULTI_TURN, NON_LIVE_OTHER, NON_LIVE_SIMPLE
from funreason.evaluate.bfcl_langs import require_grammars
from funreason.evaluate.bfcl_checker import SUPPORTED, score_entry
from funreason.evaluate.runner import endpoint_stream, local_stream, result_path, run_categories
from funreason.evaluate.splits import SPLITS, append_ledger, default_ledger, interval_text, load_registry, load_split, with_intervals
from funreason.formats import bfcl, read_examples
from funreason.formats.jsonl import write_text_atomic
from funreason.llm import SamplingParams
from funreason.llm.factory import BackendConfig, ModelChoice, open_blocking_chat, open_engine
from funreason.progress import Progress, quiet
from funreason.runinfo import file_sha256, releases_folders

DEFAULT_CATEGORIES = sorted(SUPPORTED)
KNOWN_CATEGORIES = (*DEFAULT_CATEGORIES, *MULTI_TURN)


@dataclass
class EvalBfclConfig(ModelChoice):
    """`funreason eval bfcl`'s settings (command-line options and `--config FILE.yaml` keys): the
    model (`llm.factory.ModelChoice`'s fields), then these."""

    out: str = field(default="", metadata=cli("Folder for result files and report.json / .md / .png.", "--out", "-o", required=True))
    categories: list[str] = field(default_factory=lambda: list(DEFAULT_CATEGORIES),
                                  metadata=cli("Comma-separated categories (default: every single-turn one; the multi-turn ones, "
                                               "multi_turn_base,multi_turn_miss_func,multi_turn_miss_param,multi_turn_long_context, "
                                               "are all test entries: --split test).", csv=True))
    split: str = field(default="dev", metadata=cli("dev (entries studied while data and settings were designed), test (never studied; "
                                                   "each run is written to the ledger) or all (bfcl_splits.json says which is which)."))
    ledger: str = field(default="", metadata=cli("File a run that scores test entries is recorded in (default: $FUNREASON_LEDGER, "
                                                 "else the checkout's experiments/bfcl_test_ledger.jsonl, else the user cache's)."))
    limit: int | None = field(default=None, metadata=cli("Only the first N entries of each category (of the split)."))
    skip: int = field(default=0, metadata=cli("Leave out the first N entries of each category's split (with --limit M: entries N+1 to N+M)."))
    mode: str = field(default="prompting", metadata=cli("prompting (the model writes the call list) or native (tools / tool_calls; endpoints)."))
    max_tokens: int = field(default=1024, metadata=cli("Cap on new tokens per answer."))
    concurrency: int = field(default=32, metadata=cli("Requests in flight (endpoints)."))
    batch: int = field(default=16, metadata=cli("Prompts generated together (local)."))
    data_dir: str | None = field(default=None, metadata=cli("BFCL data folder (default: the bfcl-eval package's)."))
    chat_template: str | None = field(default=None, metadata=cli("A Jinja chat template file used in place of the model's own."))
    guided: bool = field(default=False, metadata=cli("Schema-guided decoding (local model): a call list the model starts keeps to the entry's functions, parameters and types."))
    beams: int = field(default=1, metadata=cli("Beam search over the call list (local model): keep the N likeliest continuations once an answer "
                                               "opens its call list, answer with the likeliest; each entry takes N rows of the batch."))
    length_penalty: float = field(default=0.0, metadata=cli("With --beams: rank finished call lists by summed log probability / tokens ** this; 0 ranks by "
                                                            "the sum, which favours fewer calls, 1 by the mean per token (searches longer)."))

    def validate(self) -> "EvalBfclConfig":
        if not self.out:
            raise ValueError("--out is required")
        if self.mode not in ("prompting", "native") or (self.mode == "native" and not self.endpoint):
            raise ValueError("--mode is prompting, or native with --endpoint")
        if self.batch < 1 or self.concurrency < 1 or self.max_tokens < 1:
            raise ValueError("--batch, --concurrency and --max-tokens must be 1 or more")
        if Path(self.out).exists() and not Path(self.out).is_dir():
            raise ValueError(f"--out {self.out} is a file; give a folder")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be 1 or more, not {self.limit}")
        if self.split not in SPLITS:
            raise ValueError(f"--split must be one of {', '.join(SPLITS)}, not {self.split!r}")
        if self.skip < 0:
            raise ValueError(f"--skip must be 0 or more, not {self.skip}")
        unknown = [c for c in self.categories if c not in KNOWN_CATEGORIES]
        if unknown or not self.categories:
            raise ValueError(f"unknown categories: {', '.join(unknown) or 'none given'}; single-turn categories: {', '.join(DEFAULT_CATEGORIES)}; "
                             f"multi-turn: {', '.join(MULTI_TURN)}")
        single = [c for c in self.categories if c not in MULTI_TURN]
        if self.categories == DEFAULT_CATEGORIES:  # those the split has no entries of are left out: they need no grammar
            registry = load_registry()
            single = [c for c in single if c not in registry.categories or registry.categories[c].count(self.split)]
        require_grammars(single)
        if any(c in MULTI_TURN for c in self.categories) and (self.guided or self.beams > 1):
            raise ValueError("--guided and --beams are single-turn settings: the multi-turn conversation loop decodes plainly")
        if self.guided and not self.model:
            raise ValueError("--guided runs on a local --model; an endpoint has its own structured-output settings")
        if self.beams < 1 or (self.beams > 1 and not self.model):
            raise ValueError(f"--beams must be 1 or more, and more than 1 only with a local --model (got {self.beams})")
        if self.length_penalty < 0 or (self.length_penalty and self.beams == 1):
            raise ValueError(f"--length-penalty ranks a beam search's answers: 0 or more, and only with --beams 2 or more (got {self.length_penalty})")
        self.engine().validate()
        return self

    def engine(self) -> BackendConfig:
        return self.backend(self.concurrency if self.endpoint else self.batch, self.chat_template)


@dataclass
class BfclRun:
    """What `eval bfcl` scored: per category (accuracy, total, verdicts), the leaderboard
    aggregates, and how many answers this invocation generated in how long."""

    scores: dict[str, dict[str, Any]]
    summary: dict[str, Any]
    generated: int
    seconds: float
    intervals: dict[str, Any] = field(default_factory=dict)  # the report's aggregate intervals
    bfcl_eval: str = ""  # the bfcl-eval release whose data and rules were used

    @property
    def entries_per_second(self) -> float | None:
        return round(self.generated / self.seconds, 2) if self.generated and self.seconds else None


@releases_folders
def eval_bfcl(cfg: EvalBfclConfig, progress: Progress = quiet) -> BfclRun:
    """Generate (resuming) and score every category of `cfg`, write `report.json/.md/.png`."""
    import time

    from funreason.runinfo import claim

    from funreason.evaluate import conversation
    from funreason.evaluate.multi_turn import bfcl_version

    out = Path(cfg.out)
    registry = load_registry()
    data: dict[str, list[Any]] = {c: (conversation.load_entries if c in MULTI_TURN else load_split)(c, cfg.split, cfg.limit, cfg.data_dir, cfg.skip, registry)
                                  for c in cfg.categories}
    if cfg.categories == DEFAULT_CATEGORIES:  # every category by default: those with no entries of the split are left out
        data = {c: exs for c, exs in data.items() if exs} or data
    if empty := [c for c, exs in data.items() if not exs]:
        raise ValueError(f"no {cfg.split} entries of {', '.join(empty)}" + (f" after --skip {cfg.skip}" if cfg.skip else "")
                         + " (bfcl_splits.json; docs/evaluation.md lists each category's dev and test entries)")
    test_ids = {c: {ex.id for ex in exs if registry.split_of(ex.id) == "test"} for c, exs in data.items()}
    template = file_sha256(cfg.chat_template) if cfg.chat_template else None
    params = SamplingParams(max_tokens=cfg.max_tokens, beams=cfg.beams, length_penalty=cfg.length_penalty)
    claim(out, {"verb": "eval bfcl", **cfg.identity(), **({"split": cfg.split} if cfg.split != "dev" else {}), "mode": cfg.mode, "max_tokens": cfg.max_tokens, **({"chat_template": template} if template else {}),
                "data_dir": cfg.data_dir, **({"guided": True} if cfg.guided else {}), **params.search_settings()},
          [result_path(out, c) for c in KNOWN_CATEGORIES] + [conversation.conversation_log_path(out, c) for c in MULTI_TURN])
    single = {c: exs for c, exs in data.items() if c not in MULTI_TURN}
    multi = {c: exs for c, exs in data.items() if c in MULTI_TURN}
    generated, t0 = 0, time.perf_counter()
    with contextlib.ExitStack() as stack:
        if cfg.model:
            engine = stack.enter_context(open_engine(cfg.engine()))
            ask = conversation.local_ask(engine, params)
            if single:
                stream = local_stream(engine, params, single, out, guided=cfg.guided)
        else:
            http = stack.enter_context(open_blocking_chat(cfg.engine()))
            ask = conversation.endpoint_ask(http, params, cfg.mode)
            if single:
                stream, cancel = endpoint_stream(http, params, single, out, cfg.mode)
                stack.callback(cancel)  # after a failure: the requests not yet answered are dropped, not waited for
        with progress("BFCL", "entries", sum(len(v) for v in data.values())) as advance:
            def done(n: int) -> None:
                nonlocal generated
                generated += n
                advance(n)

            scores = run_categories(single, None, out, batch=cfg.batch, on_done=done, stream=stream) if single else {}
            if multi:
                answers = conversation.generate_multi_turn(multi, ask, cfg.mode, out, on_done=done)
                scores.update({c: conversation.score_multi_turn(entries, answers[c]) for c, entries in multi.items()})
            scores = {c: scores[c] for c in data}
    run = BfclRun(scores, aggregate(scores), generated, time.perf_counter() - t0)
    settings = {"mode": cfg.mode, "limit": cfg.limit, **({"skip": cfg.skip} if cfg.skip else {}), "guided": cfg.guided,
                "max_tokens": cfg.max_tokens, **params.search_settings()}
    if any(test_ids.values()):  # before the report: a look at the test set that cannot be recorded is not shown
        ledger = Path(cfg.ledger) if cfg.ledger else default_ledger()
        looked = {c: {"entries": len(ids), "correct": sum(v["valid"] for v in scores[c]["entries"] if v["id"] in ids)}
                  for c, ids in test_ids.items() if ids}
        append_ledger(ledger, {"verb": "eval bfcl", **cfg.identity(), "settings": settings, "split": cfg.split,
                               "test_entries": sum(v["entries"] for v in looked.values()), "categories": looked, "out": str(out.resolve())})
        run.summary["ledger"] = str(ledger)
    report = write_report(out, scores, {"model": cfg.model or f"{cfg.served_model} @ {cfg.endpoint}", "split": cfg.split, "bfcl_eval": bfcl_version(), **settings,
                               "seconds": round(run.seconds, 1), "generated": generated, "entries_per_second": run.entries_per_second})
    run.intervals, run.bfcl_eval = report["intervals"], report["bfcl_eval"]
    return run


def result_file_in(folder: Path, category: str) -> Path:
    """The result file of `category` under a BFCL result folder (`BFCL_v<N>_<category>_result.json`,
    in any subfolder, as BFCL lays them out per model); ValueError if none or several."""
    found = sorted(p for p in folder.rglob(f"BFCL_v*_{category}_result.json") if p.is_file())
    if len(found) != 1:
        raise ValueError(f"{folder}: {'no' if not found else len(found)} result files for {category}"
                         + (f" ({', '.join(map(str, found[:3]))}); give one file" if found else ""))
    return found[0]


def score_results(categories: list[str], results: Path, data_dir: str | None = None) -> list[dict[str, Any]]:
    """`funreason eval score` on one result file (one category) or a result folder (each category's
    file found in it), in one process: one report per category."""
    if results.is_dir():
        return [score_results_file(c, result_file_in(results, c), data_dir) for c in categories]
    if len(categories) != 1:
        raise ValueError(f"{results}: a result file holds one category; give a folder to score {', '.join(categories)}")
    return [score_results_file(categories[0], results, data_dir)]


def score_results_file(category: str, results: Path, data_dir: str | None = None) -> dict[str, Any]:
    """`funreason eval score`: a BFCL result file (any subset of a category, one `{"id", "result"}`
    per line) scored like the official checker (multi-turn categories: `multi_turn.score_file`);
    ValueError naming the line of a bad, unknown or repeated entry (counted twice it would weigh
    twice in the accuracy)."""
    if category in MULTI_TURN:
        from funreason.evaluate import multi_turn  # the environments' imports only when they are used

        return multi_turn.score_file(category, results, data_dir)
    if category not in SUPPORTED:
        raise ValueError(f"category {category!r} is not scored yet; supported: {', '.join(sorted(SUPPORTED) + list(MULTI_TURN))}")
    require_grammars([category])
    entries = {ex.id: ex for ex in read_examples(bfcl.question_file(category, data_dir))}
    verdicts = []
    for id_, result in bfcl.result_rows(results, entries, category):
        ex = entries[id_]
        v = score_entry(category, result, [t.to_dict() for t in ex.tools], ex.possible_answer)
        verdicts.append({"id": id_, "valid": v["valid"], "error_type": v.get("error_type"), "error": " ".join(map(str, v.get("error", [])))})
    if not verdicts:
        raise ValueError(f"{results}: no results to score")
    correct = sum(v["valid"] for v in verdicts)
    return {"category": category, "total": len(verdicts), "correct": correct, "category_entries": len(entries),
            "accuracy": correct / len(verdicts), "entries": verdicts}
def aggregate(scores: dict[str, dict[str, Any]]) -> dict[str, Any]:
    acc = lambda c: scores[c]["accuracy"] if c in scores else 0.0
    simple = sum(acc(c) for c in NON_LIVE_SIMPLE) / len(NON_LIVE_SIMPLE)
    non_live = (simple + sum(acc(c) for c in NON_LIVE_OTHER)) / 4
    live_total = sum(scores[c]["total"] for c in LIVE_AST if c in scores)
    live = sum(scores[c]["accuracy"] * scores[c]["total"] for c in LIVE_AST if c in scores) / live_total if live_total else 0.0
    scored_simple = [acc(c) for c in NON_LIVE_SIMPLE if c in scores]
    groups = ([sum(scored_simple) / len(scored_simple)] if scored_simple else []) + [acc(c) for c in NON_LIVE_OTHER if c in scores]
    non_live_scored = sum(groups) / len(groups) if groups else None
    missing = [c for c in (*NON_LIVE_SIMPLE, *NON_LIVE_OTHER, *LIVE_AST) if c not in scores]
    multi = [c for c in MULTI_TURN if c in scores]
    multi_turn = {"multi_turn": sum(acc(c) for c in MULTI_TURN) / len(MULTI_TURN),
                  "multi_turn_scored": sum(acc(c) for c in multi) / len(multi),
                  "multi_turn_not_scored": [c for c in MULTI_TURN if c not in scores]} if multi else {}
    return {
        "non_live_ast": non_live,
        "live_ast": live,
        "overall": (non_live + live) / 2,
        "non_live_ast_scored": non_live_scored,
        "overall_scored": (non_live_scored + live) / 2 if non_live_scored is not None and live_total else None,
        "not_scored": missing,
        "irrelevance": scores.get("irrelevance", {}).get("accuracy"),
        "live_irrelevance": scores.get("live_irrelevance", {}).get("accuracy"),
        "live_relevance": scores.get("live_relevance", {}).get("accuracy"),
        **multi_turn,
    }


def write_report(out: Path, scores: dict[str, dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    summary = aggregate(scores)
    intervals = with_intervals(scores)  # each category's too, as scores[c]["interval"]
    split, entries = meta.get("split", "unrecorded"), sum(s["total"] for s in scores.values())
    report = {**meta, "split": split, "entries": entries, "summary": summary, "intervals": intervals,
              "categories": {c: {k: v for k, v in s.items() if k != "entries"} for c, s in scores.items()}}
    write_text_atomic(out / "report.json", json.dumps(report, indent=2))
    pct = lambda x: "–" if x is None else f"{100 * x:.2f}"
    lines = ["# BFCL report", "", f"Model: {meta.get('model')} · mode: {meta.get('mode')} · split: **{split}**, {entries} entries"
             + (f" · the entries after the first {meta['skip']} of each category's split" if meta.get("skip") else "")
             + (f" · bfcl-eval {meta['bfcl_eval']}" if meta.get("bfcl_eval") else ""), "",
             "Accuracy in %, with the 95% Wilson interval (aggregates: a normal approximation over their categories, never narrower than the Wilson interval of the entries scored).", "",
             "| category | split, entries | accuracy | 95% interval |", "|---|---|---|---|"]
    lines += [f"| {c} | {split}, {s['total']} | {pct(s['accuracy'])} | {interval_text(s['interval'])} |" for c, s in sorted(scores.items())]
    lines += ["", "| aggregate | accuracy | 95% interval |", "|---|---|---|",
              f"| Non-Live AST | {pct(summary['non_live_ast'])} | |", f"| Live AST | {pct(summary['live_ast'])} | {interval_text(intervals['live_ast'])} |",
              f"| Overall (mean of the two) | {pct(summary['overall'])} | |",
              f"| Non-Live AST, scored categories only | {pct(summary['non_live_ast_scored'])} | {interval_text(intervals['non_live_ast_scored'])} |"]
    if "multi_turn" in summary:
        lines += [f"| Multi-turn overall (mean of the four) | {pct(summary['multi_turn'])} | |",
                  f"| Multi-turn, scored categories only | {pct(summary['multi_turn_scored'])} | {interval_text(intervals['multi_turn_scored'])} |"]
    if summary["not_scored"]:
        lines += ["", f"Not scored (count as 0 in the leaderboard aggregates): {', '.join(summary['not_scored'])}."]
    if summary.get("multi_turn_not_scored"):
        lines += ["", f"Multi-turn categories not scored (count as 0 in Multi-turn overall): {', '.join(summary['multi_turn_not_scored'])}."]
    lines += ["", "![accuracy per category](report.png)"]
    write_text_atomic(out / "report.md", "\n".join(lines) + "\n")
    _plot(out / "report.png", scores, f"split {split}, {entries} entries")
    return report


def _plot(path: Path, scores: dict[str, dict[str, Any]], subtitle: str) -> None:
    from funreason.plots import figure

    cats = sorted(scores)
    with figure(path, (max(5, 0.7 * len(cats) + 2), 3.6)) as ax:
        acc = [100 * scores[c]["accuracy"] for c in cats]
        bounds = [scores[c]["interval"] or (a / 100, a / 100) for a, c in zip(acc, cats)]
        lo = [a - 100 * b[0] for a, b in zip(acc, bounds)]
        hi = [100 * b[1] - a for a, b in zip(acc, bounds)]
        ax.bar(cats, acc, color="tab:green", yerr=[lo, hi], capsize=3)
        ax.set_ylim(0, 100)
        ax.set_ylabel("accuracy (%), 95% interval")
        ax.set_title(f"BFCL accuracy per category ({subtitle})")
        ax.tick_params(axis="x", rotation=45)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
