"""OpenAI chat rows: `{"messages": [...], "tools": [...]}` with `tool_calls` on assistant turns.

Reading: the last assistant turn is the reference answer. Its `tool_calls` become calls; plain
content that parses as calls of the given tools (prompting-style data) becomes calls too;
otherwise it is a statement. Reasoning comes from `reasoning_content` / `reasoning` or a leading
`<think>…</think>`. Writing puts reasoning in `reasoning_content` (vLLM / DeepSeek convention).
A `tool` message must answer a call, as OpenAI's API requires: it follows an assistant turn (or
another tool message after one), and a `tool_call_id` it names is one of that turn's call ids;
a row that breaks this is refused with the message named.
"""

from __future__ import annotations

import json
from typing import Any

from funreason.calls import THINK_OPEN, parse_output, split_think
from funreason.errors import SchemaError
from funreason.schema import Call, Example, Message, Tool

KNOWN_KEYS = {"id", "messages", "tools"}


def is_openai_row(row: dict) -> bool:
    return "messages" in row and "answer" not in row


def from_row(row: dict, where: str) -> Example:
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        raise SchemaError("'messages' must be a non-empty list", where)
    tools_raw = row.get("tools") or []
    if isinstance(tools_raw, str):
        try:
            tools_raw = json.loads(tools_raw)
        except ValueError as e:
            raise SchemaError(f"'tools' is not valid JSON ({e})", where) from None
    if not isinstance(tools_raw, list):
        raise SchemaError("'tools' must be a list", where)
    tools = [Tool.from_dict(t) for t in tools_raw]
    turns = [message_from_openai(m) for m in messages]  # a tool turn must answer a call: Example.validate
    reasoning = None
    answer: list[Call] | str | None = None
    meta: dict[str, Any] = {"source": "openai"}
    last = messages[-1]
    if isinstance(last, dict) and last.get("role") == "assistant":
        turns.pop()
        reasoning, answer, leftover = _answer(last, {t.name for t in tools})
        if leftover:
            meta["answer_content"] = leftover
    extra = {k: v for k, v in row.items() if k not in KNOWN_KEYS}
    if extra:
        meta["extra"] = extra
    ex_id = str(row["id"]) if row.get("id") is not None else where.rsplit("/", 1)[-1]
    return Example(ex_id, tools, turns, reasoning, answer, meta=meta).validate()


def to_row(ex: Example) -> dict[str, Any]:
    messages = [_message_out(m) for m in ex.messages]
    if ex.answer is not None or ex.reasoning is not None:
        final: dict[str, Any] = {"role": "assistant"}
        if isinstance(ex.answer, list):
            final["content"] = ex.meta.get("answer_content")
            final["tool_calls"] = _tool_calls_out(ex.answer)
        else:
            final["content"] = ex.answer or ""
        if ex.reasoning is not None:
            final["reasoning_content"] = ex.reasoning
        messages.append(final)
    row: dict[str, Any] = {"id": ex.id, "messages": _paired_ids(messages, ex.messages)}
    row["tools"] = [{"type": "function", "function": t.to_dict()} for t in ex.tools]
    row.update(ex.meta.get("extra", {}))
    return row


def message_from_openai(m: Any) -> Message:
    """One OpenAI chat message (with or without tool_calls) as a record turn. An assistant turn's
    reasoning comes from `reasoning_content` / `reasoning` or a leading `<think>…</think>` of its
    content, as the final turn's does: every assistant turn is learned with its own."""
    if isinstance(m, dict) and isinstance(m.get("tool_calls"), list):
        msg = Message(
            role=m.get("role", "assistant"),
            content=m.get("content") or "",
            tool_calls=[_call_in(c) for c in m["tool_calls"]],
            reasoning=Message.from_dict({k: v for k, v in m.items() if k != "tool_calls"}).reasoning,
        )
    else:
        msg = Message.from_dict(m)
    if msg.role == "assistant" and msg.reasoning is None and msg.content.lstrip().startswith(THINK_OPEN):
        msg.reasoning, msg.content = split_think(msg.content)
    return msg


def _answer(m: dict, tool_names: set[str]) -> tuple[str | None, list[Call] | str, str | None]:
    """(reasoning, answer, content left over beside tool_calls) of the final assistant turn."""
    content = m.get("content") or ""
    if not isinstance(content, str):
        raise SchemaError("assistant content must be a string")
    reasoning = m.get("reasoning_content", m.get("reasoning"))
    if reasoning is not None and not isinstance(reasoning, str):
        raise SchemaError("assistant reasoning_content must be a string")
    if isinstance(m.get("tool_calls"), list) and m["tool_calls"]:
        think, rest = split_think(content)
        return reasoning if reasoning is not None else think, [_call_in(c) for c in m["tool_calls"]], rest or None
    out = parse_output(content)
    if reasoning is None:
        reasoning = out.reasoning
    if out.calls and all(c.name in tool_names for c in out.calls):
        return reasoning, out.calls, None
    return reasoning, split_think(content)[1], None


def _call_in(c: Any) -> Call:
    if not isinstance(c, dict):
        raise SchemaError("a tool_call must be an object")
    fn = c.get("function", c)
    if not isinstance(fn, dict):
        raise SchemaError("tool_call.function must be an object")
    args = fn.get("arguments", {})
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            raise SchemaError(f"arguments of tool call {fn.get('name')!r} are not valid JSON: {args[:80]!r}") from None
    return Call.from_dict({"name": fn.get("name"), "arguments": args, "id": c.get("id")})


def _tool_calls_out(calls: list[Call]) -> list[dict[str, Any]]:
    """The calls as OpenAI writes them; a call without an id gets `call_{i}` (`_paired_ids` may give
    it its result's id instead)."""
    return [
        {
            "id": c.id or f"call_{i}",
            "type": "function",
            "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)},
        }
        for i, c in enumerate(calls)
    ]


def _paired_ids(messages: list[dict[str, Any]], given: list[Message]) -> list[dict[str, Any]]:
    """OpenAI's API pairs each tool message with a call of the assistant turn before it by id. A
    record may give the id on one side only (calls without ids, results without `tool_call_id`):
    the k-th tool message after a turn answers its k-th call, and the side without an id takes
    the other's, so the row written is one OpenAI (and this reader) accepts. Ids given on both
    sides are written as they are. `given`: the record's messages, which `messages` write in order."""
    calls: list[tuple[dict[str, Any], Call]] = []  # the turn's calls as written, each with the call it writes
    k = 0
    for m, src in zip(messages, given):
        if m["role"] == "assistant":
            calls, k = list(zip(m.get("tool_calls") or [], src.tool_calls or [])), 0
        elif m["role"] == "tool" and k < len(calls):
            written, call = calls[k]
            if m.get("tool_call_id") is None:
                m["tool_call_id"] = written["id"]
            elif not call.id:  # the call's id was filled in: the result's own id pairs them
                written["id"] = m["tool_call_id"]
            k += 1
        else:
            calls = []
    return messages


def _message_out(m: Message) -> dict[str, Any]:
    d: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.reasoning is not None:
        d["reasoning_content"] = m.reasoning
    if m.tool_calls is not None:
        d["tool_calls"] = _tool_calls_out(m.tool_calls)
        d["content"] = m.content or None
    if m.tool_call_id is not None:
        d["tool_call_id"] = m.tool_call_id
    if m.name is not None:
        d["name"] = m.name
    return d

