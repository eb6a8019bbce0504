"""BFCL's multi-turn inference loop (`eval bfcl` on the multi_turn_* categories), with a local model
or an endpoint, prompting or native tool calls, as bfcl-eval's base handler runs it
(`inference_multi_turn_prompting` / `_FC`).

Per entry: each user turn is added to the history and the model answers (a step); the step's text
is decoded as the checker decodes it (`multi_turn.decode_step`); its calls run in the entry's
environments (`multi_turn.Environments`: public methods of bfcl-eval's own classes, literal
arguments, never eval) and their results go back as tool messages; the model answers again, until a
step decodes to no call (the turn ends) or the turn has run more than BFCL's `MAXIMUM_STEP_LIMIT`
steps with calls (the entry is force-quit: its later turns are never asked, so the checker fails it
as force-terminated). `miss_func` entries get their held-out functions at the turn BFCL adds them
(prompting: the functions' JSON in that turn's user message, BFCL's wording; native: added to the
tools); long-context entries load their long scenario.

Invariant: the environments the loop ran are the ones the checker replays. Every step's text is
written to the result exactly as it was decoded here (native mode: the endpoint's tool calls as the
Python call list `runner.native_result` writes), and both sides decode it with `decode_step`, so a
call that ran here runs there with the same arguments. A step's reasoning (`<think>…</think>`,
or the endpoint's `reasoning_content`) is not part of that text: it goes to the conversation log,
as BFCL's handlers of reasoning models keep `reasoning_content` apart from the step they record.

History: the conversation is `schema.Message`s rendered by FunReason's chat rendering
(`chat.prompt_messages` / `render_prompt`), as the model is trained: an assistant step whose calls
decoded is an assistant turn with those calls as `tool_calls` (its reasoning never shown back,
`chat.HISTORY_REASONING`), any other step its text; each result a `tool` message. Native mode sends
OpenAI's messages (`tool_calls` with ids, `tool` messages answering them).

Files, per category beside the single-turn ones: `BFCL_v4_<category>_result.json` (BFCL's
multi-turn format, `{"id", "result": [[step text, ...] per turn]}` a line, read by `eval score` and
by `bfcl evaluate`) and `BFCL_v4_<category>_conversations.jsonl` (per entry: each turn's user
message, each step's text, calls, results and why the turn ended). Each entry is written when it
finishes, its log line first, so an interrupted run resumes at the unfinished entries; an entry
redone after a crash between the two writes has two log lines, and the last one is its result's.

Known differences from BFCL's prompt: the functions are shown as FunReason shows every tool (name,
description, parameters; BFCL's multi-turn docs also list a `response` schema), and a step's calls
come back in the history as FunReason writes calls, not as the model wrote them.
"""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from funreason.calls import format_python_calls, split_think
from funreason.chat import prompt_messages, render_prompt
from funreason.evaluate import MULTI_TURN
from funreason.evaluate.multi_turn import MODEL_SIDE, Environments, decode_step, score_entry
from funreason.evaluate.runner import prompt_tools, result_path
from funreason.formats.jsonl import AppendLog
from funreason.llm import Generation, SamplingParams
from funreason.schema import Call, Example, Message, Tool, json_schema


def step_limit() -> int:
    """BFCL's cap on steps with calls in one turn (`MAXIMUM_STEP_LIMIT`): a turn past it force-quits the entry."""
    from bfcl_eval.constants.default_prompts import MAXIMUM_STEP_LIMIT

    return MAXIMUM_STEP_LIMIT


def held_out_message(mode: str, functions: list[dict]) -> str:
    """The user message of a `miss_func` turn, BFCL's wording: prompting mode lists the functions
    (Python's rendering of their docs, as BFCL's `str.format` writes them), native mode only says so."""
    from bfcl_eval.constants.default_prompts import (DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_FC,
                                                     DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_PROMPTING)

    if mode == "native":
        return DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_FC
    return DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_PROMPTING.format(functions=functions)


def conversation_log_path(out: Path, category: str) -> Path:
    return out / f"BFCL_v4_{category}_conversations.jsonl"


