"""What FCDR decides without the teacher: pure checks on calls, and parsing of teacher replies.

A deterministic failure costs no LLM call and says exactly what failed.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from funreason.calls import format_python_calls, parse_calls, split_think
from funreason.errors import ParseError
from funreason.schema import Call, Example, Tool

_JSON_TYPES = {
    "string": (str,), "str": (str,),
    "integer": (int,), "int": (int,),
    "number": (int, float), "float": (int, float),
    "boolean": (bool,), "bool": (bool,),
    "array": (list,), "list": (list,), "tuple": (list,),
    "object": (dict,), "dict": (dict,),
}
_VERDICT = re.compile(r"VERDICT\s*[:=]\s*\**\s*(PASS|FAIL|YES|NO|CALL|STATEMENT)\b", re.IGNORECASE)
_JSON_VERDICT = re.compile(r'"verdict"\s*:\s*"(pass|fail|yes|no|call|statement)"', re.IGNORECASE)
_ANSWER = re.compile(r"ANSWER\s*:\s*", re.IGNORECASE)


def check_calls(calls: list[Call], tools: list[Tool]) -> str | None:
    """Why `calls` cannot be right for `tools` (None when nothing decidable is wrong): unknown
    function, missing required parameter, unknown parameter, type or enum mismatch."""
    if not calls:
        return "the answer has no calls"
    by_name = {t.name: t for t in tools}
    for c in calls:
        tool = by_name.get(c.name)
        if tool is None:
            return f"{c.name} is not among the functions ({', '.join(sorted(by_name)) or 'none'})"
        props = tool.properties
        for req in tool.required:
            if req not in c.arguments:
                return f"{c.name}: required parameter {req!r} is missing"
        for arg, value in c.arguments.items():
            if arg not in props:
                if props or tool.parameters.get("additionalProperties") is False:
                    return f"{c.name}: parameter {arg!r} does not exist (has {', '.join(props) or 'none'})"
                continue
            problem = _type_problem(value, props[arg])
            if problem:
                return f"{c.name}.{arg}: {problem}"
    return None


def _type_problem(value: Any, schema: Any) -> str | None:
    if not isinstance(schema, dict):
        return None
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and value not in enum:
        return f"{value!r} is not one of {enum}"
    t = schema.get("type")
    if isinstance(t, str) and t in _JSON_TYPES:
        ok = isinstance(value, _JSON_TYPES[t]) and not (isinstance(value, bool) and t not in ("boolean", "bool"))
        if not ok and value is not None:
            return f"{value!r} is a {type(value).__name__}, the schema says {t}"
    return None


def format_problem(calls: list[Call]) -> str | None:
    """Stage 5, format identification: the calls must write as a Python call list that parses
    back to the same calls (valid dotted names, keyword names, literal JSON-like values)."""
    try:
        text = format_python_calls(calls)
    except ValueError as e:
        return f"a value has no literal form ({e})"
    for c in calls:
        for part in c.name.split("."):
            if not part.isidentifier():
                return f"function name {c.name!r} is not a dotted identifier"
        for arg in c.arguments:
            if not isinstance(arg, str) or not arg.isidentifier():
                return f"{c.name}: parameter name {arg!r} cannot be a keyword argument"
    try:
        back = parse_calls(text)
    except ParseError as e:
        return f"the calls do not parse back ({e.reason})"
    if not same_calls(back, calls) or any(_has_nan(c.arguments) for c in calls):
        return "the calls do not survive a write-and-parse round trip"
    return None


def _has_nan(v: Any) -> bool:
    if isinstance(v, float):
        return math.isnan(v)
    if isinstance(v, dict):
        return any(_has_nan(x) for x in v.values())
    if isinstance(v, list):
        return any(_has_nan(x) for x in v)
    return False


def same_calls(a: list[Call] | None, b: list[Call] | None) -> bool:
    """Equal as multisets (parallel calls may come in any order)."""
    if a is None or b is None:
        return False
    key = lambda c: json.dumps([c.name, c.arguments], sort_keys=True, ensure_ascii=False, default=str)
    return sorted(map(key, a)) == sorted(map(key, b))


def parse_verdict(text: str) -> tuple[str, str] | None:
    """(PASS | FAIL | CALL | STATEMENT, the teacher's explanation), or None when malformed.
    The last verdict line counts; YES/NO mean PASS/FAIL."""
    _, rest = split_think(text)
    body = rest or text
    found = _VERDICT.findall(body) or _JSON_VERDICT.findall(body)
    if not found:
        return None
    v = found[-1].upper()
    v = {"YES": "PASS", "NO": "FAIL"}.get(v, v)
    explanation = _VERDICT.split(body)[0].strip() if _VERDICT.search(body) else body.strip()
    return v, explanation[-2000:]


def parse_answer(text: str) -> list[Call] | None:
    """The calls after `ANSWER:` (or the whole text after reasoning), or None if they do not parse."""
    _, rest = split_think(text)
    parts = _ANSWER.split(rest)
    candidate = parts[-1] if len(parts) > 1 else rest
    try:
        return parse_calls(candidate.strip())
    except ParseError:
        return None


def split_cot(text: str) -> tuple[str | None, list[Call] | None]:
    """A teacher's written reasoning and its own answer, from `<think>…</think> ANSWER: […]`."""
    reasoning, rest = split_think(text)
    if reasoning is None:  # no tags: the reasoning is what comes before ANSWER:
        parts = _ANSWER.split(text)
        reasoning = parts[0].strip() if len(parts) > 1 else None
    return (reasoning or None), parse_answer(text)


def looks_like_call(statement: str, ex: Example) -> bool:
    """A statement that names one of the tools followed by '(' may be a call in disguise."""
    return any(re.search(re.escape(t.name) + r"\s*\(", statement) for t in ex.tools)
