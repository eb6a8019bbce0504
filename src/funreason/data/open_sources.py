"""Readers for the open function-calling sources (the copy carried in `data/open/`, `funreason.data.open_dir()`), into FunReason's record.

Each source ships its own layout, so each has one reader that takes the source's folder and yields,
per unit of the source (row, dialogue turn, test query), either an `Example` or a `Skip` with a
machine-readable kind and a sentence. Nothing is dropped silently: `read_source` counts both, by
kind, in a `SourceReport`.

| source | what becomes a record |
|---|---|
| seal-tools | each query with the tools it calls (definitions from tool.jsonl) plus 3 tools of the same domain as distractors; nested rows (an argument is another call's output) are skipped |
| toolrl | each row of rlla_sft.json: the tools from the instruction, the dialogue (user / assistant / tool turns), the reasoning, and the calls or the response |
| glaive | each `function_call` turn of a glaive-function-calling-v2 dialogue (the calls), and each reply that follows a user turn (a statement: asking for a missing value, or declining what no tool does) |
| ste | each test query, with the one API it needs (definition from API_descriptions.json) |
| glaive-dialogues | each glaive-function-calling-v2 dialogue whole, one record: `function_call` → an assistant turn with the call, `observation` → a tool turn, `gpt` → an assistant turn with text |
| tooltalk | each ToolTalk conversation whole: the user's facts (location, time, username, session token) as the system turn, each API call an assistant turn followed by its result or exception, then the turn's text; the tools are every API of the suites it uses, parameters inferred from the calls (ToolTalk's definitions live in its code, not carried) |
| api-bank | each API-Bank level-1/2 dialogue whole: `API` → an assistant turn with the call and a tool turn with its output; tools as ToolSearcher returns them in the dialogues, else from all_apis.csv; the level-3 scenes (no dialogue) are reported |
| callnavi | each question with the APIs its gold answer calls (JSON-schema definitions from APISchema/) plus 3 APIs of the same domain as distractors; a gold answer with a masked value (`$$$`: another call's output, or left open) or with a value the question does not say (CallNavi's gold fills some parameters with made-up ids and methods) is skipped |

A whole-conversation record (`meta.conversation: whole`) holds the turns before its last assistant
turn, and that turn as the answer, so training learns every assistant turn (`chat.assistant_turns`);
turns after the last assistant turn (a closing "Thanks!") are cut and counted in
`meta.cut_after_last_answer`.

Tool names that are not Python identifiers (`Search Managers`, `Global Email V4%%Global Email V4`)
are rewritten with `_` for the non-identifier characters, in the tools and the calls alike, because
FunReason's answer format is a Python call list; the original name is kept in `meta.renamed`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from funreason.errors import SchemaError
from funreason.schema import Call, Example, Message, Tool

DEFAULT_SOURCES = ("seal-tools", "toolrl", "glaive", "ste")  # the documented mix; callnavi is asked for by name
_TYPES = {"str": "string", "string": "string", "int": "integer", "integer": "integer", "float": "number",
          "number": "number", "bool": "boolean", "boolean": "boolean", "list": "array", "array": "array",
          "dict": "object", "object": "object"}
_NOT_IDENT = re.compile(r"[^0-9A-Za-z_.]+")


@dataclass(frozen=True)
class Skip:
    """A unit of a source that did not become a record: `kind` for counting, `reason` for people."""

    where: str
    kind: str
    reason: str


@dataclass
class SourceReport:
    """What one reader made of its source."""

    source: str
    examples: int = 0
    skipped: Counter = field(default_factory=Counter)  # kind -> count
    first_skips: list[Skip] = field(default_factory=list)

    @property
    def units(self) -> int:
        return self.examples + sum(self.skipped.values())

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "units": self.units, "examples": self.examples, "skipped": dict(self.skipped),
                "first_skips": [f"{s.where}: {s.reason}" for s in self.first_skips]}



def read_source(source: str, root: Path) -> tuple[list[Example], SourceReport]:
    """All records of one source (its folder under fc-open), with the count of what was skipped and why."""
    if source not in READERS:
        raise ValueError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    report, examples = SourceReport(source), []
    for item in READERS[source](Path(root)):
        if isinstance(item, Skip):
            report.skipped[item.kind] += 1
            if len(report.first_skips) < 5:
                report.first_skips.append(item)
            continue
        item.meta["source"] = source
        examples.append(item)
        report.examples += 1
    return examples, report


def source_folder(fc_open: Path, source: str) -> Path:
    """The folder of `source` inside an fc-open tree."""
    return Path(fc_open) / {"glaive": "llamafactory-glaive-demo", "glaive-dialogues": "llamafactory-glaive-demo"}.get(source, source)


# --- shared helpers -------------------------------------------------------------------------------


def python_name(name: str) -> str:
    """`name` as a Python-call name: non-identifier characters become `_` (dots kept for `pkg.f`)."""
    out = _NOT_IDENT.sub("_", name.strip()).strip("_") or "f"
    return f"f_{out}" if out[0].isdigit() else out


def _schema(properties: dict[str, dict], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": [r for r in required if r in properties]}


def _prop(type_name: Any, description: Any = "", default: Any = None) -> dict[str, Any]:
    base = str(type_name or "string").split(",")[0].strip().lower()
    prop: dict[str, Any] = {"type": _TYPES.get(base, "string"), "description": str(description or "")}
    if default not in (None, ""):
        prop["default"] = default
    return prop


def _example(where: str, ex_id: str, tools: list[Tool], messages: list[Message], answer: list[Call] | str,
             reasoning: str | None = None, meta: dict | None = None) -> Example | Skip:
    """A validated record with tool names made Python-callable, or a Skip saying why not."""
    renamed = {t.name: python_name(t.name) for t in tools if python_name(t.name) != t.name}
    if renamed:
        tools = [Tool(renamed.get(t.name, t.name), t.description, t.parameters) for t in tools]
        if isinstance(answer, list):
            answer = [Call(renamed.get(c.name, c.name), c.arguments) for c in answer]
        messages = [Message(m.role, m.content, [Call(renamed.get(c.name, c.name), c.arguments) for c in m.tool_calls],
                            m.tool_call_id, m.name, m.reasoning) if m.tool_calls else m for m in messages]
    try:
        return Example(id=ex_id, tools=tools, messages=messages, reasoning=reasoning, answer=answer,
                       meta={**(meta or {}), **({"renamed": renamed} if renamed else {})}).validate()
    except SchemaError as e:
        return Skip(where, "invalid", str(e))


def _pick(pool: list[str], k: int, key: str, exclude: set[str]) -> list[str]:
    """`k` items of `pool` chosen by a stable hash of `key` (the same on every machine and run)."""
    ranked = sorted((p for p in pool if p not in exclude), key=lambda p: hashlib.sha1(f"{key}/{p}".encode()).hexdigest())
    return ranked[:k]


def _with_distractors(called: list[str], pool: list[str], pick_key: str, order_key: str) -> list[str]:
    """The tools `called` (each once) and 3 others of `pool` picked by `pick_key`, in an order fixed by a
    stable hash of `order_key`, so the called ones are not always first."""
    offered = list(dict.fromkeys(called))
    offered += _pick(pool, 3, pick_key, set(offered))
    return sorted(offered, key=lambda n: hashlib.sha1(f"{order_key}:{n}".encode()).hexdigest())


# --- Seal-Tools -----------------------------------------------------------------------------------


def read_seal_tools(root: Path) -> Iterator[Example | Skip]:
    base = root / "Seal-Tools_Dataset"
    tools: dict[str, Tool] = {}
    field_of: dict[str, str] = {}
    for line in (base / "tool.jsonl").read_text(encoding="utf-8").splitlines():
        t = json.loads(line)
        props = {p: _prop(s.get("type"), s.get("description")) for p, s in (t.get("parameters") or {}).items()}
        tools[t["api_name"]] = Tool(t["api_name"], t.get("api_description", ""), _schema(props, t.get("required") or []))
        field_of[t["api_name"]] = (t.get("field") or "").split("/")[0]  # the domain: sub-fields hold 1–12 tools
    by_field: dict[str, list[str]] = {}
    for name, f in field_of.items():
        by_field.setdefault(f, []).append(name)
    for split in ("dev", "test_in_domain", "test_out_domain"):
        for n, line in enumerate((base / f"{split}.jsonl").read_text(encoding="utf-8").splitlines(), 1):
            where = f"seal-tools/{split}.jsonl:{n}"
            row = json.loads(line)
            calling = row.get("calling") or []
            names = [c.get("api") for c in calling]
            if not calling:
                yield Skip(where, "no_call", "the row calls no API")
                continue
            if any(name not in tools for name in names):
                yield Skip(where, "unknown_tool", f"calls {sorted(set(names) - set(tools))}, not defined in tool.jsonl")
                continue
            args = [c.get("parameters") or {} for c in calling]
            if "API_call_" in json.dumps(args):
                yield Skip(where, "nested", "an argument is another call's output (API_call_N): not a flat call list")
                continue
            offered = _with_distractors(names, by_field.get(field_of[names[0]], []), row["id"], row["id"])
            yield _example(where, f"seal-{row['id']}", [tools[n] for n in offered], [Message("user", row["query"])],
                           [Call(c["api"], a) for c, a in zip(calling, args)])


# --- ToolRL (rlla_sft.json) -----------------------------------------------------------------------

_TOOL_ENTRY = re.compile(r"^\d+\. Name: (.+?)\nDescription: (.*?)\nParameters: (.*?)$", re.M | re.S)
_TURN = re.compile(r"<(user|think|tool_call|obs|response)>(.*?)</\1>", re.S)


def _toolrl_tools(instruction: str) -> list[Tool]:
    block = instruction.split("**Available Tools**", 1)[-1].split("**Steps for Each Turn**", 1)[0]
    tools = []
    for name, desc, params in _TOOL_ENTRY.findall(block):
        spec = json.loads(params.strip())
        props = {p: _prop(s.get("type"), s.get("description"), s.get("default")) for p, s in spec.items()}
        required = [p for p, s in spec.items() if s.get("default") in (None, "") and "optional" not in str(s.get("type"))]
        tools.append(Tool(name.strip(), desc.strip(), _schema(props, required)))
    return tools


def _toolrl_calls(text: str) -> list[Call]:
    calls = []
    for line in text.strip().splitlines():
        if line.strip():
            d = json.loads(line)
            calls.append(Call(d["name"], d.get("parameters") or d.get("arguments") or {}))
    return calls


def read_toolrl(root: Path) -> Iterator[Example | Skip]:
    rows = json.loads((root / "dataset" / "rlla_4k_raw" / "rlla_sft.json").read_text(encoding="utf-8"))
    for i, row in enumerate(rows):
        where = f"toolrl/rlla_sft.json[{i}]"
        try:
            tools = _toolrl_tools(row["instruction"])
            messages: list[Message] = []
            for tag, body in _TURN.findall(row["input"]):
                body = body.strip()
                if tag == "user":
                    messages.append(Message("user", body))
                elif tag == "response":
                    messages.append(Message("assistant", body))
                elif tag == "tool_call":
                    messages.append(Message("assistant", "", tool_calls=_toolrl_calls(body)))
                elif tag == "obs":
                    messages.append(Message("tool", body))
            out = {tag: body.strip() for tag, body in _TURN.findall(row["output"])}
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            yield Skip(where, "unreadable", f"{type(e).__name__}: {e}")
            continue
        if "tool_call" in out:
            try:
                answer: list[Call] | str = _toolrl_calls(out["tool_call"])
            except (ValueError, KeyError, TypeError) as e:
                yield Skip(where, "unreadable", f"tool_call is not JSON lines: {e}")
                continue
            meta = {"dropped_response": out["response"]} if "response" in out else {}
        elif "response" in out:
            answer, meta = out["response"], {}
        else:
            yield Skip(where, "no_answer", "the output has neither <tool_call> nor <response>")
            continue
        yield _example(where, f"toolrl-{i}", tools, messages, answer, out.get("think"), meta)


# --- glaive-function-calling-v2 (LLaMA-Factory's demo) -------------------------------------------


def glaive_dialogues(root: Path, source: str) -> Iterator[tuple[int, str, dict[str, Any], list[Tool]] | Skip]:
    """The glaive dialogues with the tools each offers, as (index, where, row, tools); a dialogue whose
    tools cannot be read, or that offers none, is a `Skip` (both glaive readers start here)."""
    rows = json.loads((root / "data" / "glaive_toolcall_en_demo.json").read_text(encoding="utf-8"))
    for i, row in enumerate(rows):
        where = f"{source}/glaive_toolcall_en_demo.json[{i}]"
        try:
            tools = [Tool.from_dict(t) for t in json.loads(row.get("tools") or "[]")]
        except (ValueError, SchemaError) as e:
            yield Skip(where, "unreadable", f"tools: {e}")
            continue
        if not tools:
            yield Skip(where, "no_tools", "the dialogue offers no tools")
            continue
        yield i, where, row, tools


def read_glaive(root: Path) -> Iterator[Example | Skip]:
    for item in glaive_dialogues(root, "glaive"):
        if isinstance(item, Skip):
            yield item
            continue
        i, where, row, tools = item
        history: list[Message] = []
        made = 0
        for t, turn in enumerate(row.get("conversations") or []):
            role, value = turn.get("from"), turn.get("value") or ""
            if role == "human":
                history.append(Message("user", value))
            elif role == "function_call":
                try:
                    d = json.loads(value)
                    call = Call(d["name"], d.get("arguments") or {})
                except (ValueError, KeyError, TypeError) as e:
                    yield Skip(f"{where}.{t}", "unreadable", f"function_call is not a JSON call: {e}")
                    break
                yield _example(f"{where}.{t}", f"glaive-{i}-{t}", tools, list(history), [call])
                made += 1
                history.append(Message("assistant", "", tool_calls=[call]))
            elif role == "observation":
                history.append(Message("tool", value))
            elif role == "gpt":
                if history and history[-1].role == "user":  # a reply to the user, not a summary of a result
                    yield _example(f"{where}.{t}", f"glaive-{i}-{t}", tools, list(history), value)
                    made += 1
                history.append(Message("assistant", value))
        if not made:
            yield Skip(where, "no_target", "no function_call turn and no reply that follows a user turn")


# --- whole conversations (glaive dialogues, ToolTalk, API-Bank) -----------------------------------


def _conversation(where: str, ex_id: str, tools: list[Tool], messages: list[Message], meta: dict | None = None) -> Example | Skip:
    """A whole conversation as one record: the turns before its last assistant turn, and that turn as
    the answer (its reasoning, its calls or its text), so `chat.assistant_turns` learns every
    assistant turn of it. Turns after the last assistant turn (a user turn left unanswered) have no
    answer to learn: they are cut and counted in `meta.cut_after_last_answer`. Every call of every
    turn must name a tool on offer; a turn with both text and calls is refused (it has no one form
    to learn)."""
    last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=None)
    if last is None:
        return Skip(where, "no_assistant_turn", "the conversation has no assistant turn to learn")
    offered = {t.name for t in tools}
    assistant = [m for m in messages[: last + 1] if m.role == "assistant"]
    for k, m in enumerate(assistant, 1):
        if unknown := sorted({c.name for c in m.tool_calls or []} - offered):
            return Skip(where, "unknown_tool", f"assistant turn {k} calls {unknown}, not among the tools on offer")
        if m.tool_calls and m.content.strip():
            return Skip(where, "text_and_calls", f"assistant turn {k} has both text and calls")
        if not m.tool_calls and not m.content.strip():
            return Skip(where, "empty_turn", f"assistant turn {k} has neither text nor calls")
    final = messages[last]
    answer: list[Call] | str = list(final.tool_calls) if final.tool_calls else final.content
    extra = {"conversation": "whole", "assistant_turns": len(assistant)}
    if cut := len(messages) - last - 1:
        extra["cut_after_last_answer"] = cut
    return _example(where, ex_id, tools, messages[:last], answer, final.reasoning, {**(meta or {}), **extra})


def _result_text(value: Any) -> str:
    """A tool's result as the tool turn shows it: text as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def read_glaive_dialogues(root: Path) -> Iterator[Example | Skip]:
    """Each glaive dialogue whole: `human` → user, `function_call` → an assistant turn with the call,
    `observation` → a tool turn, `gpt` → an assistant turn with text (the default `glaive` source
    cuts the same dialogues into one record per call or reply instead)."""
    for item in glaive_dialogues(root, "glaive-dialogues"):
        if isinstance(item, Skip):
            yield item
            continue
        i, where, row, tools = item
        messages: list[Message] = []
        problem = None
        for t, turn in enumerate(row.get("conversations") or []):
            role, value = turn.get("from"), turn.get("value") or ""
            if role == "human":
                messages.append(Message("user", value))
            elif role == "gpt":
                messages.append(Message("assistant", value))
            elif role == "observation":
                messages.append(Message("tool", value))
            elif role == "function_call":
                try:
                    d = json.loads(value)
                    messages.append(Message("assistant", "", tool_calls=[Call(d["name"], d.get("arguments") or {})]))
                except (ValueError, KeyError, TypeError, AttributeError) as e:
                    problem = Skip(f"{where}.{t}", "unreadable", f"function_call is not a JSON call: {e}")
                    break
            else:
                problem = Skip(f"{where}.{t}", "unreadable", f"unknown turn kind {role!r}")
                break
        yield problem or _conversation(where, f"glaive-dialogue-{i}", tools, messages)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}.get(type(value), "string")