# --- entries ------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One multi-turn entry as BFCL's generation sees it: its question row, the function docs on
    offer from the start, those held out until a turn (`miss_func`), and its ground truth."""

    id: str
    row: dict[str, Any]
    functions: list[dict[str, Any]]
    held_out: dict[int, list[dict[str, Any]]]
    ground_truth: list[list[str]]

    @property
    def turns(self) -> list[list[dict[str, Any]]]:
        return self.row["question"]


def function_docs(data_dir: str | Path | None = None) -> dict[str, list[dict[str, Any]]]:
    """Each environment class's function docs, from bfcl-eval's `multi_turn_func_doc` files."""
    from bfcl_eval.constants.executable_backend_config import MULTI_TURN_FUNC_DOC_FILE_MAPPING

    from funreason.formats import bfcl

    folder = (Path(data_dir) if data_dir else bfcl.data_dir()) / "multi_turn_func_doc"
    docs = {}
    for cls, name in MULTI_TURN_FUNC_DOC_FILE_MAPPING.items():
        path = folder / name
        if path.exists():
            docs[cls] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return docs


def entry_of(row: dict[str, Any], ground_truth: list[list[str]], docs: dict[str, list[dict[str, Any]]]) -> Entry:
    """An entry with its functions as BFCL's `populate_test_cases_with_predefined_functions` gives
    them: every involved class's docs in order, the held-out ones taken out and kept by turn."""
    where = f"multi-turn entry {row.get('id')!r}"
    try:
        functions = [dict(f) for cls in row["involved_classes"] for f in docs[cls]]
    except KeyError as e:
        raise ValueError(f"{where}: no function docs for class {e}") from None
    held_out: dict[int, list[dict[str, Any]]] = {}
    for turn, names in (row.get("missed_function") or {}).items():
        held_out[int(turn)] = []
        for name in names:
            at = next((i for i, f in enumerate(functions) if f["name"] == name), None)
            if at is not None:  # as BFCL: a name not on offer is held out of nothing
                held_out[int(turn)].append(functions.pop(at))
        if row["question"][int(turn)]:
            raise ValueError(f"{where}: turn {turn} adds held-out functions but has a user message too (BFCL asserts it has none)")
    return Entry(row["id"], row, functions, held_out, ground_truth)


def load_entries(category: str, split: str, limit: int | None = None, data_dir: str | Path | None = None, skip: int = 0,
                 registry: Any = None) -> list[Entry]:
    """A multi-turn category's entries of `split` in the data's order, `limit` of them after the first
    `skip` (every multi-turn entry is test in the split registry)."""
    from funreason.evaluate.multi_turn import load_category
    from funreason.evaluate.splits import load_registry

    questions, answers = load_category(category, data_dir)
    keep = set((registry or load_registry()).select(category, list(questions), split))
    docs = function_docs(data_dir)
    chosen = [entry_of(q, answers[i], docs) for i, q in questions.items() if i in keep]
    return chosen[skip:None if limit is None else skip + limit]


# --- one conversation ---------------------------------------------------------------------------


