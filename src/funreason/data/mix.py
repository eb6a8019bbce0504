"""The documented training mix of the open sources, with a held-out split per source and no BFCL.

`build_mix` reads every source (`opendata.read_source`), then, in this order:
1. **BFCL de-duplication** — a record goes (kind `bfcl_query` / `bfcl_function`) when its user turn
   equals, after case and space folding, a user turn of any BFCL question file, or when it calls a
   function whose name is a BFCL function name. BFCL is the held-out benchmark: never trained on.
   Then the benchmark audit (`data.audit`, as `funreason data audit` runs it): a record goes (kind
   `bfcl_audit:<kind>`) when a tool it offers or calls resembles a BFCL function by definition under
   any name, or a user turn contains most of a BFCL question; `mix.json` counts the records kept
   that only share a BFCL function's name (`bfcl_audit_name_only`).
   A conversation is checked on every assistant turn's calls: every turn is learned.
2. **FCDR's call check** (`check_calls`, on by default, on every assistant turn) — a record goes (kind `calls:type`,
   `calls:missing_required`, …, counted per source) when its reference calls do not fit its own
   tools: a number written as a string, an array cut to a string, an unknown parameter. The sources
   carry such answers (Seal-Tools writes some ids and amounts as strings, ToolRL some arrays as
   cut-off text); trained on, they teach the very mistakes BFCL's checker counts.
3. **Held-out split** — per source, `heldout` records chosen by a stable hash of their group (a
   glaive dialogue is one group, merged with any dialogue that repeats one of its prompts, so no
   turn of a held-out dialogue, nor a copy of one, is trained on). With `multi_turn`, the
   whole-conversation sources are read too (glaive's dialogues whole instead of cut): a record is a
   conversation, so a conversation is held out or trained on whole.
4. **Irrelevance rows** (`irrelevance` share of the training rows) — a training query offered the
   tools of an unrelated record (no shared tool), answered with a statement. They teach what BFCL's
   irrelevance category checks: no call when no function fits. Marked `meta.augmented`.
5. **Joined rows** (`joined` share of the training rows, none by default) — two single-call
   training requests of one source asked as one ("… Also: …"), answered with both calls: half call
   the same function twice (what BFCL's parallel category asks), half two functions
   (parallel_multiple). The sources have few rows of either kind. Marked `meta.augmented: joined`.
6. **Reasoning** — records that bring their own (ToolRL) keep it (`meta.reasoning_source: data`); the
   others get a short templated one written from the reference answer (`template`): which function
   fits and where each argument comes from; each earlier assistant turn of a conversation gets one
   written from its own answer (a reply after a tool result: that it reports the result). No strong teacher runs offline; this stands in for it,
   and says so in every row and in `mix.json`.

Writes `train.jsonl`, `heldout.jsonl` (native records) and `mix.json` (counts per source and step).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from funreason.config import cli
from funreason.calls import format_python_calls
from funreason.fit import check_calls
from funreason.formats import bfcl
from funreason.formats.jsonl import write_jsonl_atomic, write_text_atomic
from funreason.data import open_dir
from funreason.data.open_sources import DEFAULT_SOURCES, MULTI_TURN_SOURCES, SOURCES, SourceReport, read_source, source_folder
from funreason.schema import Call, Example, Message

MIX_MARKER = ".funreason-mix"  # a folder data mix writes (its files may be missing after a failed write)

_SPACE = re.compile(r"\s+")
_GROUP = re.compile(r"^(glaive-\d+)-\d+$")
BFCL_SKIP = ("format_sensitivity",)  # its rows repeat other categories' questions in other formats


@dataclass
class MixConfig:
    """Every setting of `funreason data mix`."""

    fc_open: str = field(default="", metadata=cli(
        "A folder of the open sources laid out as the bundled copy (default: the copy installed with FunReason)."))
    out: str = field(default="mix", metadata=cli("Folder for train.jsonl, heldout.jsonl, mix.json, mix.md (a new, empty or earlier mix's folder).",
                                                 "--out", "-o"))
    sources: tuple[str, ...] = field(default=DEFAULT_SOURCES, metadata=cli(
        f"Comma-separated sources, of {', '.join(SOURCES)}.", csv=True))
    heldout: int = field(default=25, metadata=cli("Records held out per source."))
    irrelevance: float = field(default=0.1, metadata=cli("Irrelevance rows added, as a share of the training rows."))
    reasoning: str = field(default="template", metadata=cli("template or none: what rows without their own reasoning get."))
    joined: float = field(default=0.0, metadata=cli("Rows joining two requests into one with both calls, as a share of the training rows."))
    seed: int = field(default=0, metadata=cli("Seed of the split and of the irrelevance rows."))
    check_calls: bool = field(default=True, metadata=cli("Drop records whose reference calls do not fit their tools (FCDR's call check)."))
    multi_turn: bool = field(default=False, metadata=cli(
        f"Add the whole-conversation sources ({', '.join(MULTI_TURN_SOURCES)}); glaive's dialogues are then read whole "
        "instead of cut into one record per turn."))

    def validate(self) -> "MixConfig":
        if self.fc_open and not Path(self.fc_open).is_dir():
            raise ValueError(f"--fc-open {self.fc_open!r}: no such folder")
        if not self.out:
            raise ValueError("--out is required")
        out = Path(self.out)
        if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "mix.json").exists() and not (out / MIX_MARKER).exists())):
            raise ValueError(f"{out} holds files that are not an earlier mix's; choose another --out")
        self.sources = tuple(s for s in self.sources if s)
        if self.multi_turn:  # glaive's dialogues once: whole, not also cut into turns
            self.sources = tuple(dict.fromkeys(["glaive-dialogues" if s == "glaive" else s for s in self.sources] + list(MULTI_TURN_SOURCES)))
        if {"glaive", "glaive-dialogues"} <= set(self.sources):
            raise ValueError("glaive and glaive-dialogues are the same dialogues (cut into turns, and whole): choose one")
        if not self.sources:
            raise ValueError(f"--sources names no source; choose from {', '.join(SOURCES)}")
        unknown = set(self.sources) - set(SOURCES)
        if unknown:
            raise ValueError(f"unknown sources {sorted(unknown)}; choose from {', '.join(SOURCES)}")
        if self.heldout < 0 or not 0 <= self.irrelevance < 1 or not 0 <= self.joined < 1:
            raise ValueError("--heldout must be ≥ 0, --irrelevance and --joined in [0, 1)")
        if self.reasoning not in ("template", "none"):
            raise ValueError(f"--reasoning must be template or none, not {self.reasoning!r}")
        return self


@dataclass
class MixSummary:
    """What `build_mix` did, per source; `mix.json` is its `to_dict`."""

    sources: dict[str, SourceReport]
    bfcl_dropped: dict[str, Counter] = field(default_factory=dict)  # source -> kind -> count
    check_dropped: dict[str, Counter] = field(default_factory=dict)  # source -> verdict kind -> count
    train: Counter = field(default_factory=Counter)  # source -> rows
    heldout: Counter = field(default_factory=Counter)
    irrelevance: int = 0
    joined: Counter = field(default_factory=Counter)  # same_function | two_functions -> rows
    reasoning: Counter = field(default_factory=Counter)  # data | template | none -> training rows
    name_only: Counter = field(default_factory=Counter)  # source -> kept records that only share a BFCL function's name

    @property
    def train_rows(self) -> int:
        """Rows of train.jsonl: the sources' training records and the rows added to them."""
        return sum(self.train.values()) + self.irrelevance + sum(self.joined.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": {s: r.to_dict() for s, r in self.sources.items()},
            "bfcl_dropped": {s: dict(c) for s, c in self.bfcl_dropped.items()},
            "check_dropped": {s: dict(c) for s, c in self.check_dropped.items()},
            "train": dict(self.train), "heldout": dict(self.heldout), "irrelevance_rows": self.irrelevance,
            "joined_rows": dict(self.joined),
            "reasoning": dict(self.reasoning),
            "bfcl_audit_name_only": dict(self.name_only),
            "reasoning_note": "rows without their own reasoning carry a templated one written from the reference "
                              "answer (meta.reasoning_source = template), standing in for a teacher.",
        }

    def markdown(self) -> str:
        lines = ["| source | units | records | skipped (kind: n) | BFCL overlap dropped | call check dropped | train | held out |",
                 "|---|---|---|---|---|---|---|---|"]
        def kinds(counts: Counter) -> str:
            return ", ".join(f"{k}: {v}" for k, v in counts.items()) or "–"

        for s, r in self.sources.items():
            lines.append(f"| {s} | {r.units} | {r.examples} | {kinds(r.skipped)} | {kinds(self.bfcl_dropped.get(s, Counter()))} "
                         f"| {kinds(self.check_dropped.get(s, Counter()))} | {self.train[s]} | {self.heldout[s]} |")
        joined = ", ".join(f"{k} {v}" for k, v in self.joined.items()) or "none"
        lines += ["", f"Irrelevance rows added to training: {self.irrelevance}. Joined rows: {joined}. Reasoning of training rows: "
                  + ", ".join(f"{k} {v}" for k, v in self.reasoning.items()) + "."]
        return "\n".join(lines)