def _tooltalk_files(root: Path) -> list[Path]:
    return sorted((root / "data" / "easy").glob("*.json")) + sorted((root / "data" / "tooltalk").glob("*.json"))


def tooltalk_tools(files: list[Path]) -> tuple[dict[str, Tool], dict[str, str]]:
    """ToolTalk's APIs as the conversations call them, and the suite (plugin) of each. ToolTalk
    defines its APIs in its Python package, which is not carried: each API's parameters are the
    ones its calls pass anywhere in the data, typed by their values (`number` when integers and
    floats meet), required when every call passes them; no descriptions. An API's suite is the one
    every conversation calling it uses."""
    seen: dict[str, dict[str, set[str]]] = {}
    calls: Counter = Counter()
    passed: dict[str, Counter] = {}
    suites: dict[str, set[str]] = {}
    for path in files:
        conv = json.loads(path.read_text(encoding="utf-8"))
        for turn in conv.get("conversation") or []:
            for api in turn.get("apis") or []:
                req = api.get("request") or {}
                name, params = req.get("api_name"), req.get("parameters") or {}
                if not isinstance(name, str) or not isinstance(params, dict):
                    continue
                calls[name] += 1
                passed.setdefault(name, Counter()).update(list(params))
                for k, v in params.items():
                    seen.setdefault(name, {}).setdefault(k, set()).add(_json_type(v))
                used = set(conv.get("suites_used") or [])
                suites[name] = suites[name] & used if name in suites else used
    tools = {}
    for name in sorted(calls):
        props = {}
        for k, types in (seen.get(name) or {}).items():
            kind = "number" if types == {"integer", "number"} else types.pop() if len(types) == 1 else "string"
            props[k] = {"type": kind, "description": ""}
        tools[name] = Tool(name, "", _schema(props, [k for k in props if passed[name][k] == calls[name]]))
    return tools, {name: min(s) for name, s in suites.items() if len(s) == 1}


