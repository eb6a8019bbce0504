"""xLAM rows (Salesforce xlam-function-calling-60k): `query`, and `tools` / `answers` as JSON strings.

xLAM describes parameters as `{"p": {"type": "str, optional", "description": ..., "default": ...}}`.
Records hold JSON Schema (`{"type": "object", "properties": ..., "required": [...]}`); a type
string that the canonical mapping would not give back verbatim is kept in `x-xlam-type`, so
xLAM → record → xLAM is lossless. Extensions: `reasoning` (think text) and an `answers` string
that is not a JSON list (a plain-text statement instead of calls).
"""

from __future__ import annotations

import json
import re
from typing import Any

from funreason.errors import SchemaError
from funreason.schema import Call, Example, Message, Tool

_OPTIONAL = ", optional"
_SCALARS = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
_SCALARS_BACK = {v: k for k, v in _SCALARS.items()}
_LIST = re.compile(r"^(?:List|list)\[(\w+)\]$")
XLAM_TYPE_KEY = "x-xlam-type"
KNOWN_KEYS = {"id", "query", "tools", "answers", "reasoning"}


def is_xlam_row(row: dict) -> bool:
    return "query" in row and "answers" in row


def from_row(row: dict, where: str) -> Example:
    """An xLAM row as a record. Raises SchemaError naming the bad field."""
    query = row.get("query")
    if not isinstance(query, str):
        raise SchemaError("'query' must be a string", where)
    tools = [tool_from_xlam(t) for t in _json_field(row, "tools", where, default=[])]
    answers_raw = row.get("answers")
    answer: list[Call] | str
    if isinstance(answers_raw, str) and not answers_raw.lstrip().startswith("["):
        answer = answers_raw  # a plain-text statement
    else:
        answers = _json_field(row, "answers", where, default=[])
        if not isinstance(answers, list):
            raise SchemaError("'answers' must be a JSON list of calls", where)
        answer = [Call.from_dict(a) for a in answers]
    reasoning = row.get("reasoning")
    if reasoning is not None and not isinstance(reasoning, str):
        raise SchemaError("'reasoning' must be a string", where)
    meta: dict[str, Any] = {"source": "xlam"}
    if "id" in row:
        meta["xlam_id"] = row["id"]
    extra = {k: v for k, v in row.items() if k not in KNOWN_KEYS}
    if extra:
        meta["extra"] = extra
    ex_id = str(row["id"]) if row.get("id") is not None else where.rsplit("/", 1)[-1]
    return Example(
        id=ex_id,
        tools=tools,
        messages=[Message("user", query)],
        reasoning=reasoning,
        answer=answer,
        meta=meta,
    ).validate()


def to_row(ex: Example) -> dict[str, Any]:
    """A record as an xLAM row (tools and answers as JSON strings, like the dataset)."""
    row: dict[str, Any] = {"id": ex.meta.get("xlam_id", ex.id), "query": ex.query}
    row["tools"] = json.dumps([tool_to_xlam(t) for t in ex.tools], ensure_ascii=False)
    if isinstance(ex.answer, str):
        row["answers"] = ex.answer
    else:
        row["answers"] = json.dumps(
            [{"name": c.name, "arguments": c.arguments} for c in ex.calls], ensure_ascii=False
        )
    if ex.reasoning is not None:
        row["reasoning"] = ex.reasoning
    row.update(ex.meta.get("extra", {}))
    return row


def _json_field(row: dict, key: str, where: str, default: Any) -> Any:
    value = row.get(key, default)
    if value is None:
        return default
    if isinstance(value, str):
        try:
            return json.loads(value)
        except (ValueError, RecursionError) as e:
            raise SchemaError(f"'{key}' is not valid JSON ({str(e)[:80]})", where) from None
    return value


def tool_from_xlam(d: Any) -> Tool:
    if not isinstance(d, dict):
        raise SchemaError(f"a tool must be an object, got {type(d).__name__}")
    params = d.get("parameters") or {}
    if not isinstance(params, dict):
        raise SchemaError(f"tool {d.get('name')!r}: parameters must be an object")
    if isinstance(params.get("type"), str):  # already JSON Schema
        return Tool.from_dict(d)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, spec in params.items():
        if not isinstance(spec, dict):
            raise SchemaError(f"tool {d.get('name')!r}: parameter {name!r} must be an object")
        prop, optional = _param_from_xlam(spec)
        properties[name] = prop
        if not optional:
            required.append(name)
    return Tool.from_dict(
        {
            "name": d.get("name"),
            "description": d.get("description", ""),
            "parameters": {"type": "object", "properties": properties, "required": required},
        }
    )


def tool_to_xlam(tool: Tool) -> dict[str, Any]:
    required = set(tool.required)
    params = {name: _param_to_xlam(spec, name in required) for name, spec in tool.properties.items()}
    return {"name": tool.name, "description": tool.description, "parameters": params}


def _param_from_xlam(spec: dict) -> tuple[dict, bool]:
    xtype = spec.get("type")
    optional = isinstance(xtype, str) and xtype.endswith(_OPTIONAL)
    prop: dict[str, Any] = {}
    for k, v in spec.items():
        if k != "type":
            prop[k] = v
    if isinstance(xtype, str):
        schema = _schema_of(_base(xtype))
        prop = {**schema, **prop}
        if _xlam_type_of(prop, not optional) != xtype:
            prop[XLAM_TYPE_KEY] = xtype
    elif xtype is not None:
        prop[XLAM_TYPE_KEY] = xtype
    return prop, optional


def _param_to_xlam(prop: dict, required: bool) -> dict:
    spec: dict[str, Any] = {}
    xtype = prop[XLAM_TYPE_KEY] if XLAM_TYPE_KEY in prop else _xlam_type_of(prop, required)
    if "description" in prop:
        spec["description"] = prop["description"]
    if xtype is not None:
        spec["type"] = xtype
    generated = _schema_of(_base(xtype)) if isinstance(xtype, str) else {}
    for k, v in prop.items():
        if k in ("type", "description", XLAM_TYPE_KEY) or (k == "items" and v == generated.get("items")):
            continue
        spec[k] = v
    return spec


def _base(xtype: str) -> str:
    return xtype[: -len(_OPTIONAL)] if xtype.endswith(_OPTIONAL) else xtype


def _schema_of(base: str) -> dict[str, Any]:
    """JSON Schema for an xLAM base type string (best effort: unknown shapes get no type)."""
    b = base.strip()
    if b in _SCALARS:
        return {"type": _SCALARS[b]}
    m = _LIST.match(b)
    if m:
        inner = m.group(1)
        return {"type": "array", "items": {"type": _SCALARS[inner]}} if inner in _SCALARS else {"type": "array"}
    head = b.split("[", 1)[0].lower()
    if head in ("list", "tuple", "set", "sequence"):
        return {"type": "array"}
    if head in ("dict", "mapping"):
        return {"type": "object"}
    return {}


def _xlam_type_of(prop: dict, required: bool) -> str | None:
    """The canonical xLAM type string for a JSON Schema property (inverse of `_schema_of`)."""
    t = prop.get("type")
    if t in _SCALARS_BACK:
        base = _SCALARS_BACK[t]
    elif t == "array":
        items = prop.get("items")
        inner = items.get("type") if isinstance(items, dict) else None
        base = f"List[{_SCALARS_BACK[inner]}]" if inner in _SCALARS_BACK else "List"
    elif t == "object":
        base = "Dict"
    else:
        return None
    return base if required else base + _OPTIONAL