def _fold(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


def bfcl_index() -> tuple[set[str], set[str]]:
    """(folded user turns, function names) of every BFCL question file."""
    queries: set[str] = set()
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("role") == "user" and isinstance(node.get("content"), str):
                queries.add(_fold(node["content"]))
            if isinstance(node.get("name"), str) and "parameters" in node:
                names.add(node["name"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for path in sorted(bfcl.data_dir().glob("BFCL_v*.json")):
        if any(s in path.name for s in BFCL_SKIP):
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                walk(json.loads(line))
    return queries, names


def bfcl_overlap(ex: Example, queries: set[str], names: set[str]) -> str | None:
    """How `ex` touches BFCL, given `bfcl_index()`'s queries and names: `bfcl_query` when one of its
    user turns equals a BFCL user turn after case and space folding, `bfcl_function` when it calls a
    function bearing a BFCL function's name; None when it does neither."""
    if any(m.role == "user" and _fold(m.content) in queries for m in ex.messages):
        return "bfcl_query"
    if any(c.name in names for c in every_call(ex)):
        return "bfcl_function"
    return None


def every_call(ex: Example) -> list[Call]:
    """The calls of every assistant turn of `ex`: its history's and its answer's."""
    return [c for m in ex.messages if m.role == "assistant" for c in m.tool_calls or []] + ex.calls


def check_turns(ex: Example) -> Any:
    """FCDR's call check on every assistant turn's calls (`check_calls`): the first verdict, or None."""
    for calls in [m.tool_calls for m in ex.messages if m.role == "assistant" and m.tool_calls] + [ex.calls]:
        if calls and (verdict := check_calls(calls, ex.tools)):
            return verdict
    return None


def template_turns(ex: Example) -> int:
    """Give each earlier assistant turn of a conversation without reasoning a templated one, written
    from that turn's answer and the history before it (`template_reasoning`); how many it gave."""
    made = 0
    for i, m in enumerate(ex.messages):
        if m.role == "assistant" and m.reasoning is None and (m.tool_calls or m.content):
            turn = Example(ex.id, ex.tools, ex.messages[:i], answer=list(m.tool_calls) if m.tool_calls else m.content)
            m.reasoning = template_reasoning(turn)
            made += 1
    return made


def _hash(key: str, seed: int) -> str:
    return hashlib.sha1(f"{seed}:{key}".encode()).hexdigest()


def group_of(ex: Example) -> str:
    m = _GROUP.match(ex.id)
    return m.group(1) if m else ex.id


def split_groups(examples: list[Example]) -> dict[str, str]:
    """Each record's group for the held-out split: its dialogue (`group_of`), merged with every
    dialogue that shows a record of the same user turns (whatever tools it offers). glaive's demo
    repeats dialogues, sometimes with one tool more; split apart, a held-out row would be trained on
    word for word. A group is named by the least of its dialogues' names, so records without a copy
    keep the group `group_of` gives them."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for ex in examples:
        turns = [m.content for m in ex.messages if m.role == "user"]
        prompt = "\uffff" + json.dumps(turns, ensure_ascii=False)  # sorts after names
        a, b = root(group_of(ex)), root(prompt)
        parent[max(a, b)] = min(a, b)
    return {ex.id: root(group_of(ex)) for ex in examples}


def template_reasoning(ex: Example) -> str:
    """A short reasoning written from the reference answer (the offline stand-in for a teacher): which
    function fits, each value as the request gives it, and the call it leads to, written as the
    answer writes it (so the answer follows from the reasoning token for token). Kept short: a CPU
    decodes every token of it at evaluation."""
    if isinstance(ex.answer, str) and ex.messages and ex.messages[-1].role == "tool":
        return "The call has returned its result, so I tell the user what it says, in words, without another call."
    if isinstance(ex.answer, str):
        names = ", ".join(t.name for t in ex.tools) or "none"
        return (f"The functions on offer are {names}. None of them can be called for this request with what the user "
                "has given, so I answer in words without a call.")
    parts = []
    for c in ex.calls:
        values = " and ".join(f"{k} is {json.dumps(v, ensure_ascii=False)}" for k, v in c.arguments.items()) or "it needs no values"
        parts.append(f"{c.name} fits the request. From the request, {values}. So I call {format_python_calls([c])[1:-1]}.")
    lead = "" if len(parts) == 1 else f"The request needs {len(parts)} calls. "
    return lead + " ".join(parts)


NO_FIT = "None of the functions on offer fits this request, so I make no call."  # the irrelevance rows' answer


def irrelevance_rows(pool: list[Example], k: int, seed: int) -> list[Example]:
    """`k` statement rows, each a record's query offered tools that cannot answer it: its own tools
    less the ones its answer calls, where any remain (a near miss: the distractors of the same
    domain that BFCL's irrelevance entries resemble, and the same query answered with a call
    elsewhere in training, so the pair teaches the difference), else the tools of a record that
    shares none of its own."""
    ranked = sorted(pool, key=lambda e: _hash(e.id + "/irr", seed))
    rows = []
    for i, ex in enumerate(ranked[:k]):
        called = {c.name for c in ex.calls or []}
        tools = [t for t in ex.tools if t.name not in called]
        near = bool(tools)
        if not near:
            other = ranked[(i + len(ranked) // 2) % len(ranked)]
            if other is ex or {t.name for t in ex.tools} & {t.name for t in other.tools} or not other.tools:
                continue
            tools = other.tools
        rows.append(Example(id=f"{ex.id}-irrelevance", tools=tools, messages=[Message("user", ex.query)], answer=NO_FIT,
                            meta={"source": ex.meta.get("source", "unknown"), "augmented": "irrelevance", "query_from": ex.id,
                                  "near_miss": near}).validate())
    return rows


def joined_rows(pool: list[Example], k: int, seed: int) -> list[Example]:
    """Up to `k` rows, each two single-call requests of one source asked as one and answered with
    both calls: the first half pairs requests that call the same function (BFCL's parallel), the
    rest requests that call different functions (parallel_multiple). Pairs are taken in turn from
    each function (and then each source), so no one of them fills the share. The row offers the
    union of the two rows' tools; a pair whose tools share a name with different definitions is
    passed over, as are calls without arguments, and no request is used twice. Fewer than `k` when
    the pool has too few pairs of a kind."""
    ranked = sorted((e for e in pool if len(e.calls or []) == 1 and e.calls[0].arguments and len(e.messages) == 1),
                    key=lambda e: _hash(e.id + "/join", seed))
    rows: list[Example] = []

    def join(a: Example, b: Example, kind: str) -> bool:
        tools = {t.name: t for t in a.tools}
        if any(t.name in tools and tools[t.name] != t for t in b.tools):
            return False
        tools.update((t.name, t) for t in b.tools)
        rows.append(Example(id=f"{a.id}+{b.id}", tools=list(tools.values()),
                            messages=[Message("user", f"{a.query.rstrip()} Also: {b.query.lstrip()}")],
                            answer=[*a.calls, *b.calls],
                            meta={"source": a.meta.get("source", "unknown"), "augmented": "joined", "kind": kind,
                                  "query_from": [a.id, b.id]}).validate())
        return True

    def take_in_turn(groups: list[list[Example]], kind: str, want: int) -> None:
        start = len(rows)
        while len(rows) - start < want and any(len(g) >= 2 for g in groups):
            for g in groups:
                if len(rows) - start >= want:
                    break
                a = g.pop(0) if len(g) >= 2 else None
                partner = next((b for b in g if (b.calls[0].name == a.calls[0].name) == (kind == "same_function")), None) if a else None
                if partner is not None and join(a, partner, kind):
                    g.remove(partner)

    by_function: dict[tuple[str, str], list[Example]] = {}
    by_source: dict[str, list[Example]] = {}
    for ex in ranked:
        by_function.setdefault((ex.meta.get("source", ""), ex.calls[0].name), []).append(ex)
    take_in_turn(list(by_function.values()), "same_function", k // 2)
    used = {i for r in rows for i in r.meta["query_from"]}  # each request once: a popped one is never offered again
    for ex in ranked:
        if ex.id not in used:
            by_source.setdefault(ex.meta.get("source", ""), []).append(ex)
    take_in_turn(list(by_source.values()), "two_functions", k - len(rows))
    return rows


def build_mix(cfg: MixConfig) -> MixSummary:
    cfg.validate()
    from funreason.data.audit import audit_row, bfcl_index as audit_index

    queries, names = bfcl_index()
    index = audit_index()
    summary = MixSummary(sources={})
    train: list[Example] = []
    heldout: list[Example] = []
    for source in cfg.sources:
        examples, report = read_source(source, source_folder(Path(cfg.fc_open) if cfg.fc_open else open_dir(), source))
        summary.sources[source] = report
        dropped: Counter = Counter()
        checked: Counter = Counter()
        kept = []
        for ex in examples:
            if overlap := bfcl_overlap(ex, queries, names):
                dropped[overlap] += 1
            elif (audit := audit_row(ex, index))["blocking"]:
                dropped["bfcl_audit:" + next(f["kind"] for f in audit["findings"] if f["kind"] != "name")] += 1
            elif cfg.check_calls and (verdict := check_turns(ex)):
                checked[verdict.kind] += 1
            else:
                summary.name_only[source] += audit["flagged"]
                kept.append(ex)
        summary.bfcl_dropped[source] = dropped
        summary.check_dropped[source] = checked
        group = split_groups(kept)
        held: set[str] = set()
        for g in sorted(set(group.values()), key=lambda g: _hash(g, cfg.seed)):  # whole groups, until the count is reached
            if sum(group[e.id] in held for e in kept) >= cfg.heldout:
                break
            held.add(g)
        for ex in kept:
            (heldout if group[ex.id] in held else train).append(ex)
        summary.heldout[source] = sum(group[e.id] in held for e in kept)
        summary.train[source] = len(kept) - summary.heldout[source]
    extra = irrelevance_rows([e for e in train if e.calls and not e.messages[:-1]], round(cfg.irrelevance * len(train)), cfg.seed)
    summary.irrelevance = len(extra)
    joined = joined_rows([e for e in train if e.calls], round(cfg.joined * len(train)), cfg.seed)
    summary.joined = Counter(e.meta["kind"] for e in joined)
    train += extra + joined
    for ex in train:
        if ex.reasoning:
            ex.meta["reasoning_source"] = "data"
        elif cfg.reasoning == "template":
            ex.reasoning = template_reasoning(ex)
            ex.meta["reasoning_source"] = "template"
        else:
            ex.meta["reasoning_source"] = "none"
        if ex.meta.get("conversation") and cfg.reasoning == "template" and template_turns(ex):
            ex.meta["reasoning_source"] = "template"  # every turn is learned: each earlier one gets its reasoning too
        summary.reasoning[ex.meta["reasoning_source"]] += 1
    train.sort(key=lambda e: _hash(e.id, cfg.seed))  # sources interleaved, the same on every run
    out = Path(cfg.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        # the set is replaced as one: an earlier mix's files go first and mix.json comes last, so a
        # write that fails part-way never leaves new training rows beside an older mix's held-out rows;
        # the marker, first, lets the same command write into the folder such a failure left
        write_text_atomic(out / MIX_MARKER, "made by funreason data mix\n")
        for name in ("mix.json", "mix.md", "heldout.jsonl", "train.jsonl"):
            (out / name).unlink(missing_ok=True)
        for name, rows in (("train.jsonl", train), ("heldout.jsonl", heldout)):
            write_jsonl_atomic(out / name, (e.to_dict() for e in rows))
        write_text_atomic(out / "mix.md", summary.markdown() + "\n")
        write_text_atomic(out / "mix.json", json.dumps({"config": {**cfg.__dict__, "sources": list(cfg.sources)}, **summary.to_dict()},
                                                       indent=2, ensure_ascii=False))
    except OSError as e:  # a full disk says which folder it could not fill
        raise OSError(f"cannot write the mix to {out}: {e.strerror or e}") from None
    return summary