def read_tooltalk(root: Path) -> Iterator[Example | Skip]:
    """Each ToolTalk conversation (28 easy, 50 hard) whole. The system turn gives the conversation's
    metadata (location, time, username, session token: what ToolTalk's assistant is told); the tools
    on offer are every API of the suites it uses (`tooltalk_tools`). An assistant turn that calls
    APIs becomes one assistant turn per call, each followed by its result (or the exception it
    raised) as a tool turn, then its text: ToolTalk's calls within a turn run one after another, a
    later one using an earlier one's result."""
    files = _tooltalk_files(root)
    tools, suite_of = tooltalk_tools(files)
    for path in files:
        where = f"tooltalk/{path.parent.name}/{path.name}"
        try:
            conv = json.loads(path.read_text(encoding="utf-8"))
            turns = conv["conversation"]
            used = set(conv.get("suites_used") or [])
        except (ValueError, KeyError, TypeError) as e:
            yield Skip(where, "unreadable", f"{type(e).__name__}: {e}")
            continue
        facts = {"location": "Location", "timestamp": "Current time", "username": "Username", "session_token": "Session token"}
        meta = conv.get("metadata") or {}
        system = "\n".join(f"{label}: {meta[k]}" for k, label in facts.items() if meta.get(k))
        messages = [Message("system", system)] if system else []
        for turn in turns:
            if turn.get("role") == "user":
                messages.append(Message("user", turn.get("text") or ""))
                continue
            for api in turn.get("apis") or []:
                req = api.get("request") or {}
                messages.append(Message("assistant", "", tool_calls=[Call(req.get("api_name") or "", req.get("parameters") or {})]))
                result = {"error": api["exception"]} if api.get("exception") else api.get("response")
                messages.append(Message("tool", _result_text(result)))
            if (turn.get("text") or "").strip():
                messages.append(Message("assistant", turn["text"]))
        called = {c.name for m in messages for c in m.tool_calls or []}
        offered = sorted({n for n, s in suite_of.items() if s in used} | (called & set(tools)))
        yield _conversation(where, f"tooltalk-{path.stem}", [tools[n] for n in offered], messages,
                            {"split": path.parent.name, "suites": sorted(used)})


