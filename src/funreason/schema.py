"""The one in-memory record every part of FunReason reads and writes.

An `Example` is a function-calling conversation: the `tools` on offer, the `messages` so far
(system / user / assistant / tool turns), optional `reasoning` (the think segment, without tags)
and the reference `answer`: a list of `Call`s, or a plain-text statement when the right reply is
not a call. BFCL rows also keep `possible_answer`, BFCL's ground truth with several acceptable
values per parameter. Its JSON form (`to_dict` / `from_dict`) is FunReason's native JSONL line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from funreason.errors import SchemaError

ROLES = ("system", "user", "assistant", "tool")

# Sources whose rows are held-out benchmarks: never training data.
HELDOUT_SOURCES = frozenset({"bfcl"})


@dataclass
class Tool:
    """A function on offer. `parameters` is a JSON-Schema style object schema."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})

    @property
    def properties(self) -> dict[str, Any]:
        props = self.parameters.get("properties")
        return props if isinstance(props, dict) else {}

    @property
    def required(self) -> list[str]:
        req = self.parameters.get("required")
        return list(req) if isinstance(req, list) else []

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    @classmethod
    def from_dict(cls, d: Any) -> "Tool":
        if isinstance(d, dict) and d.get("type") == "function" and isinstance(d.get("function"), dict):
            d = d["function"]  # OpenAI's {"type": "function", "function": {...}} wrapper
        if not isinstance(d, dict):
            raise SchemaError(f"a tool must be an object, got {type(d).__name__}")
        name = d.get("name")
        if not isinstance(name, str) or not name:
            raise SchemaError(f"a tool has no name: {str(d)[:80]}")
        params = d.get("parameters", {"type": "object", "properties": {}})
        if params is None:
            params = {"type": "object", "properties": {}}
        if not isinstance(params, dict):
            raise SchemaError(f"tool {name!r}: parameters must be an object")
        desc = d.get("description") or ""
        if not isinstance(desc, str):
            raise SchemaError(f"tool {name!r}: description must be a string")
        return cls(name=name, description=desc, parameters=params)


