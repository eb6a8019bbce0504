"""Readers and writers between files and `Example` records.

Formats: `native` (FunReason's JSONL, `Example.to_dict`), `xlam`, `openai`, `bfcl`, and anything
`datasets.load_dataset` opens (Parquet, a hub id). `auto` picks per row from its keys.

A bad row is a `SchemaError` naming the file and line (or row index) and the reason. By default
the first one stops the read; with `skip_invalid=True` each is written to the `rejected` file
(and counted) and reading goes on. Nothing is dropped silently.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from funreason.errors import SchemaError
from funreason.formats import bfcl, openai, xlam
from funreason.formats.jsonl import DEFAULT_MAX_LINE_BYTES, BadLine, append_jsonl, atomic_open, iter_json_rows
from funreason.schema import Example

FORMATS = ("auto", "native", "xlam", "openai", "bfcl")
_DATASET_SUFFIXES = {".parquet", ".arrow", ".csv"}


def detect_format(row: Any) -> str:
    if not isinstance(row, dict):
        raise SchemaError(f"a row must be a JSON object, got {type(row).__name__}")
    if xlam.is_xlam_row(row):
        return "xlam"
    if bfcl.is_bfcl_row(row):
        return "bfcl"
    if "messages" in row and "answer" in row:
        return "native"
    if openai.is_openai_row(row):
        return "openai"
    raise SchemaError(
        "row fits no known format (xlam needs query+answers, openai needs messages,"
        f" bfcl needs question+function); its keys are {sorted(row)[:10]}"
    )


def example_from_row(row: Any, where: str, fmt: str = "auto", truth: dict | None = None) -> Example:
    """One raw row as a record. Raises SchemaError located at `where`."""
    try:
        fmt = detect_format(row) if fmt == "auto" else fmt
        if not isinstance(row, dict):
            raise SchemaError(f"a row must be a JSON object, got {type(row).__name__}")
        if fmt == "xlam":
            return xlam.from_row(row, where)
        if fmt == "openai":
            return openai.from_row(row, where)
        if fmt == "bfcl":
            return bfcl.from_row(row, where, truth)
        if fmt == "native":
            return Example.from_dict(row)
        raise SchemaError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    except SchemaError as e:
        raise e.at(where) from None
    except (TypeError, AttributeError, KeyError, ValueError) as e:  # shapes the checks above missed
        raise SchemaError(f"malformed row ({type(e).__name__}: {e})", where) from None


class Reader:
    """Iterate records from a file or dataset, keeping count of what was read and rejected.

    >>> reader = Reader("data.jsonl", skip_invalid=True, rejected="out/rejected.jsonl")
    >>> examples = list(reader); reader.rejected_count
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        format: str = "auto",
        skip_invalid: bool = False,
        rejected: str | os.PathLike | None = None,
        answers: str | os.PathLike | None = None,
        split: str = "train",
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ):
        if format not in FORMATS:
            raise ValueError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
        self.path = str(path)
        self.format = format
        self.skip_invalid = skip_invalid
        self.rejected_path = Path(rejected) if rejected else None
        self.answers = answers
        self.split = split
        self.max_line_bytes = max_line_bytes
        self.read_count = 0
        self.rejected_count = 0
        self.first_errors: list[str] = []

    def __iter__(self) -> Iterator[Example]:
        self.read_count = self.rejected_count = 0
        self.first_errors = []
        truth = self._load_truth()
        out = None
        if self.skip_invalid and self.rejected_path is not None:  # this read's rejects only: an earlier read's would look current
            self.rejected_path.unlink(missing_ok=True)
        try:
            for where, row in self._rows():
                try:
                    if isinstance(row, BadLine):
                        raise row
                    ex = example_from_row(row, where, self.format, truth)
                except SchemaError as e:
                    if not self.skip_invalid:
                        raise
                    if out is None and self.rejected_path is not None:
                        self.rejected_path.parent.mkdir(parents=True, exist_ok=True)
                        out = open(self.rejected_path, "w", encoding="utf-8")
                    self._reject(e, row, out)
                    continue
                self.read_count += 1
                yield ex
        finally:
            if out is not None:
                out.close()

    def _reject(self, e: SchemaError, row: Any, out) -> None:
        self.rejected_count += 1
        if len(self.first_errors) < 10:
            self.first_errors.append(str(e))
        if out is not None:
            raw = row.raw if isinstance(row, BadLine) else json.dumps(row, ensure_ascii=False)
            append_jsonl(out, {"where": e.where, "reason": e.reason, "raw": raw})

    def _rows(self) -> Iterator[tuple[str, Any]]:
        p = Path(self.path)
        # a file name that is not there is a typo, not a hub dataset id: say so at once rather than
        # after a minute of hub retries (a hub id is `org/name`, without a file suffix)
        if not p.exists() and (p.suffix in (".json", ".jsonl", *_DATASET_SUFFIXES) or str(self.path).startswith(("/", ".", "~"))):
            raise SchemaError("no such file", str(self.path))
        if p.is_file() and p.suffix not in _DATASET_SUFFIXES:
            yield from iter_json_rows(p, max_line_bytes=self.max_line_bytes)
        else:
            yield from _dataset_rows(self.path, self.split)

    def _load_truth(self) -> dict[str, list] | None:
        """BFCL ground truth by id, from `answers` or the `possible_answer/` file beside the input."""
        if self.format not in ("auto", "bfcl"):
            return None
        path = Path(self.answers) if self.answers else None
        if path is None and Path(self.path).is_file():
            path = bfcl.answer_file(self.path)
        if path is None:
            return None
        truth: dict[str, list] = {}
        for where, row in iter_json_rows(path, max_line_bytes=self.max_line_bytes):
            if isinstance(row, BadLine):
                raise row
            if not isinstance(row, dict) or "id" not in row or "ground_truth" not in row:
                raise SchemaError("a possible-answer row needs 'id' and 'ground_truth'", where)
            truth[row["id"]] = row["ground_truth"]
        return truth