# API-Bank level-2 dialogues call ToolSearcher, which all_apis.csv does not define; its one parameter
# is as every call in the dialogues passes it
TOOL_SEARCHER = Tool("ToolSearcher", "Searches the API library for the APIs that match the keywords, and returns their "
                     "names, descriptions and parameters.",
                     _schema({"keywords": {"type": "string", "description": "Keywords of the API wanted."}}, ["keywords"]))


def _api_bank_props(params: dict[str, Any]) -> dict[str, Any]:
    """API-Bank's input parameters (`{name: {"type": "str(…)", "description": …}}`) as JSON-schema properties."""
    return {p: _prop(str(spec.get("type", "str")).split("(")[0], spec.get("description")) for p, spec in params.items()}


def api_bank_tools(csv_path: Path) -> tuple[dict[str, Tool], list[Skip]]:
    """API-Bank's API list (all_apis.csv): each row's `api_info` holds the API's description and
    input parameters as Python literals, read with `ast.literal_eval` (literals only, nothing run)."""
    import ast
    import csv

    tools: dict[str, Tool] = {}
    skips: list[Skip] = []
    with csv_path.open(encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.DictReader(f), 2):
            name = row.get("类名") or ""
            try:
                info = {a.targets[0].id: ast.literal_eval(a.value) for a in ast.parse(row.get("api_info") or "").body
                        if isinstance(a, ast.Assign) and isinstance(a.targets[0], ast.Name)}
                params = info["input_parameters"]
                if params == {None}:  # how the list writes an API that takes no parameters
                    params = {}
                props = _api_bank_props(params)
            except (SyntaxError, ValueError, KeyError, TypeError, AttributeError) as e:
                skips.append(Skip(f"api-bank/all_apis.csv:{n} ({name})", "unreadable_api", f"api_info is not readable: {type(e).__name__}: {e}"))
                continue
            tools[name] = Tool(name, str(info.get("description") or ""), _schema(props, list(props)))
    return tools, skips


