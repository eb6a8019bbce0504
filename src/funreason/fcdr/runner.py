"""`funreason refine`: Function Call Data Refinement (FCDR), resumable and exact in its bookkeeping.

Per row, in order (prompts in `prompts/`):
0. rows without reasoning first get it: the teacher writes reasoning and its own answer;
1. response identification: a row with no reference answer is dropped; a statement answer is
   saved as it is (one that names a tool followed by "(" is shown to the teacher; if it is a call
   in disguise, it is regenerated);
2. query & tool identification: decidable checks (names in tools, required parameters, types,
   enums), then the teacher: solvable with these tools, values derivable from the query? no → drop;
3. CoT identification: the teacher's own answer must equal the reference (decidable), then the
   teacher: does the reasoning lead to the answer? no → drop;
4. function & parameter identification: decidable checks, then the teacher: right names and
   values? no → regenerate the answer;
5. format identification: the calls must write and parse back as a Python call list (decidable,
   never asks the teacher); no → regenerate.
Still failing 4–5 after `max_regenerations` → hard.

A conversation (a record whose answer follows assistant turns) goes through the same stages step
by step (`trajectory`): each assistant step with the conversation before it in view; a statement
step without reasoning gets reasoning written and judged at stage 3; only the last step may be
regenerated, and the first step that fails ends the conversation (dropped, or hard at the last
step), the step named. It is still one row: it ends in one file, once.

Every input row ends in exactly one of kept / dropped / hard / rejected / errors .jsonl, once.
Each line is one `write` on an O_APPEND file, so a crash leaves at most a torn last line, which the
next run cuts off. Re-running the same command skips rows already in kept / dropped / hard /
rejected and retries the rows in errors.jsonl. Rows are appended as the concurrent teacher answers
them; a run that ends without an error rewrites each file in input order (atomically), so the same
input and teacher give the same files, line for line, however the answers interleaved or however
often the run was resumed: training on kept.jsonl then sees the same rows in the same order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from funreason.runinfo import releases_folders
from funreason.calls import format_answer, format_python_calls
from funreason.config import cli
from funreason.errors import BackendError, SchemaError
from funreason.fit import Verdict, check_calls, same_calls
from funreason.formats import example_from_row
from funreason.formats.jsonl import AppendLog, BadLine, iter_json_rows, read_finished_rows, write_jsonl_atomic
from funreason.llm import ChatBackend, SamplingParams
from funreason.llm.factory import BackendConfig, open_chat
from funreason.progress import Progress, quiet
from funreason.fcdr.checks import (
    COT_DIFFERS, DISGUISED_CALL, REGENERATION_NO_PARSE, RESPONSE_MISSING, TEACHER_FAIL,
    format_problem, looks_like_call, parse_answer, parse_verdict, split_cot,
)
from funreason.fcdr.judge import readable
from funreason.fcdr.prompts import functions_json, is_conversation, stage_prompt
from funreason.fcdr.trajectory import (
    DROPPED, HARD, LEFT_OUT, NOT_REACHED, PASSED, Step, StepTally, conversation_steps, step_record,
)
from funreason.schema import Call, Example

if TYPE_CHECKING:
    from funreason.llm.http import Usage

OUTCOMES = ("kept", "dropped", "hard", "rejected", "errors")
FINAL = ("kept", "dropped", "hard", "rejected")
STAGES = ("statement", "response", "query_tool", "cot", "function_param", "format")  # in the order a step meets them


def parse_shard(text: str) -> tuple[int, int]:
    """`i/n` as (i, n); ValueError naming the form otherwise."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must be i/n with 0 <= i < n, not {text!r}") from None
    if not 0 <= i < n:
        raise ValueError(f"--shard must be i/n with 0 <= i < n, not {text!r}")
    return i, n


