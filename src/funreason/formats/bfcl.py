"""BFCL rows: question files (`id`, `question`, `function`) and `possible_answer` files
(`id`, `ground_truth`), as the `bfcl-eval` package ships them under `bfcl_eval/data/`.

BFCL is FunReason's held-out benchmark: records read here carry `meta.source == "bfcl"` and are
refused as training data. The record keeps BFCL's ground truth (several acceptable values per
parameter, `""` meaning "may be omitted") in `possible_answer`; `answer` is one canonical choice
(optional parameters left out, otherwise the first acceptable value).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from collections.abc import Container, Iterator
from typing import Any

from funreason.errors import SchemaError
from funreason.formats.jsonl import BadLine, iter_json_rows
from funreason.schema import Call, Example, Message, Tool

KNOWN_KEYS = {"id", "question", "function"}
_CATEGORY = re.compile(r"_\d+(?:-\d+)*$")


def is_bfcl_row(row: dict) -> bool:
    return "question" in row and "function" in row


def category_of(entry_id: str) -> str:
    """`simple_python_12` → `simple_python`; `live_simple_3-2-0` → `live_simple`."""
    return _CATEGORY.sub("", entry_id)


def data_dir() -> Path:
    """The `data/` folder of the installed bfcl-eval package (found without importing it)."""
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "BFCL data not found: install the bfcl-eval package for its data files"
            " (`pip install --no-deps bfcl-eval`) or pass --data-dir"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def question_file(category: str, directory: str | Path | None = None) -> Path:
    """The question file of a category, e.g. `BFCL_v4_simple_python.json`."""
    d = Path(directory) if directory else data_dir()
    pattern = re.compile(rf"BFCL_v(\d+)_{re.escape(category)}\.json")
    found = sorted((int(m.group(1)), p) for p in d.glob("BFCL_v*.json") if (m := pattern.fullmatch(p.name)))
    if not found:
        raise FileNotFoundError(f"no BFCL question file for category {category!r} in {d}")
    return found[-1][1]


def answer_file(question_path: str | Path) -> Path | None:
    """`…/possible_answer/<same name>` beside a question file, if the category has answers."""
    q = Path(question_path)
    p = q.parent / "possible_answer" / q.name
    return p if p.exists() else None


def from_row(row: dict, where: str, truth: dict[str, list] | None = None) -> Example:
    """A BFCL question row (with its ground truth from `truth`, keyed by id) as a record."""
    entry_id = row.get("id")
    if not isinstance(entry_id, str) or not entry_id:
        raise SchemaError("'id' must be a non-empty string", where)
    question = row.get("question")
    if not isinstance(question, list) or not all(isinstance(t, list) for t in question):
        raise SchemaError("'question' must be a list of turns, each a list of messages", where)
    functions = row.get("function")
    if not isinstance(functions, list):
        raise SchemaError("'function' must be a list", where)
    messages = [Message.from_dict(m) for turn in question for m in turn]
    meta: dict[str, Any] = {
        "source": "bfcl",
        "category": category_of(entry_id),
        "bfcl_turns": [len(t) for t in question],
    }
    extra = {k: v for k, v in row.items() if k not in KNOWN_KEYS}
    if extra:
        meta["extra"] = extra
    ground_truth = truth.get(entry_id) if truth is not None else None
    required = {f.get("name"): set((f.get("parameters") or {}).get("required") or []) for f in functions if isinstance(f, dict)}
    answer = canonical_answer(ground_truth, where, required) if ground_truth is not None else None
    return Example(
        id=entry_id,
        tools=[Tool.from_dict(f) for f in functions],
        messages=messages,
        answer=answer,
        possible_answer=ground_truth,
        meta=meta,
    ).validate()


def canonical_answer(ground_truth: Any, where: str = "", required: dict[str, set[str]] | None = None) -> list[Call]:
    """One call per ground-truth entry: optional parameters ("" acceptable) left out unless the
    function's schema requires them (BFCL marks some required parameters optional), otherwise
    the first acceptable value."""
    if not isinstance(ground_truth, list):
        raise SchemaError("'ground_truth' must be a list", where)
    calls = []
    for item in ground_truth:
        if not isinstance(item, dict) or len(item) != 1:
            raise SchemaError("each ground-truth entry must be {function_name: {param: [values]}}", where)
        (name, params), = item.items()
        if not isinstance(params, dict):
            raise SchemaError(f"ground truth of {name!r} must map parameters to value lists", where)
        for p, values in params.items():
            if not isinstance(values, list):
                raise SchemaError(f"ground truth of {name}.{p} must be a list of acceptable values", where)
        calls.append(Call(name, _first_acceptable(params, (required or {}).get(name, set()))))
    return calls


def _first_acceptable(options: dict[str, list], required: set[str] = frozenset()) -> dict[str, Any]:
    """Pick one value per key; nested dicts in BFCL's ground truth hold value lists too."""
    out = {}
    for key, values in options.items():
        chosen = [v for v in values if v != ""] if isinstance(values, list) else []
        if not chosen or ("" in values and key not in required):
            continue  # optional: leaving it out is acceptable
        out[key] = _canonical(chosen[0])
    return out


def _canonical(value: Any) -> Any:
    if isinstance(value, dict) and all(isinstance(v, list) for v in value.values()):
        return _first_acceptable(value)
    if isinstance(value, list):
        return [_canonical(v) if isinstance(v, dict) else v for v in value]
    return value


def to_rows(ex: Example) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(question row, possible-answer row or None). Records from other sources get a ground
    truth with their one answer per parameter, so BFCL's checker can score them."""
    turns: list[list[dict]] = []
    msgs = [m.to_dict() for m in ex.messages]
    shape = ex.meta.get("bfcl_turns") or [len(msgs)]
    start = 0
    for n in shape:
        turns.append(msgs[start : start + n])
        start += n
    if start < len(msgs):
        turns[-1].extend(msgs[start:])
    row: dict[str, Any] = {"id": ex.id, "question": turns, "function": [t.to_dict() for t in ex.tools]}
    row.update(ex.meta.get("extra", {}))
    truth = ex.possible_answer
    if truth is None and isinstance(ex.answer, list):
        truth = [{c.name: {k: [v] for k, v in c.arguments.items()}} for c in ex.answer]
    return row, (None if truth is None else {"id": ex.id, "ground_truth": truth})


def result_rows(results: Path, known: Container[str], category: str, max_line_bytes: int = 1 << 20) -> Iterator[tuple[str, Any]]:
    """(id, result) of each line of a BFCL result file, as both checkers read it: every line a JSON
    object with `id` and `result`, every id an entry of `category` (`known`) and given once.
    ValueError naming the file and line otherwise."""
    if not results.is_file():
        raise ValueError(f"{results}: no such file" if not results.exists() else f"{results}: not a file")
    first_seen: dict[str, str] = {}
    for where, row in iter_json_rows(results, max_line_bytes=max_line_bytes):
        if isinstance(row, BadLine) or not isinstance(row, dict) or "id" not in row or "result" not in row:
            raise ValueError(f"{where}: each line must be a JSON object with 'id' and 'result'")
        if row["id"] not in known:
            raise ValueError(f"{where}: id {row['id']!r} is not in category {category}")
        if row["id"] in first_seen:
            raise ValueError(f"{where}: id {row['id']!r} is there already ({first_seen[row['id']]}); keep one result per entry")
        first_seen[row["id"]] = where
        yield row["id"], row["result"]
