"""Whether calls fit their tools, and whether two call lists are the same: pure, on the record alone.

Below every layer that judges calls (the mix's call check in `data.mix`, FCDR's stages 2 and 4
in `refine`, the held-out score in `evaluate`), so none of them reaches into another for it. A
failure is a `Verdict`: a stable machine-readable `kind` (`check:reason`, as BFCL's checker writes
`simple_function_checker:missing_required`) and a human sentence. Summaries count kinds; rewording
a sentence never changes a statistic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from funreason.schema import Call, Tool

# a type name (JSON Schema or Python-flavoured) → the Python types a JSON value of it decodes to
_PYTHON_TYPES_OF = {
    "string": (str,), "str": (str,),
    "integer": (int,), "int": (int,),
    "number": (int, float), "float": (int, float),
    "boolean": (bool,), "bool": (bool,),
    "array": (list,), "list": (list,), "tuple": (list,),
    "object": (dict,), "dict": (dict,),
}


@dataclass(frozen=True)
class Verdict:
    """Why a row or a sample failed: `kind` a `check:reason` constant (the `calls:` ones below, the
    others in `refine.checks`), `why` a sentence."""

    kind: str
    why: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "why": self.why}


# the call checks (FCDR stages 2 and 4; self-refinement's samples)
NO_CALLS = "calls:no_calls"
UNKNOWN_FUNCTION = "calls:unknown_function"
MISSING_REQUIRED = "calls:missing_required"
UNKNOWN_PARAMETER = "calls:unknown_parameter"
WRONG_TYPE = "calls:type"
NOT_IN_ENUM = "calls:enum"
DIFFERS = "calls:differs_from_reference"  # a sample's calls against the known answer


def check_calls(calls: list[Call], tools: list[Tool]) -> Verdict | None:
    """Why `calls` cannot be right for `tools` (None when nothing decidable is wrong): unknown
    function, missing required parameter, unknown parameter, type or enum mismatch."""
    if not calls:
        return Verdict(NO_CALLS, "the answer has no calls")
    by_name = {t.name: t for t in tools}
    for c in calls:
        tool = by_name.get(c.name)
        if tool is None:
            return Verdict(UNKNOWN_FUNCTION, f"{c.name} is not among the functions ({', '.join(sorted(by_name)) or 'none'})")
        props = tool.properties
        for req in tool.required:
            if req not in c.arguments:
                return Verdict(MISSING_REQUIRED, f"{c.name}: required parameter {req!r} is missing")
        for arg, value in c.arguments.items():
            if arg not in props:
                if props or tool.parameters.get("additionalProperties") is False:
                    return Verdict(UNKNOWN_PARAMETER, f"{c.name}: parameter {arg!r} does not exist (has {', '.join(props) or 'none'})")
                continue
            problem = _type_problem(value, props[arg])
            if problem:
                return Verdict(problem.kind, f"{c.name}.{arg}: {problem.why}")
    return None


def _type_problem(value: Any, schema: Any) -> Verdict | None:
    if not isinstance(schema, dict):
        return None
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and value not in enum:
        return Verdict(NOT_IN_ENUM, f"{value!r} is not one of {enum}")
    t = schema.get("type")
    if isinstance(t, str) and t in _PYTHON_TYPES_OF:
        ok = isinstance(value, _PYTHON_TYPES_OF[t]) and not (isinstance(value, bool) and t not in ("boolean", "bool"))
        if not ok and value is not None:
            return Verdict(WRONG_TYPE, f"{value!r} is a {type(value).__name__}, the schema says {t}")
    return None


def same_calls(a: list[Call] | None, b: list[Call] | None) -> bool:
    """Equal as multisets (parallel calls may come in any order)."""
    if a is None or b is None:
        return False
    key = lambda c: json.dumps([c.name, c.arguments], sort_keys=True, ensure_ascii=False, default=str)
    return sorted(map(key, a)) == sorted(map(key, b))