@dataclass
class RefineConfig:
    """`funreason refine`'s settings (also from YAML: `teacher:` is a nested `llm.factory.BackendConfig`)."""

    input: str = field(default="", metadata=cli("Raw function-calling data (xLAM, OpenAI, native JSONL or a JSON array).", argument=True, required=True))
    out: str = field(default="", metadata=cli("Output folder: kept/dropped/hard/rejected/errors .jsonl and the report.", "--out", "-o", required=True))
    teacher: BackendConfig = field(default_factory=BackendConfig)  # recorded by name: a resume with another teacher is refused
    max_regenerations: int = field(default=3, metadata=cli("Answer regenerations before a row becomes hard data."))
    shard: tuple[int, int] = field(default=(0, 1), metadata=cli("i/n: this machine's share of the rows (index % n == i).", parse=parse_shard))
    concurrency: int = field(default=64, metadata=cli("Rows in flight (and the teacher's requests in flight)."))
    temperature: float = field(default=0.0, metadata=cli("Teacher sampling temperature."))
    max_tokens: int = field(default=2048, metadata=cli("Teacher reply length cap."))
    verdict_retries: int = 2  # extra asks when a verdict cannot be read
    format: str = field(default="auto", metadata=cli("Input format: auto, native, xlam, openai, bfcl.", "--format", "-f"))

    def validate(self) -> "RefineConfig":
        if not self.input or not self.out:
            raise ValueError("give the input file and --out: funreason refine INPUT --out DIR …")
        i, n = self.shard
        if not 0 <= i < n:
            raise ValueError(f"--shard must be i/n with 0 <= i < n, not {i}/{n}")
        if self.concurrency < 1 or self.max_regenerations < 0 or self.max_tokens < 1:
            raise ValueError("--concurrency and --max-tokens must be 1 or more, --max-regenerations 0 or more")
        if not Path(self.input).exists():
            raise ValueError(f"{self.input}: no such file")
        self.teacher.validate("teacher", ("--endpoint", "--teacher-model", "--teacher"))
        if self.teacher.concurrency != BackendConfig().concurrency:  # the run opens the teacher with --concurrency
            raise ValueError(f"teacher: concurrency {self.teacher.concurrency} is not read; the requests in flight are refine's "
                             f"--concurrency (concurrency: N at the top level of the file)")
        return self


class Teacher:
    """Asks the teacher with one of the stage prompts and counts calls per stage."""

    def __init__(self, backend: Any, params: SamplingParams, verdict_retries: int):
        self.backend = backend
        self.params = params
        self.verdict_retries = verdict_retries
        self.calls: Counter[str] = Counter()

    async def ask(self, stage: str, text: str) -> str:
        """The teacher's reply; reasoning an endpoint returned apart comes back in its <think> block."""
        self.calls[stage] += 1
        gen = await self.backend.chat([{"role": "user", "content": text}], self.params)
        return format_answer(gen.reasoning, gen.text) if gen.reasoning else gen.text

    async def verdict(self, stage: str, text: str) -> tuple[str, str]:
        """A readable verdict or BackendError: a malformed verdict is asked again, never a pass."""
        parsed, reply = await readable(lambda: self.ask(stage, text), parse_verdict, self.verdict_retries)
        if parsed is None:
            raise BackendError(f"{stage}: no readable verdict after {self.verdict_retries + 1} replies; last: {reply[-200:]!r}")
        return parsed


@dataclass
class Outcome:
    file: str  # one of OUTCOMES
    row: dict[str, Any]
    stage: str  # where the row's path ended, for the funnel


@dataclass
class StepResult:
    """How one step (a single-turn row's answer, or one assistant step of a conversation) fared:
    `outcome` passed / dropped / hard, `stage` where its path ended (statement, kept, the stage that
    dropped it, hard), the stages it passed, its regenerations, the failing verdict and the
    teacher's words, and every attempt at stages 4–5 (for hard data)."""

    outcome: str
    stage: str
    passed: list[str] = field(default_factory=list)
    regenerations: int = 0
    verdict: Verdict | None = None
    teacher: str | None = None
    attempts: list[dict[str, str]] = field(default_factory=list)


def _dropped(stage: str, verdict: Verdict, teacher_words: str | None = None) -> StepResult:
    return StepResult(DROPPED, stage, verdict=verdict, teacher=teacher_words)


def _regeneration_stage(verdict: Verdict) -> str:
    """The stage whose failure asked for a regeneration, for a step that cannot be regenerated."""
    if verdict.kind == DISGUISED_CALL:
        return "response"
    return "format" if verdict.kind.startswith("format:") else "function_param"