def api_bank_searched(paths: list[Path]) -> dict[str, Tool]:
    """The API definitions that ToolSearcher returns in the dialogues: the APIs as the dialogues were
    written against (all_apis.csv is an older list: its AddMeeting, for one, takes no token)."""
    found: dict[str, Tool] = {}
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            turn = json.loads(line) if line.strip().startswith("{") and '"ToolSearcher"' in line else None
            if not turn or turn.get("api_name") != "ToolSearcher":
                continue
            out = (turn.get("result") or {}).get("output")
            for d in out if isinstance(out, list) else [out]:
                if isinstance(d, dict) and isinstance(d.get("name"), str) and isinstance(d.get("input_parameters"), dict):
                    props = _api_bank_props({p: spec for p, spec in d["input_parameters"].items() if isinstance(spec, dict)})
                    found[d["name"]] = Tool(d["name"], str(d.get("description") or ""), _schema(props, list(props)))
    return found


def _api_bank_dialogue(path: Path, where: str) -> list[Message] | Skip:
    """One API-Bank dialogue file as messages, or a Skip naming the line it could not read."""
    messages: list[Message] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            turn = json.loads(line)
            role = turn["role"]
            if role == "User":
                messages.append(Message("user", turn["text"]))
            elif role == "AI":
                messages.append(Message("assistant", turn["text"]))
            elif role == "API":
                result = turn.get("result") or {}
                messages.append(Message("assistant", "", tool_calls=[Call(turn["api_name"], turn.get("param_dict") or {})]))
                messages.append(Message("tool", _result_text({"error": result["exception"]} if result.get("exception") else result.get("output"))))
            else:
                raise ValueError(f"unknown role {role!r}")
        except (ValueError, KeyError, TypeError) as e:
            return Skip(f"{where}:{n}", "unreadable", f"{type(e).__name__}: {e}")
    return messages or Skip(where, "empty", "the file holds no turn")