@dataclass
class Conversation:
    """One entry's conversation in progress: `request()` is the next step to ask, `answer()` takes
    the model's reply and runs its calls; `finished` once the last turn ended or a turn force-quit."""

    entry: Entry
    mode: str  # "prompting" or "native"
    tools: list[Tool] = field(default_factory=list)  # the functions on offer now (native: grows at a miss_func turn)
    shown: list[Tool] = field(default_factory=list)  # the functions of the system prompt (prompting: never changes)
    messages: list[Message] = field(default_factory=list)
    result: list[list[str]] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    turn: int = -1
    steps_with_calls: int = 0
    finished: bool = False
    force_quit: bool = False
    _ids: int = 0

    def __post_init__(self) -> None:
        long_context = "long_context" in self.entry.id.rsplit("_", 1)[0] or "composite" in self.entry.id.rsplit("_", 1)[0]
        self.envs = Environments(self.entry.row, MODEL_SIDE, long_context)
        # BFCL's prompting handlers hint the language on each function given at the start, not on held-out ones
        base = [Tool.from_dict(f) for f in self.entry.functions]
        self.tools = self.shown = prompt_tools(Example(self.entry.id, base, []))
        self._next_turn()

    def _next_turn(self) -> None:
        self.turn += 1
        if self.turn >= len(self.entry.turns):
            self.finished = True
            return
        user = [Message.from_dict(m) for m in self.entry.turns[self.turn]]
        added = self.entry.held_out.get(self.turn)
        if added is not None:
            user = [Message("user", held_out_message(self.mode, added))]
            if self.mode == "native":
                self.tools = self.tools + [Tool.from_dict(f) for f in added]
        self.messages += user
        self.result.append([])
        self.log.append({"turn": self.turn, "user": [m.to_dict() for m in user], "steps": []})
        self.steps_with_calls = 0

    def example(self) -> Example:
        """The conversation so far as a record (prompting: the system prompt's functions)."""
        return Example(self.entry.id, self.shown if self.mode == "prompting" else self.tools, list(self.messages))

    def answer(self, gen: Generation) -> None:
        """Take the model's step: record it, decode it, run its calls and queue their results, or end the turn."""
        if self.finished:
            raise RuntimeError(f"{self.entry.id}: the conversation has ended")
        # the step's answer without its reasoning, as BFCL's handlers of reasoning models record a
        # step (the reasoning goes to the log; the checker decodes what follows it)
        if self.mode == "prompting":
            reasoning, text = split_think(gen.text)
        else:
            reasoning, text = gen.reasoning, native_text(gen)
        self.result[-1].append(text)
        step: dict[str, Any] = {"text": text, **({"reasoning": reasoning} if reasoning else {})}
        self.log[-1]["steps"].append(step)
        calls = decode_step(text)
        if calls is None:  # BFCL's handler: a step that does not decode, or decodes to no call, ends the turn
            self.messages.append(Message("assistant", text))
            step["end"] = "no call"
            self._next_turn()
            return
        ids = [self._new_id() for _ in calls]
        shown = [c for c in calls if isinstance(c, Call)]
        if len(shown) == len(calls):
            self.messages.append(Message("assistant", "", tool_calls=[Call(c.name, c.arguments, i) for c, i in zip(shown, ids)]))
        else:  # a refused call has no arguments to show back: the step stays as it was written
            self.messages.append(Message("assistant", text))
        results = [self.envs.run(c) for c in calls]
        for c, i, r in zip(calls, ids, results):
            self.messages.append(Message("tool", r, tool_call_id=i, name=c.name))
        step["calls"] = [c.to_dict() if isinstance(c, Call) else {"name": c.name, "refused": True} for c in calls]
        step["results"] = results
        self.steps_with_calls += 1
        if self.steps_with_calls > step_limit():  # BFCL's force quit: the entry's later turns are never asked
            step["end"] = f"forced to quit after {step_limit()} steps"
            self.force_quit = self.finished = True

    def _new_id(self) -> str:
        self._ids += 1
        return f"call_{self._ids}"

    def record(self) -> dict[str, Any]:
        """The conversation log line of the finished entry."""
        return {"id": self.entry.id, "turns": self.log, **({"force_quit": True} if self.force_quit else {})}


def native_text(gen: Generation) -> str:
    """A native step as the result file holds it: the tool calls as a Python call list, else the
    content after any reasoning (`runner.native_result`'s rule; multi-turn names hold no dots)."""
    if not gen.tool_calls:
        return split_think(gen.text)[1]
    return format_python_calls(list(gen.tool_calls))


def openai_messages(ex: Example) -> list[dict[str, Any]]:
    """Native mode's request messages: assistant calls as OpenAI `tool_calls` (arguments as JSON
    text), results as `tool` messages with the id they answer; reasoning never sent back."""
    out: list[dict[str, Any]] = []
    for m in ex.messages:
        if m.role == "assistant" and m.tool_calls:
            out.append({"role": "assistant", "content": m.content or None,
                        "tool_calls": [{"id": c.id, "type": "function",
                                        "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)}}
                                       for c in m.tool_calls]})
        elif m.role == "tool":
            out.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def openai_tools(tools: Iterable[Tool]) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": t.name, "description": t.description, "parameters": json_schema(t.parameters)}}
            for t in tools]