@dataclass
class Call:
    """One function call: a name and keyword arguments. `id` is kept for OpenAI tool_calls."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "arguments": self.arguments}
        if self.id is not None:
            d["id"] = self.id
        return d

    @classmethod
    def from_dict(cls, d: Any) -> "Call":
        if not isinstance(d, dict):
            raise SchemaError(f"a call must be an object, got {type(d).__name__}")
        name = d.get("name")
        if not isinstance(name, str) or not name:
            raise SchemaError(f"a call has no name: {str(d)[:80]}")
        args = d.get("arguments", {})
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise SchemaError(f"call {name!r}: arguments must be an object")
        call_id = d.get("id")
        return cls(name=name, arguments=args, id=call_id if isinstance(call_id, str) else None)

    def __eq__(self, other: object) -> bool:  # ids are transport detail, not meaning
        return isinstance(other, Call) and (self.name, self.arguments) == (other.name, other.arguments)


@dataclass
class Message:
    """One conversation turn. Assistant turns may carry `tool_calls` and the `reasoning` that led to
    them (OpenAI's `reasoning_content`; learned in training, never shown back to the model in a
    later turn's history); tool turns a `tool_call_id`."""

    role: str
    content: str = ""
    tool_calls: list[Call] | None = None
    tool_call_id: str | None = None
    name: str | None = None
    reasoning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.reasoning is not None:
            d["reasoning"] = self.reasoning
        if self.tool_calls is not None:
            d["tool_calls"] = [c.to_dict() for c in self.tool_calls]
        if self.tool_call_id is not None:
            d["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            d["name"] = self.name
        return d

    @classmethod
    def from_dict(cls, d: Any) -> "Message":
        if not isinstance(d, dict):
            raise SchemaError(f"a message must be an object, got {type(d).__name__}")
        role = d.get("role")
        if role not in ROLES:
            raise SchemaError(f"message role must be one of {', '.join(ROLES)}, got {role!r}")
        content = d.get("content")
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise SchemaError(f"{role} message content must be a string")
        calls = d.get("tool_calls")
        reasoning = d.get("reasoning", d.get("reasoning_content"))
        if reasoning is not None and (role != "assistant" or not isinstance(reasoning, str)):
            raise SchemaError(f"only an assistant message carries reasoning, as a string (a {role} message has {type(reasoning).__name__})")
        return cls(
            role=role,
            content=content,
            tool_calls=None if calls is None else [Call.from_dict(c) for c in calls],
            tool_call_id=d.get("tool_call_id"),
            name=d.get("name"),
            reasoning=reasoning,
        )


Answer = list[Call] | str | None


def check_tool_turns(turns: list[Message]) -> None:
    """A tool turn answers the assistant turn before it: it follows an assistant turn (or another
    tool turn after one), and an id it names is one of that turn's tool_calls' ids, as OpenAI's API
    requires. (An assistant turn whose calls are its text, prompting style, may be answered too.)
    Otherwise the conversation would be learned with a result nobody asked for, or answering the
    wrong call: a SchemaError names the message (0-based) and why."""
    ids: set[str] | None = None  # the ids of the calls a tool turn here may answer; None: no assistant turn to answer
    for i, m in enumerate(turns):
        if m.role == "assistant":
            ids = {c.id for c in m.tool_calls or [] if c.id}
        elif m.role != "tool":
            ids = None
        elif ids is None:
            raise SchemaError(f"message {i} (tool) answers no call: it does not follow an assistant turn")
        elif m.tool_call_id is not None and ids and m.tool_call_id not in ids:
            raise SchemaError(f"message {i} (tool) has tool_call_id {m.tool_call_id!r}, which is none of the calls"
                              f" before it ({', '.join(sorted(ids))})")


@dataclass
class Example:
    """A function-calling example: tools, conversation, optional reasoning, reference answer."""

    id: str
    tools: list[Tool]
    messages: list[Message]
    reasoning: str | None = None
    answer: Answer = None
    # BFCL ground truth: one {function_name: {param: [acceptable values]}} per expected call.
    possible_answer: list[dict[str, dict[str, list[Any]]]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def query(self) -> str:
        """The last user turn: what the answer responds to."""
        for m in reversed(self.messages):
            if m.role == "user":
                return m.content
        return ""

    @property
    def calls(self) -> list[Call]:
        """The reference answer's calls ([] for a statement or no answer)."""
        return self.answer if isinstance(self.answer, list) else []

    @property
    def is_statement(self) -> bool:
        return isinstance(self.answer, str)

    @property
    def heldout(self) -> bool:
        """True for benchmark rows (BFCL) that must never become training data."""
        return self.meta.get("source") in HELDOUT_SOURCES

    def tool(self, name: str) -> Tool | None:
        for t in self.tools:
            if t.name == name:
                return t
        return None

    def validate(self) -> "Example":
        """Structural checks every reader applies (tool names unique, a user turn, each tool turn answering
        a call before it, the answer calling only tools on offer). Raises SchemaError naming the problem."""
        if not self.id:
            raise SchemaError("example has no id")
        names = [t.name for t in self.tools]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise SchemaError(f"duplicate tool names: {', '.join(sorted(dup))}")
        if not any(m.role == "user" for m in self.messages):
            raise SchemaError("conversation has no user turn")
        check_tool_turns(self.messages)
        known = set(names)
        for c in self.calls:
            if c.name not in known:
                raise SchemaError(
                    f"answer calls {c.name!r}, which is not among the tools"
                    f" ({', '.join(sorted(known)) or 'none'})"
                )
        return self

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "tools": [t.to_dict() for t in self.tools],
            "messages": [m.to_dict() for m in self.messages],
            "reasoning": self.reasoning,
            "answer": self.answer if not isinstance(self.answer, list) else [c.to_dict() for c in self.answer],
        }
        if self.possible_answer is not None:
            d["possible_answer"] = self.possible_answer
        if self.meta:
            d["meta"] = self.meta
        return d

    @classmethod
    def from_dict(cls, d: Any) -> "Example":
        if not isinstance(d, dict):
            raise SchemaError(f"a row must be a JSON object, got {type(d).__name__}")
        for key in ("id", "tools", "messages"):
            if key not in d:
                raise SchemaError(f"missing field {key!r}")
        tools, messages = d["tools"], d["messages"]
        if not isinstance(tools, list) or not isinstance(messages, list):
            raise SchemaError("'tools' and 'messages' must be lists")
        answer = d.get("answer")
        if isinstance(answer, list):
            answer = [Call.from_dict(c) for c in answer]
        elif answer is not None and not isinstance(answer, str):
            raise SchemaError("'answer' must be a list of calls, a string or null")
        reasoning = d.get("reasoning")
        if reasoning is not None and not isinstance(reasoning, str):
            raise SchemaError("'reasoning' must be a string or null")
        meta = d.get("meta") or {}
        if not isinstance(meta, dict):
            raise SchemaError("'meta' must be an object")
        return cls(
            id=str(d["id"]),
            tools=[Tool.from_dict(t) for t in tools],
            messages=[Message.from_dict(m) for m in messages],
            reasoning=reasoning,
            answer=answer,
            possible_answer=d.get("possible_answer"),
            meta=meta,
        ).validate()


# --- JSON Schema helpers ------------------------------------------------------------------------

# BFCL and Python-flavoured type names → JSON Schema types (for native tool-call APIs).
_TO_JSON_SCHEMA_TYPE = {
    "dict": "object",
    "float": "number",
    "tuple": "array",
    "int": "integer",
    "str": "string",
    "bool": "boolean",
    "list": "array",
}


def json_schema(schema: Any) -> Any:
    """A copy of a parameters schema with BFCL/Python type names mapped to strict JSON Schema
    (dict→object, float→number, tuple→array, any→no type), as OpenAI-style `tools` expect.
    Keys starting with `x-` (FunReason's round-trip annotations) are dropped."""
    if isinstance(schema, list):
        return [json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for k, v in schema.items():
        if isinstance(k, str) and k.startswith("x-"):
            continue
        if k == "type" and isinstance(v, str):
            if v == "any":
                continue
            out[k] = _TO_JSON_SCHEMA_TYPE.get(v, v)
        elif k == "properties" and isinstance(v, dict):
            out[k] = {name: json_schema(p) for name, p in v.items()}
        elif k in ("items", "additionalProperties", "anyOf", "oneOf", "allOf"):
            out[k] = json_schema(v)
        else:
            out[k] = v
    return out