def read_api_bank(root: Path) -> Iterator[Example | Skip]:
    """Each API-Bank level-1/2 dialogue whole: `User` → user, `AI` → assistant text, `API` → an
    assistant turn with the call, then its output (or exception) as a tool turn. The tools on offer
    are the APIs the dialogue calls, defined as ToolSearcher returns them in the level-2 dialogues
    (`api_bank_searched`), else by all_apis.csv, each parameter required when every call of the
    API in the dialogues passes it (neither marks one optional); ToolSearcher itself is offered in
    the dialogues that call it. The level-3 samples are scenes (a plan and its gold calls,
    no dialogue): each is reported, none read."""
    base = root / "api-bank"
    tools, bad = api_bank_tools(base / "data" / "all_apis.csv")
    unreadable = {s.where.split("(")[-1].rstrip(")"): s for s in bad}
    tools[TOOL_SEARCHER.name] = TOOL_SEARCHER
    paths = sorted((base / "lv1-lv2-samples").glob("*/*.jsonl"))
    tools.update(api_bank_searched(paths))
    dialogues = [(path, _api_bank_dialogue(path, f"api-bank/{path.parent.name}/{path.name}")) for path in paths]
    # the list marks no parameter optional: a parameter is required when every call of its API passes it
    calls = [c for _, d in dialogues if isinstance(d, list) for m in d for c in m.tool_calls or []]
    for name, tool in list(tools.items()):
        mine = [c for c in calls if c.name == name]
        if mine:
            required = [p for p in tool.properties if all(p in c.arguments for c in mine)]
            tools[name] = Tool(name, tool.description, _schema(tool.properties, required))
    for path, messages in dialogues:
        where = f"api-bank/{path.parent.name}/{path.name}"
        if isinstance(messages, Skip):
            yield messages
            continue
        called = list(dict.fromkeys(c.name for m in messages for c in m.tool_calls or []))
        if not called:
            yield Skip(where, "no_call", "the dialogue calls no API, so it has no tool to offer")
            continue
        if broken := [unreadable[c] for c in called if c in unreadable]:
            yield Skip(where, "unreadable_api", broken[0].reason)
            continue
        if missing := [c for c in called if c not in tools]:
            yield Skip(where, "unknown_tool", f"calls {missing}, not defined in all_apis.csv")
            continue
        yield _conversation(where, f"api-bank-{path.stem}", [tools[c] for c in called], messages, {"setting": path.parent.name})
    for path in sorted((base / "lv3-samples").iterdir()):
        yield Skip(f"api-bank/lv3-samples/{path.name}", "no_dialogue", "a level-3 scene (a plan and its gold calls), not a dialogue")


