"""`funreason data audit`: every training row compared with every BFCL entry, so benchmark material
cannot reach training under another name.

Invariant: a row is *flagged* when one of its findings reaches its threshold below, and each
finding names the BFCL entry it resembles and why. Every BFCL question file is indexed (all
categories, live and multi-turn included; `format_sensitivity` only re-asks the others), with the
multi-turn categories' function docs. Compared per row:

- every tool it **offers**, and every function it **calls** anywhere in the conversation (answer and
  earlier assistant turns), under any name:
  - `name`: the name of a BFCL function (case, `.` and `_` folded);
  - `description`: word 5-gram Jaccard of the descriptions ≥ `DESCRIPTION` (0.5);
  - `parameter_descriptions`: at least 2 parameters, and word 5-gram Jaccard of the parameters'
    descriptions ≥ `PARAMETERS` (0.5);
  - `signature`: the same 3 or more parameter names with the same types, and the whole definitions
    alike (word 3-gram Jaccard ≥ `SIGNATURE_TEXT`, 0.25);
- every **user turn**, numbers masked: `question` when a BFCL user turn of 6 or more words has
  ≥ `CONTAINMENT` (0.6) of its word 3-grams inside the row's user turns (a copy, a paraphrase
  that keeps most of its wording, or a question embedded in a longer one).

A row whose only finding is `name` is reported but does not stop `train` (`BLOCKING`): generic
names (get_weather, calculate_area) recur in every source; a definition or question taken over
under any name is what the other kinds catch. `train` stops when any row has a blocking finding,
unless `--allow-benchmark-overlap`; `data mix` drops such rows from the open sources.

Each tool's nearest BFCL function (word 3-gram Jaccard of the whole definition) is reported
whether or not it is flagged. BFCL is indexed once (inverted n-gram indexes; n-grams found in
more than `COMMON` questions or functions only count, they do not propose candidates), so a file
of tens of thousands of rows takes seconds.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from funreason.config import cli
from funreason.formats.jsonl import write_text_atomic
from funreason.schema import Example, Tool

DESCRIPTION = 0.5
PARAMETERS = 0.5
SIGNATURE_TEXT = 0.25
CONTAINMENT = 0.6
MIN_QUESTION_WORDS = 8
COMMON = 300
BLOCKING = frozenset({"description", "parameter_descriptions", "signature", "question"})
# which function doc a multi-turn entry's `involved_classes` names (as bfcl-eval's backend config maps them)
CLASS_DOCS = {"GorillaFileSystem": ["gorilla_file_system"], "MathAPI": ["math_api"], "MessageAPI": ["message_api"],
              "TwitterAPI": ["posting_api"], "TicketAPI": ["ticket_api"], "TradingBot": ["trading_bot"],
              "TravelAPI": ["travel_booking"], "VehicleControlAPI": ["vehicle_control"], "WebSearchAPI": ["web_search"],
              "MemoryAPI": ["memory_kv", "memory_rec_sum", "memory_vector"]}
_WORD = re.compile(r"[a-z0-9]+")
_NUMBER = re.compile(r"^\d+$")
_TYPES = {"str": "string", "float": "number", "int": "integer", "dict": "object", "tuple": "array", "list": "array", "bool": "boolean"}


def words(text: str, mask_numbers: bool = False) -> list[str]:
    """Lower-case words; with `mask_numbers`, each run of numbers becomes one `0` (questions that
    differ only in their values are one question)."""
    found = _WORD.findall(text.lower())
    if not mask_numbers:
        return found
    out: list[str] = []
    for w in found:
        w = "0" if _NUMBER.match(w) else w
        if not (w == "0" and out and out[-1] == "0"):
            out.append(w)
    return out


def grams(tokens: list[str], n: int) -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def fold_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


@dataclass(frozen=True)
class Shape:
    """What the audit compares of one function definition."""

    name: str
    description: frozenset
    parameter_descriptions: frozenset
    signature: frozenset  # (parameter name, type) pairs
    text: frozenset  # word 3-grams of the whole definition

    @classmethod
    def of(cls, name: str, description: str, parameters: dict[str, Any]) -> "Shape":
        props = parameters.get("properties") if isinstance(parameters, dict) else None
        props = props if isinstance(props, dict) else {}
        pdesc = " ".join(f"{k} {v.get('description', '')}" for k, v in props.items() if isinstance(v, dict))
        sig = frozenset((k, _TYPES.get(str(v.get("type")), str(v.get("type")))) for k, v in props.items() if isinstance(v, dict))
        text = words(f"{name.replace('.', ' ').replace('_', ' ')} {description} {pdesc}")
        return cls(fold_name(name), grams(words(description), 5), grams(words(pdesc), 5) if len(props) >= 2 else frozenset(), sig, grams(text, 3))


@dataclass
class BfclFunction:
    name: str
    shape: Shape
    entries: list[str]  # the BFCL entries that offer it, in file order


@dataclass
class Finding:
    kind: str  # name | description | parameter_descriptions | signature | question
    where: str  # "tool NAME" / "called NAME" / "user turn N"
    entry: str  # the BFCL entry it resembles (the first that offers the function, or the question's)
    bfcl: str  # the BFCL function's name, or the question's first words
    score: float
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "where": self.where, "entry": self.entry, "bfcl": self.bfcl, "score": round(self.score, 3), "why": self.why}


class BfclIndex:
    """Every BFCL function and user turn, indexed once."""

    def __init__(self, data_dir: str | Path | None = None):
        from funreason.formats import bfcl

        d = Path(data_dir) if data_dir else bfcl.data_dir()
        self.functions: list[BfclFunction] = []
        self.questions: list[tuple[str, str, frozenset]] = []  # (entry, text, 3-grams)
        by_key: dict[str, BfclFunction] = {}
        class_entries: dict[str, list[str]] = {}

        def add(fn: dict[str, Any], entry: str) -> None:
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                return
            key = json.dumps([fn.get("name"), fn.get("description"), fn.get("parameters")], sort_keys=True, default=str)
            if key not in by_key:
                by_key[key] = BfclFunction(fn["name"], Shape.of(fn["name"], str(fn.get("description") or ""), fn.get("parameters") or {}), [])
                self.functions.append(by_key[key])
            by_key[key].entries.append(entry)

        for path in sorted(d.glob("BFCL_v*.json")):
            if "format_sensitivity" in path.name:
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                row = json.loads(line)
                for fn in row.get("function") or []:
                    add(fn, row["id"])
                for cls_name in row.get("involved_classes") or []:
                    class_entries.setdefault(cls_name, []).append(row["id"])
                for turn in row.get("question") or []:
                    for m in turn if isinstance(turn, list) else []:
                        if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
                            toks = words(m["content"], mask_numbers=True)
                            if len(toks) >= MIN_QUESTION_WORDS:
                                self.questions.append((row["id"], m["content"], grams(toks, 3)))
        for cls_name, docs in CLASS_DOCS.items():
            for doc in docs:
                path = d / "multi_turn_func_doc" / f"{doc}.json"
                if path.exists():
                    for line in path.read_text(encoding="utf-8").splitlines():
                        if line.strip():
                            for entry in class_entries.get(cls_name, [f"multi_turn_func_doc/{doc}"])[:1]:
                                add(json.loads(line), entry)
        self.by_name: dict[str, list[int]] = {}
        self.gram_index: dict[str, dict[Any, list[int]]] = {"description": {}, "parameter_descriptions": {}, "text": {}, "signature": {}}
        for i, fn in enumerate(self.functions):
            self.by_name.setdefault(fn.shape.name, []).append(i)
            for kind in ("description", "parameter_descriptions", "text"):
                for g in getattr(fn.shape, kind):
                    self.gram_index[kind].setdefault(g, []).append(i)
            if len(fn.shape.signature) >= 3:
                self.gram_index["signature"].setdefault(fn.shape.signature, []).append(i)
        self.question_index: dict[tuple, list[int]] = {}
        for i, (_, _, gs) in enumerate(self.questions):
            for g in gs:
                self.question_index.setdefault(g, []).append(i)

    def candidates(self, kind: str, keys: Iterable[Any]) -> Counter:
        found: Counter = Counter()
        index = self.gram_index[kind]
        for k in keys:
            hits = index.get(k, ())
            if len(hits) <= COMMON:
                found.update(hits)
        return found

    @functools.lru_cache(maxsize=200_000)
    def tool_findings(self, shape: Shape, where: str) -> tuple[tuple[Finding, ...], Finding | None]:
        """(findings at or over their thresholds, the nearest BFCL function) of one definition."""
        found: list[Finding] = []
        for i in self.by_name.get(shape.name, []):
            fn = self.functions[i]
            found.append(Finding("name", where, fn.entries[0], fn.name, 1.0, f"bears the name of BFCL's {fn.name}"))
            break
        for kind, threshold, what in (("description", DESCRIPTION, "description"), ("parameter_descriptions", PARAMETERS, "parameters' descriptions")):
            mine = getattr(shape, kind)
            best = max(((jaccard(mine, getattr(self.functions[i].shape, kind)), i) for i in self.candidates(kind, mine)), default=(0.0, -1))
            if best[0] >= threshold:
                fn = self.functions[best[1]]
                found.append(Finding(kind, where, fn.entries[0], fn.name, best[0], f"its {what} share {best[0]:.0%} of their word 5-grams with {fn.name}'s"))
        near = max(((jaccard(shape.text, self.functions[i].shape.text), i) for i in self.candidates("text", shape.text)), default=(0.0, -1))
        for i in self.gram_index["signature"].get(shape.signature, []) if len(shape.signature) >= 3 else []:
            score = jaccard(shape.text, self.functions[i].shape.text)
            if score >= SIGNATURE_TEXT:
                fn = self.functions[i]
                found.append(Finding("signature", where, fn.entries[0], fn.name, score,
                                     f"the same {len(shape.signature)} parameters and types as {fn.name}, its definition {score:.0%} alike"))
                break
        nearest = None
        if near[1] >= 0:
            fn = self.functions[near[1]]
            nearest = Finding("nearest", where, fn.entries[0], fn.name, near[0], f"nearest BFCL function: {fn.name}")
        return tuple(found), nearest

    def question_findings(self, text: str, where: str) -> list[Finding]:
        mine = grams(words(text, mask_numbers=True), 3)
        shared: Counter = Counter()
        for g in mine:
            hits = self.question_index.get(g, ())
            if len(hits) <= COMMON:
                shared.update(hits)
        best = (0.0, -1)
        for i, _ in shared.most_common(20):  # the common n-grams left out above still count in the exact share
            gs = self.questions[i][2]
            best = max(best, (len(gs & mine) / len(gs), i))
        if best[0] < CONTAINMENT:
            return []
        entry, question, _ = self.questions[best[1]]
        short = question if len(question) <= 80 else question[:77] + "..."
        return [Finding("question", where, entry, short, best[0], f"{best[0]:.0%} of the word 3-grams of {entry}'s question are in this turn")]


@functools.lru_cache(maxsize=1)
def bfcl_index() -> BfclIndex:
    return BfclIndex()


def _tool_shape(t: Tool) -> Shape:
    return Shape.of(t.name, t.description or "", t.parameters or {})


def audit_row(ex: Example, index: BfclIndex) -> dict[str, Any]:
    """One row's findings and each offered tool's nearest BFCL function."""
    findings: list[Finding] = []
    nearest: list[dict[str, Any]] = []
    offered = set()
    for t in ex.tools:
        offered.add(fold_name(t.name))
        found, near = index.tool_findings(_tool_shape(t), f"tool {t.name}")
        findings += found
        if near is not None:
            nearest.append({"tool": t.name, "entry": near.entry, "bfcl": near.bfcl, "score": round(near.score, 3)})
    called = [c for m in ex.messages for c in (m.tool_calls or [])] + list(ex.calls or [])
    for c in called:
        if fold_name(c.name) not in offered and fold_name(c.name) in index.by_name:
            fn = index.functions[index.by_name[fold_name(c.name)][0]]
            findings.append(Finding("name", f"called {c.name}", fn.entries[0], fn.name, 1.0, f"calls BFCL's {fn.name} by name"))
    for n, m in enumerate(ex.messages):
        if m.role == "user" and m.content:
            findings += index.question_findings(m.content, f"user turn {n + 1}")
    unique = {(f.kind, f.where, f.entry): f for f in findings}
    return {"id": ex.id, "source": ex.meta.get("source"), "flagged": bool(unique),
            "blocking": any(f.kind in BLOCKING for f in unique.values()),
            "findings": [f.to_dict() for f in unique.values()], "nearest": nearest}


@dataclass
class AuditSummary:
    rows: int = 0
    flagged: int = 0
    blocking: int = 0  # rows with a finding of a BLOCKING kind
    by_kind: Counter = field(default_factory=Counter)  # rows with a finding of each kind
    by_source: dict[str, list[int]] = field(default_factory=dict)  # source -> [rows, flagged]
    entries: Counter = field(default_factory=Counter)  # BFCL entries named, with the rows naming them
    first: list[dict[str, Any]] = field(default_factory=list)  # the first flagged rows' reports

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "flagged": self.flagged, "blocking": self.blocking, "by_kind": dict(self.by_kind), "by_source": self.by_source,
                "entries": dict(self.entries.most_common(50)),
                "thresholds": {"description": DESCRIPTION, "parameter_descriptions": PARAMETERS, "signature_text": SIGNATURE_TEXT,
                               "question_containment": CONTAINMENT}}

    def line(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in self.by_kind.most_common()) or "none"
        return (f"{self.flagged} of {self.rows} rows resemble BFCL entries, {self.blocking} by definition or question "
                f"(rows per kind: {kinds})")

    def blocking_report(self, limit: int = 10) -> str:
        """The first rows that stop training, one line each: the row, the entry, the kind and why."""
        lines = [f"row {r['id']}: " + "; ".join(f"{f['entry']} ({f['kind']}, {f['where']}: {f['why']})" for f in r["findings"] if f["kind"] in BLOCKING)
                 for r in self.first if r["blocking"]]
        return "\n".join(lines[:limit]) + (f"\n… and {self.blocking - limit} more rows" if self.blocking > limit else "")

    def markdown(self, limit: int = 40) -> str:
        lines = ["# Benchmark audit", "", self.line() + ".", "", "| source | rows | flagged |", "|---|---|---|"]
        lines += [f"| {s} | {n} | {f} |" for s, (n, f) in sorted(self.by_source.items())]
        lines += ["", "| row | BFCL entry | kind | where | why |", "|---|---|---|---|---|"]
        for r in self.first[:limit]:
            for f in r["findings"]:
                lines.append(f"| {r['id']} | {f['entry']} | {f['kind']} | {f['where']} | {f['why'].replace('|', '/')} |")
        return "\n".join(lines) + "\n"


def audit_examples(examples: Iterable[Example], report: Path | None = None, index: BfclIndex | None = None) -> AuditSummary:
    """Audit every row; with `report`, write one JSON line per row (all or nothing)."""
    from funreason.formats.jsonl import write_jsonl_atomic

    index = index or bfcl_index()
    summary = AuditSummary()
    rows = []
    for ex in examples:
        r = audit_row(ex, index)
        src = str(r["source"] or "no source")
        counts = summary.by_source.setdefault(src, [0, 0])
        summary.rows += 1
        counts[0] += 1
        summary.blocking += r["blocking"]
        if r["flagged"]:
            summary.flagged += 1
            counts[1] += 1
            summary.by_kind.update({f["kind"] for f in r["findings"]})
            summary.entries.update({f["entry"] for f in r["findings"]})
            if len(summary.first) < 200:
                summary.first.append(r)
        if report is not None:
            rows.append(r)
    if report is not None:
        write_jsonl_atomic(report, rows)
    return summary


@dataclass
class AuditConfig:
    """`funreason data audit`'s settings."""

    data: str = field(default="", metadata=cli("Training data (any format the readers take).", argument=True, required=True))
    out: str = field(default="", metadata=cli("Folder for audit.jsonl (every row) and audit.md (default: beside DATA, DATA.audit/).", "--out", "-o"))
    format: str = field(default="auto", metadata=cli("Input format: auto, native, xlam, openai, bfcl.", "--format", "-f"))

    def validate(self) -> "AuditConfig":
        if not self.data or not Path(self.data).exists():
            raise ValueError(f"{self.data or 'DATA'}: no such file")
        return self

    @property
    def folder(self) -> Path:
        return Path(self.out) if self.out else Path(f"{self.data}.audit")


def audit_file(data: str | Path, out: Path, format: str = "auto") -> AuditSummary:
    """Audit a training file; write `out/audit.jsonl` (every row) and `out/audit.md`."""
    from funreason.formats import Reader

    out.mkdir(parents=True, exist_ok=True)
    summary = audit_examples(Reader(data, format=format), out / "audit.jsonl")
    write_text_atomic(out / "audit.md", summary.markdown())
    write_text_atomic(out / "audit.json", json.dumps(summary.to_dict(), indent=2))
    return summary
