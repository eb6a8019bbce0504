"""Exact-call accuracy on a held-out split, and a model's evaluation (BFCL subset + held-out split).

Invariant: a held-out row counts as correct only when the calls the model writes equal the row's
reference calls as a multiset (parallel calls in any order; FCDR's `same_calls`), or, for a row
whose reference answers in words, when the model writes no call. Unreadable rows of the split are
counted and reported, never silently left out. Every prompt, BFCL's and the split's, is queued on
the engine at once, so its batches stay full across categories. Each answer is appended to
`heldout_results.jsonl` as it comes, keyed by the row's place in the split, so an interrupted run
resumes with the rows it finished (the folder's claim makes sure they are this model's, on this
split, with these settings); a finished run rewrites the file in the split's order.

A whole conversation (`meta.conversation: whole`, as `data mix --multi-turn` writes them) is asked
at every assistant turn: with the gold history before that turn (earlier reasoning dropped, as in
training), its calls compared with that turn's gold calls. Each turn counts as one row of the
score, and `per_turn` tallies them by the turn's place in its conversation (1 = first). A turn
that has no one answer to compare (text and calls together, an empty turn, a reference call to a
function not on offer; `chat.assistant_turns`) is not asked, and the score's `left_out` names each
such turn with the reason; so is the answer turn of a row without a reference answer (its earlier
turns are still asked with `per_turn`). A resumed run keeps a finished answer only where the line's place and id are the row's. Rows of
any other kind are asked once, at their answer, as before; with `per_turn` (`eval heldout
--per-turn`, for conversations a user brings without the mark) every row with an earlier assistant
turn is asked at each of its turns as a whole conversation is.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from funreason.runinfo import releases_folders
from funreason.calls import parse_output
from funreason.config import cli
from funreason.fit import same_calls
from funreason.formats import Reader
from funreason.formats.jsonl import AppendLog, read_finished_rows, write_jsonl_atomic, write_text_atomic
from funreason.llm import Engine, Generation, SamplingParams
from funreason.progress import Progress, quiet
from funreason.schema import Example

if TYPE_CHECKING:
    from funreason.chat import LeftOut

RESULTS = "heldout_results.jsonl"


@dataclass
class HeldoutScore:
    total: int
    correct: int
    unreadable_rows: int  # rows of the split its reader could not read (named in its rejected file)
    per_turn: dict[int, tuple[int, int]] = field(default_factory=dict)  # conversations' turn → (correct, asked)
    left_out: list[str] = field(default_factory=list)  # conversations' turns not asked, each "ID assistant turn K: why"

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def line(self) -> str:
        """`44.4 [18.9, 73.3] (held-out, 9)`: exact calls with the 95% interval and what was asked."""
        from funreason.evaluate.splits import interval_text, wilson

        return f"{100 * self.accuracy:.1f} {interval_text(wilson(self.correct, self.total))} (held-out, {self.total})"

    def to_dict(self) -> dict[str, Any]:
        from funreason.evaluate.splits import wilson

        d = {"total": self.total, "correct": self.correct, "unreadable_rows": self.unreadable_rows, "accuracy": self.accuracy,
             "interval": wilson(self.correct, self.total)}
        if self.left_out:
            d["left_out"] = self.left_out
        if self.per_turn:
            d["per_turn"] = {str(k): {"correct": c, "total": n, "accuracy": c / n, "interval": wilson(c, n)}
                             for k, (c, n) in sorted(self.per_turn.items())}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "HeldoutScore":
        return cls(d["total"], d["correct"], d.get("unreadable_rows", 0),
                   {int(k): (v["correct"], v["total"]) for k, v in (d.get("per_turn") or {}).items()}, list(d.get("left_out", [])))

    def left_out_line(self) -> str:
        """The turns not asked, counted by reason, for a report line ("" when none)."""
        if not self.left_out:
            return ""
        reasons: dict[str, int] = {}
        for line in self.left_out:
            why = line.rsplit(": ", 1)[-1]  # an id may hold ": "; a reason never does
            reasons[why] = reasons.get(why, 0) + 1
        return (f"{len(self.left_out)} turns not asked ("
                + ", ".join(f"{why}: {n}" for why, n in sorted(reasons.items())) + ")")


@dataclass
class HeldoutRows:
    """A split as it is asked: each asked row with its place among them (the key a resumed run finds
    its finished rows by), shortest prompt first; the conversations' turns not asked, each with the
    reason (`chat.LeftOut`); and the reader, whose `rejected_count` says how many rows it could not
    read (they are in its rejected file, with the reason)."""

    rows: list[tuple[int, Example]]
    left_out: list[str]
    reader: Reader


def heldout_examples(path: str | Path, limit: int | None, rejected: Path, per_turn: bool = False) -> HeldoutRows:
    """The split's (first `limit`) rows, as `asked_turns` asks them; rows the reader cannot read go
    to `rejected` with the reason. A row's place counts toward `limit` even when it has nothing to
    ask: what it has is named in `left_out`, never skipped without a word."""
    from funreason.evaluate.runner import prompt_size

    reader = Reader(path, skip_invalid=True, rejected=rejected)
    asked: list[Example] = []
    left_out: list[str] = []
    for ex in list(reader)[:limit]:
        turns, skipped = asked_turns(ex, per_turn)
        asked += turns
        left_out += map(str, skipped)
    return HeldoutRows(sorted(enumerate(asked), key=lambda row: prompt_size(row[1])), left_out, reader)


def asked_turns(ex: Example, per_turn: bool = False) -> tuple[list[Example], list["LeftOut"]]:
    """What a row is asked as: a whole conversation (`meta.conversation: whole`, or with `per_turn`
    any row with an earlier assistant turn) at each assistant turn (`chat.assistant_turns`, each
    turn's place in `meta.turn`), any other row once, as it is; and the turns that cannot be asked,
    with the reason. A row without a reference answer (a conversation that ends on a user or tool
    turn) has no answer turn to ask: that turn is left out by name, its earlier turns still asked."""
    from funreason.chat import LeftOut, answer_turn, assistant_turns

    # no gold answer: nothing to compare the model's next turn with (it would count as "no calls")
    unanswered = [LeftOut(ex.id, answer_turn(ex), "no reference answer")] if ex.answer is None else []
    # a row without an earlier assistant turn is not a conversation to follow: asked once, untallied
    earlier = any(m.role == "assistant" for m in ex.messages)
    if ex.meta.get("conversation") != "whole" and not (per_turn and earlier):
        return ([ex] if ex.answer is not None else []), unanswered
    turns = assistant_turns(ex, offered_only=True)
    # a turn of reasoning alone is learned, but has no answer to compare: named, not asked
    unanswered += [LeftOut(ex.id, t.meta["turn"], "no reference answer") for t in turns.examples if t is not ex and t.answer is None]
    return [t if t is not ex else Example(ex.id, ex.tools, ex.messages, ex.reasoning, ex.answer, ex.possible_answer,
                                          {**ex.meta, "turn": answer_turn(ex)})
            for t in turns.examples if t.answer is not None], turns.left_out + unanswered


def is_correct(text: str, ex: Example) -> bool:
    got = parse_output(text)
    return same_calls(got.calls, ex.calls) if ex.calls else not got.calls


class HeldoutRun:
    """One split's answers into `out/heldout_results.jsonl`: the rows an earlier run of the same
    claim finished are kept (and scored again), the others queued on `engine` at once, when the run
    is made, so they can share batches with other work queued after them (`evaluate_model`'s BFCL
    entries). `guided`: each decoded under the call grammar of the row's tools."""

    def __init__(self, engine: Engine, rows: list[tuple[int, Example]], params: SamplingParams, out: Path, *,
                 guided: bool = False):
        self.rows, self.path = rows, out / RESULTS
        # a row without its place is from a version that wrote the file only when it finished, and one
        # whose id is not the id of the row at that place is from a version that placed rows otherwise
        # (rows without an answer were once not counted): both done again, never attached to another row
        ids = {i: ex.id for i, ex in rows}
        self.done = {r["row"]: r["output"] for r in read_finished_rows(self.path)
                     if isinstance(r, dict) and isinstance(r.get("row"), int) and isinstance(r.get("output"), str)
                     and r.get("id") == ids.get(r["row"])}
        todo = [(i, ex) for i, ex in rows if i not in self.done]
        self.pending = dict(zip([i for i, _ in todo], submit(engine, [ex for _, ex in todo], params, guided=guided)))

    @property
    def resumed(self) -> int:
        """Rows of the split an earlier run had finished."""
        return len(self.rows) - len(self.pending)

    def score(self, unreadable: int, advance: Any = lambda n=1: None, left_out: list[str] | None = None) -> HeldoutScore:
        """Wait for each row still generating, append it, score every row; the results file is then
        rewritten in the split's order, one line per row."""
        with AppendLog(self.path) as log:
            for i, ex in self.rows:
                if i in self.pending:
                    text = self.pending[i].result().text
                    log.append({"row": i, "id": ex.id, "correct": is_correct(text, ex), "output": text})
                    self.done[i] = text
                advance(1)
        results = [{"row": i, "id": ex.id, **({"turn": ex.meta["turn"]} if "turn" in ex.meta else {}),
                    "correct": is_correct(self.done[i], ex), "output": self.done[i]}
                   for i, ex in sorted(self.rows, key=lambda row: row[0])]
        write_jsonl_atomic(self.path, results)
        per_turn: dict[int, tuple[int, int]] = {}
        for r in results:
            if "turn" in r:
                c, n = per_turn.get(r["turn"], (0, 0))
                per_turn[r["turn"]] = (c + r["correct"], n + 1)
        return HeldoutScore(len(results), sum(r["correct"] for r in results), unreadable, dict(sorted(per_turn.items())), list(left_out or []))


def submit(engine: Engine, exs: list[Example], params: SamplingParams, *,
           guided: bool = False) -> list["concurrent.futures.Future[Generation]"]:
    """Every row's prompt, rendered with the model's own template, queued on `engine`; `guided`:
    each decoded under the call grammar of the row's tools."""
    from funreason.chat import render_prompt
    from funreason.llm.guided import guided_params

    return [engine.submit(render_prompt(ex, engine.tokenizer), guided_params(params, ex.tools, engine.tokenizer) if guided else params) for ex in exs]


@dataclass
class EvalMetrics:
    """One model's evaluation: BFCL accuracy per category (of a fixed subset of its `split`'s
    entries) and the held-out split's."""

    model: str
    bfcl: dict[str, dict[str, float]] = field(default_factory=dict)  # category → {"total", "accuracy"}
    heldout: HeldoutScore | None = None
    seconds: float = 0.0
    split: str = "dev"  # the BFCL split scored: `evaluate_model` never reads test entries

    @property
    def bfcl_mean(self) -> float | None:
        return sum(s["accuracy"] for s in self.bfcl.values()) / len(self.bfcl) if self.bfcl else None

    def bfcl_line(self) -> str:
        """`25.0 [11.2, 46.9] (dev, 20)`: the mean over the categories, its 95% interval, the split and
        the entries scored; `–` when nothing was."""
        from funreason.evaluate.splits import interval_text, mean_interval

        if not self.bfcl:
            return "–"
        parts = [(float(s["accuracy"]), int(s["total"])) for s in self.bfcl.values()]
        return f"{100 * (self.bfcl_mean or 0.0):.1f} {interval_text(mean_interval(parts))} ({self.split}, {sum(n for _, n in parts)})"

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "split": self.split, "bfcl": self.bfcl, "bfcl_mean": self.bfcl_mean,
                "heldout": self.heldout.to_dict() if self.heldout else None, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EvalMetrics":
        return cls(d["model"], d["bfcl"], HeldoutScore.from_dict(d["heldout"]) if d.get("heldout") else None, d.get("seconds", 0.0),
                   d.get("split", "dev"))


@releases_folders
def evaluate_model(model: str, out: Path, *, categories: list[str], limit: int | None, eval_data: str | None,
                   max_tokens: int, batch: int = 16, progress: Progress = quiet, label: str = "eval",
                   engines: Any = None, guided: bool = False) -> EvalMetrics:
    """BFCL accuracy on `categories` (the first `limit` of each one's dev entries: a run nobody asked
    to touch the test set never reads it) and exact-call accuracy on a held-out split; cached in
    `out/metrics.json`, generation resumable through the result files.
    The model runs on `engines` (`llm.launch.ModelEngines`, left open for the caller, e.g. for the
    next round's rollouts on the same model), or on a local engine of its own, closed at the end.
    `guided`: every answer decoded under its functions' call grammar (`guided`)."""
    from funreason.evaluate.runner import local_stream, result_path, run_categories
    from funreason.evaluate.splits import load_registry, load_split
    from funreason.llm.launch import ModelEngines
    from funreason.runinfo import claim, file_sha256, model_identity

    done = out / "metrics.json"
    registry = load_registry()
    # dev entries are the first of each category: while `limit` stays within them, the entries are
    # those a run before splits scored, and its folder resumes; past them the split is recorded
    reaches_test = any(limit is None or c not in registry.categories or limit > registry.categories[c].count("dev") for c in categories)
    # the cached metrics and the result files are reused only for this model and these settings
    claim(out, {"verb": "evaluate", **model_identity(model), **({"split": "dev"} if reaches_test else {}), "categories": categories,
                "limit": limit, "eval_data": eval_data, **({"eval_data_sha256": file_sha256(eval_data)} if eval_data and Path(eval_data).is_file() else {}),
                "max_tokens": max_tokens, **({"guided": True} if guided else {})}, [done, out / RESULTS, *[result_path(out, c) for c in categories]])
    if done.exists():
        return EvalMetrics.from_dict(json.loads(done.read_text()))
    out.mkdir(parents=True, exist_ok=True)
    params = SamplingParams(max_tokens=max_tokens)
    own = engines is None
    engines = engines or ModelEngines(batch=batch)
    engine = engines.get(model)
    t0 = time.perf_counter()
    try:
        data = {c: load_split(c, "dev", limit, registry=registry) for c in categories}
        if empty := [c for c, exs in data.items() if not exs]:
            raise ValueError(f"no dev entries of {', '.join(empty)} to score (bfcl_splits.json); the live categories are all test entries")
        stream = local_stream(engine, params, data, out, guided=guided)
        split = heldout_examples(eval_data, None, out / "heldout_rejected.jsonl") if eval_data else None
        held = HeldoutRun(engine, split.rows, params, out, guided=guided) if split is not None else None
        with progress(f"{label}: BFCL", "entries", sum(map(len, data.values()))) as advance:
            scores = run_categories(data, None, out, batch=batch, on_done=advance, stream=stream)
        heldout = None
        if held is not None and split is not None:
            with progress(f"{label}: held-out split", "rows", len(split.rows)) as advance:
                heldout = held.score(split.reader.rejected_count, advance, split.left_out)
    finally:
        if own:
            engines.close()
    metrics = EvalMetrics(model, {c: {"total": s["total"], "accuracy": s["accuracy"]} for c, s in scores.items()}, heldout,
                          round(time.perf_counter() - t0, 1))
    write_text_atomic(done, json.dumps(metrics.to_dict(), indent=2))
    return metrics


@dataclass
class HeldoutConfig:
    """`funreason eval heldout`'s settings (command-line options and `--config FILE.yaml` keys)."""

    data: str = field(default="", metadata=cli("A held-out split (any format the readers take), e.g. `data mix`'s heldout.jsonl.", argument=True, required=True))
    out: str = field(default="", metadata=cli("Folder for heldout_results.jsonl, heldout.json and rejected.jsonl.", "--out", "-o", required=True))
    model: str = field(default="", metadata=cli("Local model (directory or hub id).", required=True))
    limit: int | None = field(default=None, metadata=cli("Only the first N rows of the split (a conversation is one row)."))
    max_tokens: int = field(default=512, metadata=cli("Cap on new tokens per answer."))
    batch: int = field(default=16, metadata=cli("Prompts generated together."))
    chat_template: str | None = field(default=None, metadata=cli("A Jinja chat template file used in place of the model's own."))
    guided: bool = field(default=False, metadata=cli("Schema-guided decoding: a call list the model starts keeps to the row's functions, parameters and types."))
    per_turn: bool = field(default=False, metadata=cli(
        "Ask every row with earlier assistant turns at each of its turns (the gold history before it), as rows marked "
        "`meta.conversation: whole` always are, and print exact calls per turn."))
    beams: int = field(default=1, metadata=cli("Beam search over the call list: keep the N likeliest continuations once an answer opens its "
                                               "call list, answer with the likeliest; each row takes N rows of the batch."))
    length_penalty: float = field(default=0.0, metadata=cli("With --beams: rank finished call lists by summed log probability / tokens ** this; 0 ranks by "
                                                            "the sum, which favours fewer calls, 1 by the mean per token (searches longer)."))

    def validate(self) -> "HeldoutConfig":
        if not self.data or not self.out or not self.model:
            raise ValueError("give the split, --model and --out: funreason eval heldout DATA --model M --out DIR")
        if not Path(self.data).is_file():
            raise ValueError(f"{self.data}: no such file")
        if self.batch < 1 or self.max_tokens < 1 or self.beams < 1 or (self.limit is not None and self.limit < 1):
            raise ValueError("--batch, --max-tokens, --beams and --limit must be 1 or more")
        if self.length_penalty < 0 or (self.length_penalty and self.beams == 1):
            raise ValueError(f"--length-penalty ranks a beam search's answers: 0 or more, and only with --beams 2 or more (got {self.length_penalty})")
        from funreason.models.ref import check_model_ref

        check_model_ref(self.model)
        return self


@releases_folders
def eval_heldout(cfg: HeldoutConfig, progress: Progress = quiet) -> HeldoutScore:
    """`funreason eval heldout`: exact-call accuracy of `cfg.model` on a held-out split, into
    `cfg.out` (`heldout_results.jsonl`, `heldout.json`). Refuses a folder made for another model or split."""
    from funreason.llm.factory import BackendConfig, open_engine
    from funreason.runinfo import claim, file_sha256, model_identity

    out = Path(cfg.out)
    params = SamplingParams(max_tokens=cfg.max_tokens, beams=cfg.beams, length_penalty=cfg.length_penalty)
    claim(out, {"verb": "eval heldout", **model_identity(cfg.model), "data_sha256": file_sha256(cfg.data), "limit": cfg.limit,
                "max_tokens": cfg.max_tokens, "chat_template": file_sha256(cfg.chat_template) if cfg.chat_template else None,
                **({"guided": True} if cfg.guided else {}), **({"per_turn": True} if cfg.per_turn else {}), **params.search_settings()},
          [out / RESULTS, out / "heldout.json"])
    out.mkdir(parents=True, exist_ok=True)
    split = heldout_examples(cfg.data, cfg.limit, out / "rejected.jsonl", per_turn=cfg.per_turn)
    with open_engine(BackendConfig(local=cfg.model, concurrency=cfg.batch, chat_template=cfg.chat_template)) as engine:
        held = HeldoutRun(engine, split.rows, params, out, guided=cfg.guided)
        with progress("held-out split" + (f" ({held.resumed} rows finished before)" if held.resumed else ""), "rows", len(split.rows)) as advance:
            score = held.score(split.reader.rejected_count, advance, split.left_out)
    write_text_atomic(out / "heldout.json", json.dumps({"model": cfg.model, "data": cfg.data, **score.to_dict()}, indent=2))
    return score