async def judge_step(ex: Example, teacher: Teacher, max_regen: int, *, regenerate: bool = True,
                     reply_reasoning: bool = False) -> StepResult:
    """One answer through the five stages; `ex` gets the reasoning the teacher wrote and the answer
    that passed. `regenerate`: a failing answer at stages 4–5 may be rewritten (else the step is
    dropped at that stage); `reply_reasoning`: a statement without reasoning gets reasoning written
    and judged (conversation steps; single-turn statements are kept as they are). Raises
    BackendError on teacher failure."""
    functions = functions_json(ex)  # the same for every prompt of this step

    # 1. response identification
    if ex.answer is None:
        return _dropped("response", Verdict(RESPONSE_MISSING, "the row has no reference answer"))
    if not ex.calls:
        statement = ex.answer if isinstance(ex.answer, str) else ""
        if statement and looks_like_call(statement, ex):
            v, words = await teacher.verdict("response", stage_prompt("response", ex, functions))
            if v == "CALL":
                verdict = Verdict(DISGUISED_CALL, f"the answer is a function call in a form that does not parse: {words[-300:]}")
                return await _fix_calls(ex, teacher, max_regen if regenerate else 0, [], verdict, ["response"], functions, regenerate)
        if not (reply_reasoning and statement and ex.reasoning is None):
            return StepResult(PASSED, "statement", ["statement"])
        reply = await teacher.ask("write_reply_cot", stage_prompt("write_reply_cot", ex, functions))
        reasoning, _ = split_cot(reply)
        if not reasoning:
            raise BackendError(f"write_reply_cot: the teacher's reply has no reasoning: {reply[-200:]!r}")
        ex.reasoning = reasoning
        v, words = await teacher.verdict("cot", stage_prompt("cot", ex, functions))
        if v != "PASS":
            return _dropped("cot", Verdict(TEACHER_FAIL, "the teacher judged that the reasoning does not lead to the reply"), words)
        return StepResult(PASSED, "statement", ["statement", "cot"])

    # 0. reasoning for rows without it (the teacher also answers, for the stage-3 check)
    own_answer = None
    if ex.reasoning is None:
        reply = await teacher.ask("write_cot", stage_prompt("write_cot", ex, functions))
        reasoning, own_answer = split_cot(reply)
        if not reasoning:
            raise BackendError(f"write_cot: the teacher's reply has no reasoning: {reply[-200:]!r}")
        ex.reasoning = reasoning

    # 2. query & tool identification
    verdict = check_calls(ex.calls, ex.tools)
    if verdict:
        return _dropped("query_tool", verdict)
    v, words = await teacher.verdict("query_tool", stage_prompt("query_tool", ex, functions))
    if v != "PASS":
        return _dropped("query_tool", Verdict(TEACHER_FAIL, "the teacher judged the query unsolvable with these tools"), words)

    # 3. CoT identification
    if own_answer is not None and not same_calls(own_answer, ex.calls):
        return _dropped("cot", Verdict(COT_DIFFERS, f"the reasoning concludes {format_python_calls(own_answer)}, "
                                                    f"the answer is {format_python_calls(ex.calls)}"))
    v, words = await teacher.verdict("cot", stage_prompt("cot", ex, functions))
    if v != "PASS":
        return _dropped("cot", Verdict(TEACHER_FAIL, "the teacher judged that the reasoning does not lead to the answer"), words)

    # 4–5, with regeneration
    return await _fix_calls(ex, teacher, max_regen if regenerate else 0, ex.calls, None, ["query_tool", "cot"], functions, regenerate)