# --- STE (simulated trial and error) test queries -------------------------------------------------

_ARGS_SCHEMA = re.compile(r'"(\w+)"\s*:\s*(\w+)')


def _ste_tool(name: str, spec_text: str) -> Tool:
    try:
        spec = json.loads(spec_text)
    except ValueError:
        spec = None
    if isinstance(spec, dict):  # RapidAPI: required / optional parameter lists
        props, required = {}, []
        for group in ("required_parameters", "optional_parameters"):
            for p in spec.get(group) or []:
                props[p["name"]] = _prop(p.get("type"), p.get("description"), p.get("default"))
                if group == "required_parameters":
                    required.append(p["name"])
        desc = spec.get("description") or spec.get("parent_tool_description") or ""
        return Tool(name, desc, _schema(props, required))
    # BMTools: the argument types are written into the description
    desc, _, schema = spec_text.partition("Your input should be a json (args json schema):")
    props = {p: _prop(t) for p, t in _ARGS_SCHEMA.findall(schema.split("}}")[0])}
    return Tool(name, desc.strip().rstrip("."), _schema(props, list(props)))


def read_ste(root: Path) -> Iterator[Example | Skip]:
    specs = json.loads((root / "STE" / "tool_metadata" / "API_descriptions.json").read_text(encoding="utf-8"))
    tests = json.loads((root / "llama-recipes" / "ft_datasets" / "tool_test.json").read_text(encoding="utf-8"))
    for api, queries in tests.items():
        for j, q in enumerate(queries):
            where = f"ste/tool_test.json[{api!r}][{j}]"
            if api not in specs:
                yield Skip(where, "unknown_tool", f"{api!r} has no entry in API_descriptions.json")
                continue
            try:
                args = json.loads(q.get("action_input") or "{}")
            except ValueError as e:
                yield Skip(where, "unreadable", f"action_input is not JSON: {e}")
                continue
            if not isinstance(args, dict):
                yield Skip(where, "unreadable", "action_input is not a JSON object")
                continue
            yield _example(where, f"ste-{python_name(api)}-{j}", [_ste_tool(api, specs[api])],
                           [Message("user", q["query"])], [Call(q.get("action") or api, args)])