# --- driving many conversations -----------------------------------------------------------------


Ask = Callable[[Conversation], "concurrent.futures.Future[Generation]"]


def local_ask(engine: Any, params: SamplingParams) -> Ask:
    """Prompting mode on a local engine: the history rendered with the model's chat template."""
    def ask(c: Conversation) -> concurrent.futures.Future:
        return engine.submit(render_prompt(c.example(), engine.tokenizer), params)

    return ask


def endpoint_ask(http: Any, params: SamplingParams, mode: str) -> Ask:
    """An endpoint (`llm.http.BlockingHTTP`): prompting sends FunReason's rendered messages (BFCL's
    system prompt with the functions), native the OpenAI messages and the tools on offer now."""
    def ask(c: Conversation) -> concurrent.futures.Future:
        ex = c.example()
        if mode == "prompting":
            return http.chat_future(prompt_messages(ex), params)
        return http.chat_future(openai_messages(ex), params, openai_tools(ex.tools))

    return ask


def converse(conversations: list[Conversation], ask: Ask, finish: Callable[[Conversation], None]) -> None:
    """Run every conversation to its end. Each one's next step is asked as soon as its last answer
    came, so every entry's current step is queued together (a local engine's worker batches them
    across entries); `finish` gets each conversation as it ends. A failed request cancels the
    ones not yet answered and raises (the entries finished so far are written already)."""
    pending = {ask(c): c for c in conversations if not c.finished}
    for c in conversations:
        if c.finished:
            finish(c)
    try:
        while pending:
            done, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for f in done:
                c = pending.pop(f)
                c.answer(f.result())
                if c.finished:
                    finish(c)
                else:
                    pending[ask(c)] = c
    finally:
        for f in pending:
            f.cancel()


def generate_multi_turn(data: dict[str, list[Entry]], ask: Ask, mode: str, out: Path,
                        on_done: Callable[[int], None] | None = None) -> dict[str, dict[str, Any]]:
    """Every category's unfinished entries conversed (all at once, across categories), each written
    as it finishes (its conversation log line, then its result line); id → result per category."""
    with _Logs(out, list(data)) as logs:
        todo = [Conversation(e, mode) for c, entries in data.items() for e in entries if e.id not in logs.done[c]]

        def finish(conv: Conversation) -> None:
            logs.write(conv)
            if on_done:
                on_done(1)

        converse(todo, ask, finish)
        return logs.done


class _Logs:
    """The result and conversation-log files of each category, opened for appending."""

    def __init__(self, out: Path, categories: list[str]):
        self.results = {c: AppendLog(result_path(out, c)) for c in categories}
        self.conversations = {c: AppendLog(conversation_log_path(out, c)) for c in categories}
        self.done = {c: {r["id"]: r["result"] for r in log.rows if isinstance(r, dict) and "id" in r and "result" in r}
                     for c, log in self.results.items()}

    def write(self, conv: Conversation) -> None:
        from funreason.formats.bfcl import category_of

        c = category_of(conv.entry.id)
        self.conversations[c].append(conv.record())
        self.results[c].append({"id": conv.entry.id, "result": conv.result})
        self.done[c][conv.entry.id] = conv.result

    def __enter__(self) -> "_Logs":
        return self

    def __exit__(self, *exc: Any) -> None:
        for log in (*self.results.values(), *self.conversations.values()):
            log.close()


def score_multi_turn(entries: list[Entry], results: dict[str, Any]) -> dict[str, Any]:
    """A category's answered entries judged as BFCL's multi-turn checker judges them (`multi_turn.score_entry`)."""
    verdicts = [score_entry(e.row, e.ground_truth, results[e.id]).to_dict() for e in entries if e.id in results]
    correct = sum(v["valid"] for v in verdicts)
    return {"total": len(verdicts), "correct": correct, "accuracy": correct / len(verdicts) if verdicts else 0.0, "entries": verdicts}


def is_multi_turn(category: str) -> bool:
    return category in MULTI_TURN