async def _fix_calls(ex: Example, teacher: Teacher, max_regen: int, calls: list[Call], verdict: Verdict | None,
                     stages: list[str], functions: str, regenerate: bool = True) -> StepResult:
    history: list[dict[str, str]] = []
    for attempt in range(max_regen + 1):
        words = None
        if verdict is None:
            verdict = check_calls(calls, ex.tools) or format_problem(calls)
            if verdict is None:
                v, words = await teacher.verdict("function_param", stage_prompt("function_param", ex, functions, calls))
                if v == "PASS":
                    ex.answer = calls
                    return StepResult(PASSED, "kept", stages + ["function_param", "format"], attempt)
                verdict = Verdict(TEACHER_FAIL, f"the teacher judged the names or values wrong: {words[-300:]}")
        if not regenerate:  # later turns answer this one as it is: it cannot be rewritten
            return _dropped(_regeneration_stage(verdict), verdict, words)
        history.append({"calls": format_python_calls(calls) if calls else "", **verdict.to_dict()})
        if attempt == max_regen:
            break
        reply = await teacher.ask("regenerate", stage_prompt("regenerate", ex, functions, calls, problem=verdict.why))
        new = parse_answer(reply)
        calls, verdict = (new, None) if new else (calls, Verdict(REGENERATION_NO_PARSE, f"the regenerated answer does not parse: {reply[-200:]!r}"))
    last = history[-1]
    return StepResult(HARD, "hard", regenerations=max_regen, verdict=Verdict(last["kind"], last["why"]), attempts=history)


async def refine_example(ex: Example, key: str, teacher: Teacher, max_regen: int) -> Outcome:
    """One row through the five stages: a conversation step by step (`refine_conversation`), any
    other row as single-turn FCDR. Raises BackendError on teacher failure."""
    if is_conversation(ex):
        return await refine_conversation(ex, key, teacher, max_regen)
    result = await judge_step(ex, teacher, max_regen)
    if result.outcome == PASSED:
        return Outcome("kept", _kept(ex, key, result.passed, result.regenerations), result.stage)
    assert result.verdict is not None
    if result.outcome == DROPPED:
        return Outcome("dropped", {"key": key, "id": ex.id, "stage": result.stage, **result.verdict.to_dict(),
                                   "teacher": result.teacher, "example": ex.to_dict()}, result.stage)
    return Outcome("hard", {"key": key, "id": ex.id, **result.verdict.to_dict(), "attempts": result.attempts,
                            "example": ex.to_dict()}, "hard")


async def refine_conversation(ex: Example, key: str, teacher: Teacher, max_regen: int) -> Outcome:
    """A conversation step by step, each step judged with the conversation before it in view. Only
    the last step (the record's own answer, or its last message when it has none: nothing follows
    it) may be regenerated: the turns after an earlier step (tool results, the user's replies)
    answer it as it was written, so an earlier step that fails drops the conversation. The first failing step ends it, named in the
    row (`step`, and `why` opens with "assistant turn k of n"); every step has its record in
    `steps`. Earlier steps get the reasoning the teacher wrote in their message."""
    plan = conversation_steps(ex)
    records = {k: step_record(k, LEFT_OUT, why=why) for k, why in plan.left_out}
    failed: tuple[Step, StepResult] | None = None
    regenerations = 0
    passed: list[str] = []
    for step in plan.steps:
        if failed is not None:
            records[step.number] = step_record(step.number, NOT_REACHED)
            continue
        last = step.message is None or step.message == len(ex.messages) - 1  # nothing follows it
        result = await judge_step(step.example, teacher, max_regen, regenerate=last, reply_reasoning=True)
        if step.message is not None:
            m = ex.messages[step.message]
            m.reasoning = step.example.reasoning
            if step.example.calls and step.example.calls != (m.tool_calls or []):  # regenerated: only a last step is
                m.tool_calls, m.content = list(step.example.calls), ""
        verdict = result.verdict.to_dict() if result.verdict else {}
        records[step.number] = step_record(step.number, result.outcome, stage=result.stage, passed=result.passed or None,
                                           regenerations=result.regenerations, **verdict)
        regenerations += result.regenerations
        passed += [s for s in result.passed if s not in passed]
        if result.outcome != PASSED:
            failed = (step, result)
    steps = [records[k] for k in sorted(records)]
    if failed is None:
        row = _kept(ex, key, [s for s in STAGES if s in passed], regenerations)
        row["meta"]["fcdr"]["steps"] = steps
        return Outcome("kept", row, "kept")
    step, result = failed
    assert result.verdict is not None
    why = f"assistant turn {step.number} of {plan.total}: {result.verdict.why}"
    common = {"key": key, "id": ex.id, "kind": result.verdict.kind, "why": why, "step": step.number}
    if result.outcome == DROPPED:
        return Outcome("dropped", {**common, "stage": result.stage, "teacher": result.teacher, "steps": steps,
                                   "example": ex.to_dict()}, result.stage)
    return Outcome("hard", {**common, "attempts": result.attempts, "steps": steps, "example": ex.to_dict()}, "hard")


