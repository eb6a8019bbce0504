"""What FCDR decides without the teacher: the format check, and parsing of teacher replies.

A deterministic failure costs no LLM call and says exactly what failed, as a `Verdict`
(`funreason.fit`, which also holds the call checks of stages 2 and 4: whether calls fit their
tools). Summaries count kinds; rewording a sentence never changes a statistic.
"""

from __future__ import annotations

import keyword
import math
import re
from typing import Any

from funreason.calls import format_python_calls, parse_calls, split_think
from funreason.errors import ParseError
from funreason.fit import Verdict, same_calls
from funreason.schema import Call, Example

# stage 5, format identification
NO_LITERAL = "format:no_literal"
BAD_NAME = "format:bad_name"
NO_PARSE = "format:no_parse"
ROUND_TRIP = "format:round_trip"
NO_ANSWER = "format:no_answer"  # a sample with neither calls nor words
NO_REASONING = "format:no_reasoning"
# stage 1, response identification, and stage 3, CoT identification
RESPONSE_MISSING = "response:no_answer"
COT_DIFFERS = "cot:own_answer_differs"
# the teacher's own judgement (stages 2–4): its words are kept with the row
TEACHER_FAIL = "teacher:fail"
DISGUISED_CALL = "teacher:call_in_words"
REGENERATION_NO_PARSE = "teacher:regeneration_no_parse"

_VERDICT = re.compile(r"VERDICT\s*[:=]\s*\**\s*(PASS|FAIL|YES|NO|CALL|STATEMENT)\b", re.IGNORECASE)
_JSON_VERDICT = re.compile(r'"verdict"\s*:\s*"(pass|fail|yes|no|call|statement)"', re.IGNORECASE)
_ANSWER = re.compile(r"ANSWER\s*:\s*", re.IGNORECASE)


def format_problem(calls: list[Call]) -> Verdict | None:
    """Stage 5, format identification: the calls must write as a Python call list that parses
    back to the same calls (dotted or hyphenated names of identifiers, keyword names, literal
    JSON-like values)."""
    try:
        text = format_python_calls(calls)
    except ValueError as e:
        return Verdict(NO_LITERAL, f"a value has no literal form ({e})")
    for c in calls:
        for part in re.split(r"[.-]", c.name):
            if not part.isidentifier() or keyword.iskeyword(part):  # `get-class(…)` is no Python the parser reads
                return Verdict(BAD_NAME, f"function name {c.name!r} is not identifiers (no Python keyword) joined by dots or hyphens")
        for arg in c.arguments:
            if not isinstance(arg, str) or not arg.isidentifier():
                return Verdict(BAD_NAME, f"{c.name}: parameter name {arg!r} cannot be a keyword argument")
    try:
        back = parse_calls(text)
    except ParseError as e:
        return Verdict(NO_PARSE, f"the calls do not parse back ({e.reason})")
    if not same_calls(back, calls) or any(_has_nan(c.arguments) for c in calls):
        return Verdict(ROUND_TRIP, "the calls do not survive a write-and-parse round trip")
    return None


def _has_nan(v: Any) -> bool:
    if isinstance(v, float):
        return math.isnan(v)
    if isinstance(v, dict):
        return any(_has_nan(x) for x in v.values())
    if isinstance(v, list):
        return any(_has_nan(x) for x in v)
    return False


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