def _dataset_rows(path: str, split: str) -> Iterator[tuple[str, Any]]:
    """Rows through `datasets.load_dataset`: local Parquet/CSV/Arrow, a folder, or a hub id."""
    import datasets  # heavy: only when needed

    p = Path(path)
    try:
        if p.is_file():
            builder = {".parquet": "parquet", ".csv": "csv", ".arrow": "arrow"}[p.suffix]
            ds = datasets.load_dataset(builder, data_files=str(p), split="train")
        else:
            ds = datasets.load_dataset(path, split=split)
    except Exception as e:  # datasets raises many types; the user needs the reason and the path
        raise SchemaError(f"cannot open as a dataset ({type(e).__name__}: {str(e)[:200]})", path) from None
    for i, row in enumerate(ds):
        yield f"{path}[{i}]", {k: v for k, v in row.items() if v is not None}


def read_examples(path: str | os.PathLike, **kwargs: Any) -> list[Example]:
    """All records of a file; raises SchemaError at the first bad row (see `Reader`)."""
    return list(Reader(path, **kwargs))


def to_row(ex: Example, fmt: str) -> dict[str, Any]:
    if fmt == "native":
        return ex.to_dict()
    if fmt == "xlam":
        return xlam.to_row(ex)
    if fmt == "openai":
        return openai.to_row(ex)
    raise ValueError(f"cannot write format {fmt!r} as single rows; choose native, xlam or openai")


def write_examples(examples: Iterable[Example], path: str | os.PathLike, fmt: str = "native") -> int:
    """Write records as JSONL, whole or not at all (each file under a temporary name, renamed when
    complete). `bfcl` writes the question file at `path` and the ground truth at
    `possible_answer/<name>` beside it. Returns the number written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    if fmt == "bfcl":
        answer_path = path.parent / "possible_answer" / path.name
        answer_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path) as q, atomic_open(answer_path) as a:
            for ex in examples:
                question, truth = bfcl.to_rows(ex)
                append_jsonl(q, question)
                if truth is not None:
                    append_jsonl(a, truth)
                n += 1
        return n
    with atomic_open(path) as f:  # a bad row or a full disk midway leaves no partial file
        for ex in examples:
            append_jsonl(f, to_row(ex, fmt))
            n += 1
    return n