def _kept(ex: Example, key: str, passed: list[str], regenerations: int) -> dict[str, Any]:
    row = ex.to_dict()
    row.setdefault("meta", {})["fcdr"] = {"key": key, "passed": passed, "regenerations": regenerations}
    return row


def row_key(raw: Any, seen: Counter[str]) -> str:
    """A row's key: a digest of its content (the n-th copy of a repeated row gets `#n`), so a
    resumed run recognises a row by what it is, never by where it stood in a file."""
    text = raw.raw if isinstance(raw, BadLine) else json.dumps(raw, sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]
    seen[digest] += 1
    return digest if seen[digest] == 1 else f"{digest}#{seen[digest]}"


def claim_run(out: Path, cfg: RefineConfig) -> None:
    """Record what the run is made from (input content, teacher, settings), or refuse to resume a
    folder made from anything else: its kept rows would be another run's."""
    from funreason.runinfo import claim, file_sha256, model_identity

    t = cfg.teacher  # an endpoint is recorded by the name it serves; a local teacher by its weights, engine and template
    # the weights' fingerprint, not the resolved path: shards refined from other working directories still merge
    local = {"teacher_fingerprint": model_identity(t.local).get("fingerprint", t.local), "teacher_engine": t.engine,
             **({"teacher_chat_template_sha256": file_sha256(t.chat_template)} if t.chat_template else {})} if t.local else {}
    claim(out, {"verb": "refine", "input_sha256": file_sha256(cfg.input), "teacher": t.name, **local,
                "max_regenerations": cfg.max_regenerations, "shard": list(cfg.shard), "temperature": cfg.temperature,
                "max_tokens": cfg.max_tokens, "format": cfg.format}, [out / f"{name}.jsonl" for name in OUTCOMES])


def first_error(out: Path) -> str:
    """The first backend error of the run folder `out`, for a one-line message."""
    try:
        with open(out / "errors.jsonl", encoding="utf-8") as f:
            return str(json.loads(f.readline()).get("error", "?"))[:200]
    except (OSError, ValueError, AttributeError):
        return "?"


def outcome_key(row: dict[str, Any]) -> str | None:
    return row.get("key") or (row.get("meta") or {}).get("fcdr", {}).get("key")


class Ledger:
    """The five output files, one `AppendLog` each. The rows of errors.jsonl are retried: the file
    starts afresh, so a row that fails again is written once more, not twice."""

    def __init__(self, out: Path):
        self.out = out
        self.counts: Counter[str] = Counter()
        self.done: set[str] = set()
        self.path("errors").unlink(missing_ok=True)  # its rows are not in a final file: they are retried now
        self.logs = {name: AppendLog(self.path(name)) for name in OUTCOMES}
        for name in FINAL:
            for row in self.logs[name].rows:
                k = outcome_key(row)
                if k is not None:
                    self.done.add(k)
                    self.counts[name] += 1

    def path(self, name: str) -> Path:
        return self.out / f"{name}.jsonl"

    def write(self, name: str, row: dict[str, Any]) -> None:
        self.logs[name].append(row)
        self.counts[name] += 1

    def close(self) -> None:
        for log in self.logs.values():
            log.close()

    def put_in_order(self, order: dict[str, int]) -> None:
        """Rewrite each closed file with its rows in input order (`order`: key -> place in the
        input); a row whose key the input lacks keeps its place after them (none should)."""
        for name in OUTCOMES:
            rows = read_finished_rows(self.path(name))
            ranked = sorted(rows, key=lambda row: order.get(outcome_key(row) or "", len(order)))
            if ranked != rows:
                write_jsonl_atomic(self.path(name), ranked)


@dataclass
class RefineReport:
    rows: int = 0
    skipped_done: int = 0
    outcomes: Counter = field(default_factory=Counter)
    ended_at: Counter = field(default_factory=Counter)  # stage where each row of this run ended
    dropped_by_stage: Counter = field(default_factory=Counter)
    llm_calls: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    steps: StepTally = field(default_factory=StepTally)  # this run's rows, per step and per conversation