# --- CallNavi questions ---------------------------------------------------------------------------

_DIGIT_GROUP = re.compile(r"(?<=\d),(?=\d{3}\b)")


def _leaves(value: Any) -> Iterator[Any]:
    """The scalar values inside an argument value (lists and objects walked)."""
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def _unsaid(arguments: list[dict[str, Any]], question: str) -> list[str]:
    """The argument values (strings and numbers) that `question` does not contain, case folded and
    with digit groups joined ("10,000" says 10000). Booleans are left out: a question says them in words."""
    text = _DIGIT_GROUP.sub("", question).lower()
    return [repr(v) for args in arguments for v in _leaves(args)
            if v is not None and not isinstance(v, bool) and str(v).lower() not in text]


def read_callnavi(root: Path) -> Iterator[Example | Skip]:
    base = root / "Dataset"
    for qfile in sorted((base / "Questions").glob("*.json")):
        domain = qfile.stem
        tools: dict[str, Tool] = {}
        for t in json.loads((base / "APISchema" / qfile.name).read_text(encoding="utf-8")):
            params = {k: v for k, v in (t.get("parameters") or {}).items() if k != "$schema"}
            tools[t["name"]] = Tool(t["name"], t.get("description", ""), params or {"type": "object", "properties": {}})
        for i, row in enumerate(json.loads(qfile.read_text(encoding="utf-8"))):
            where = f"callnavi/Questions/{qfile.name}[{i}] ({row.get('id')})"
            gold = row.get("ground_truth") or {}
            names, arguments = gold.get("API") or [], gold.get("parameters") or []
            turns = row.get("question") or []
            if not names:
                yield Skip(where, "no_call", "the gold answer calls no API")
                continue
            if len(names) != len(arguments):
                yield Skip(where, "unreadable", f"the gold answer names {len(names)} APIs but gives {len(arguments)} argument sets")
                continue
            if any(n not in tools for n in names):
                yield Skip(where, "unknown_tool", f"calls {sorted(set(names) - set(tools))}, not defined in APISchema/{qfile.name}")
                continue
            if "$$" in json.dumps(arguments):
                yield Skip(where, "masked", "a gold value is masked ($$$): another call's output or left open, not a flat call list")
                continue
            question = " ".join(str(m.get("content") or "") for m in turns if m.get("role") == "user")
            if unsaid := _unsaid(arguments, question):
                yield Skip(where, "unsaid", f"gold values the question does not say: {', '.join(unsaid[:3])}")
                continue
            try:
                messages = [Message.from_dict(m) for m in turns]
            except SchemaError as e:
                yield Skip(where, "unreadable", f"question: {e}")
                continue
            offered = _with_distractors(names, list(tools), f"{domain}/{row.get('id')}", str(row.get("id")))
            yield _example(where, f"callnavi-{row.get('id') or f'{domain}-{i}'}", [tools[n] for n in offered], messages,
                           [Call(n, a) for n, a in zip(names, arguments)], meta={"domain": domain})


READERS: dict[str, Callable[[Path], Iterator[Example | Skip]]] = {
    "seal-tools": read_seal_tools, "toolrl": read_toolrl, "glaive": read_glaive, "ste": read_ste, "callnavi": read_callnavi,
    "glaive-dialogues": read_glaive_dialogues, "tooltalk": read_tooltalk, "api-bank": read_api_bank}
SOURCES = tuple(READERS)  # every source a reader reads, in this order
# the sources whose records are whole conversations (`data mix --multi-turn` adds them)
MULTI_TURN_SOURCES = ("glaive-dialogues", "tooltalk", "api-bank")