class _Pool:
    """`size` workers taking items from a bounded queue. A worker that raises (a row that cannot be
    written: a full disk) stops the pool: `put` then raises its error instead of waiting on a queue
    nobody drains, and leaving the `async with` raises it too; items in flight are dropped (refine
    redoes them on resume). A normal exit lets the workers finish what is queued."""

    def __init__(self, handle: Callable[[Any], Any], size: int):
        self.handle, self.size = handle, size
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=size * 2)
        self.failed: list[BaseException] = []
        self.stop = asyncio.Event()
        self.workers: list[asyncio.Task] = []

    async def _work(self) -> None:
        try:
            while (item := await self.queue.get()) is not None:
                await self.handle(item)
        except BaseException as e:
            self.failed.append(e)
            self.stop.set()
            raise

    async def put(self, item: Any) -> None:
        putter, stopper = asyncio.ensure_future(self.queue.put(item)), asyncio.ensure_future(self.stop.wait())
        await asyncio.wait({putter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not putter.done():
            putter.cancel()
            raise self.failed[0]

    async def __aenter__(self) -> "_Pool":
        self.workers = [asyncio.create_task(self._work()) for _ in range(self.size)]
        return self

    async def __aexit__(self, exc_type: Any, *exc: Any) -> None:
        try:
            if exc_type is None:
                for _ in self.workers:
                    await self.put(None)
                await asyncio.gather(*self.workers)
        finally:
            for w in self.workers:
                w.cancel()
            await asyncio.gather(*self.workers, return_exceptions=True)
        if self.failed and exc_type is None:
            raise self.failed[0]


async def refine(cfg: RefineConfig, progress: Progress = quiet) -> tuple[RefineReport, Usage | None]:
    """`funreason refine`: the teacher opened from `cfg.teacher` for the run, closed after it;
    (this run's report, the teacher's HTTP usage when it is an endpoint)."""
    with progress("refining", "rows") as advance:
        async with open_chat(dataclasses.replace(cfg.teacher, concurrency=cfg.concurrency)) as llm:
            report = await run_refine(cfg, llm, lambda _outcome: advance())
    return report, getattr(llm, "usage", None)


@releases_folders
async def run_refine(cfg: RefineConfig, backend: ChatBackend, on_row: Callable[[str], None] | None = None) -> RefineReport:
    """Refine `cfg.input` into `cfg.out` with an open `backend`."""
    out = Path(cfg.out)
    claim_run(out, cfg)
    ledger = Ledger(out)
    teacher = Teacher(backend, SamplingParams(max_tokens=cfg.max_tokens, temperature=cfg.temperature), cfg.verdict_retries)
    report = RefineReport()
    t0 = time.perf_counter()
    order: dict[str, int] = {}  # key -> place in the input, to write the files in input order

    def ended(file: str, row: dict[str, Any], stage: str) -> None:
        ledger.write(file, row)
        report.ended_at[stage] += 1
        report.steps.add(file, row)
        if file == "dropped":
            report.dropped_by_stage[row["stage"]] += 1
        if on_row:
            on_row(file)

    async def refine(item: tuple[str, Example]) -> None:
        key, ex = item
        try:
            result = await refine_example(ex, key, teacher, cfg.max_regenerations)
        except (BackendError, SchemaError) as e:
            result = Outcome("errors", {"key": key, "id": ex.id, "error": str(e), "example": ex.to_dict()}, "errors")
        except Exception as e:  # a bug must not lose the row: record it and go on
            result = Outcome("errors", {"key": key, "id": ex.id, "error": f"{type(e).__name__}: {e}", "example": ex.to_dict()}, "errors")
        ended(result.file, result.row, result.stage)

    try:
        async with _Pool(refine, cfg.concurrency) as pool:
            for key, where, raw in _rows(cfg, report):
                order[key] = len(order)
                if key in ledger.done:
                    report.skipped_done += 1
                    if on_row:
                        on_row("skipped")
                    continue
                try:
                    ex = _example(raw, where, cfg.format)
                except SchemaError as e:
                    ended("rejected", {"key": key, "where": e.where, "reason": e.reason, "raw": raw.raw if isinstance(raw, BadLine) else raw},
                          "rejected")
                    continue
                await pool.put((key, ex))
    finally:
        ledger.close()
    ledger.put_in_order(order)
    report.outcomes = Counter({k: ledger.counts[k] for k in OUTCOMES})
    report.llm_calls = teacher.calls
    report.seconds = time.perf_counter() - t0
    return report


def _rows(cfg: RefineConfig, report: RefineReport) -> Iterator[tuple[str, str, Any]]:
    """(key, where, raw row) of this shard's rows, counted in `report.rows`."""
    i_shard, n_shard = cfg.shard
    seen: Counter[str] = Counter()
    for index, (where, raw) in enumerate(iter_json_rows(cfg.input)):
        if index % n_shard == i_shard:
            report.rows += 1
            yield row_key(raw, seen), where, raw


def _example(raw: Any, where: str, fmt: str) -> Example:
    """The record of a raw row; SchemaError for an unreadable row or a BFCL one (never training data)."""
    if isinstance(raw, BadLine):
        raise raw
    ex = example_from_row(raw, where, fmt)
    if ex.heldout:
        raise SchemaError("a held-out benchmark row (BFCL): never refine it into training data", where)
    return ex


def merge_shards(shards: list[Path], out: Path) -> RefineReport:
    """Join the folders of `refine --shard i/n` runs (every i of one n, the same input, teacher and
    settings) into `out`, as one run over the whole input would have left it: each outcome file the
    shards' files one after another, `run.json` the whole run's. Refuses shards of different runs,
    a missing or repeated shard and unfinished shards (rows still in errors.jsonl), naming the
    folder. Copies of one row that fell into different shards are numbered as one run numbers them
    (`digest`, `digest#2`, …), so a resume over the whole input skips them all."""
    from funreason.formats.jsonl import write_text_atomic
    from funreason.runinfo import RUN_FILE

    runs = []
    for d in shards:
        try:
            runs.append(json.loads((d / RUN_FILE).read_text(encoding="utf-8")))
        except (OSError, ValueError) as e:
            raise ValueError(f"{d}: not a refine run folder ({RUN_FILE}: {e})") from None
    whole = [{k: v for k, v in r.items() if k != "shard"} for r in runs]
    for d, r in zip(shards, whole):
        if r.get("verb") != "refine" or r != whole[0]:
            raise ValueError(f"{d} comes from another run than {shards[0]} (input, teacher or settings differ)")
    n = runs[0]["shard"][1]
    got = sorted(r["shard"][0] for r in runs)
    if any(r["shard"][1] != n for r in runs) or got != list(range(n)):
        named = ", ".join(f"{r['shard'][0]}/{r['shard'][1]}" for r in runs)
        raise ValueError(f"shards {named} are not each of 0/{n} … {n - 1}/{n} once")
    order = [d for _, d in sorted(zip((r["shard"][0] for r in runs), shards))]
    unfinished = [str(d) for d in order if read_finished_rows(d / "errors.jsonl")]
    if unfinished:
        raise ValueError(f"{', '.join(unfinished)} still hold rows in errors.jsonl: run those shards again first")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; choose a new --out")
    report, copies = RefineReport(), Counter()
    texts = {}
    for name in FINAL:
        lines = []
        for d in order:
            for row in read_finished_rows(d / f"{name}.jsonl"):
                _renumber(row, copies)
                lines.append(json.dumps(row, ensure_ascii=False) + "\n")
        texts[name] = "".join(lines)
        report.outcomes[name] = len(lines)
    out.mkdir(parents=True, exist_ok=True)
    for name in FINAL:
        write_text_atomic(out / f"{name}.jsonl", texts[name])
    write_text_atomic(out / "errors.jsonl", "")
    write_text_atomic(out / RUN_FILE, json.dumps({**whole[0], "shard": [0, 1]}, indent=2) + "\n")
    report.rows = report.skipped_done = sum(report.outcomes.values())  # refined by the shards, none by the merge
    return report


def _renumber(row: dict[str, Any], copies: Counter[str]) -> None:
    key = outcome_key(row)
    if key is None:
        return
    base = key.split("#")[0]
    copies[base] += 1
    new = base if copies[base] == 1 else f"{base}#{copies[base]}"
    if "key" in row:
        row["key"] = new
    else:
        row["meta"]["fcdr"]["key"] = new
