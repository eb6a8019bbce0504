"""A self-refinement round's rollouts: the queries, each sample's checks and judgements, the kept
sample per query, and the round's counts.

Invariant: a query's samples are seeded by (run seed, round, query key, sample index), so a resumed
round samples what the uninterrupted one would; `kept.jsonl` follows the order of the source
queries, not the order in which judgements finished.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from funreason.errors import BackendError, SchemaError
from funreason.fcdr.judge import Judges, check_sample
from funreason.fcdr.prompts import functions_json
from funreason.formats import example_from_row
from funreason.formats.jsonl import BadLine, iter_json_rows, read_finished_rows, write_jsonl_atomic
from funreason.schema import Example
from funreason.selfrefine.config import SelfRefineConfig


@dataclass
class Query:
    key: str  # file:line of the source row, stable across runs
    ex: Example


def ends_inside_a_row(path: str | Path) -> bool:
    """Whether the file's last byte is not a newline: its last row was cut off while being written."""
    with open(path, "rb") as f:
        if f.seek(0, 2) == 0:
            return False
        f.seek(-1, 2)
        return f.read(1) != b"\n"


def load_queries(cfg: SelfRefineConfig, log: Callable[[str], None]) -> tuple[list[Query], set[str]]:
    """The source queries (with a reference answer) and the keys of FCDR's hard rows, which are
    added to the queries when they are not among them."""
    queries: list[Query] = []
    skipped: dict[str, int] = {}
    name = Path(cfg.data).name
    for where, raw in iter_json_rows(cfg.data):
        if cfg.limit is not None and len(queries) >= cfg.limit:
            break
        key = where.replace(str(Path(cfg.data)), name, 1)
        try:
            if isinstance(raw, BadLine):
                raise raw
            ex = example_from_row(raw, where, cfg.format)
        except SchemaError as e:
            skipped[f"{e.where}: {e.reason}"] = 1
            continue
        if ex.heldout:
            raise SchemaError("a held-out benchmark row (BFCL): never train on it", where)
        if ex.answer is None:
            skipped[f"{where}: no reference answer"] = 1
            continue
        queries.append(Query(key, ex))
    for problem in list(skipped)[:5]:
        log(f"skipped {problem}")
    if skipped:
        log(f"{len(skipped)} source rows skipped in all (unreadable or without a reference answer)")
    known = {q.key for q in queries}
    hard: set[str] = set()
    for path in cfg.hard:
        # an input file: a line that is not a hard row is named, not skipped; rows with many steps are
        # long (no line cap), and the last line of a refine that was stopped may be cut off
        rows = list(iter_json_rows(path, max_line_bytes=1 << 30))
        cut = ends_inside_a_row(path)
        for i, (where, row) in enumerate(rows):
            if isinstance(row, BadLine) and cut and i == len(rows) - 1:
                log(f"{where}: a row cut off (refine stopped while writing it; resume refine to finish it) is left out")
                continue
            if isinstance(row, BadLine):
                raise SchemaError(row.reason, where)
            key = row.get("key") if isinstance(row, dict) else None
            if not key or not isinstance(row.get("example"), dict):
                raise SchemaError("not a row of FCDR's hard.jsonl (a `key` and its `example`)", where)
            hard.add(key)
            if key not in known:
                try:
                    queries.append(Query(key, example_from_row(row["example"], f"{path}: {key}", "native")))
                    known.add(key)
                except SchemaError as e:
                    log(f"skipped hard row {key}: {e}")
    return queries, hard


def sample_seed(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "little")


async def judge_chunk(chunk: list[Query], texts: list[list[str]], hard: set[str], judges: Judges, r: int) -> tuple[list[dict], list[str]]:
    """Every query's samples checked, the passing ones judged, the best kept: one `samples.jsonl`
    row per query; a query whose judge failed (endpoint errors) gets no row and its error instead."""
    failures: list[str] = []

    async def one(q: Query, outs: list[str]) -> dict[str, Any] | None:
        checks = [check_sample(text, q.ex) for text in outs]
        functions = functions_json(q.ex)
        try:
            verdicts = await asyncio.gather(*[judges.judge(q.ex, functions, c.reasoning, c.answer) for c in checks if c.verdict is None])
        except BackendError as e:
            failures.append(str(e))
            return None
        it = iter(verdicts)
        samples = [{"text": text, "verdict": c.verdict.to_dict() if c.verdict else None, "reasoning": c.reasoning,
                    "answer": c.answer if c.answer is None or isinstance(c.answer, str) else [x.to_dict() for x in c.answer],
                    "judge": None if c.verdict else next(it).to_dict()} for text, c in zip(outs, checks)]
        passing = [i for i, s in enumerate(samples) if s["judge"] and s["judge"]["passed"]]
        best = max(passing, key=lambda i: samples[i]["judge"]["score"]) if passing else None
        kept = None
        if best is not None:
            s = samples[best]
            kept = {**q.ex.to_dict(), "reasoning": s["reasoning"], "answer": s["answer"]}
            kept["meta"] = {**(q.ex.meta or {}), "self_refine": {"round": r, "score": s["judge"]["score"], "samples": len(samples),
                                                                "passed_checks": sum(x["verdict"] is None for x in samples),
                                                                "passed_judge": len(passing), "hard": q.key in hard}}
        return {"key": q.key, "id": q.ex.id, "hard": q.key in hard, "samples": samples, "kept": best, "example": kept}

    rows = await asyncio.gather(*[one(q, outs) for q, outs in zip(chunk, texts)])
    return [row for row in rows if row is not None], failures


@dataclass
class RolloutStats:
    """A round's rollouts: what the checks and the judges made of the samples."""

    queries: int
    samples: int
    failed_checks: dict[str, int]  # by verdict kind
    passed_checks: int
    passed_judge: int
    unreadable_judgements: int
    kept: int
    hard_in: int
    hard_kept: int
    failed_queries: list[str]
    judge_errors: int

    def line(self, r: int) -> str:
        return (f"round {r}: {self.queries} queries, {self.samples} samples, {self.passed_checks} passed the checks, "
                f"{self.passed_judge} the judge, {self.kept} kept · hard: {self.hard_kept} of {self.hard_in} turned into data"
                + (f" · {self.unreadable_judgements} judgements unreadable (counted as failed)" if self.unreadable_judgements else ""))


def summarise_samples(path: Path, rd: Path, order: list[str], errors: int = 0) -> RolloutStats:
    """The round's counts from its samples file; its kept examples written to `rd/kept.jsonl` in the
    order of the queries' keys `order` (a query retried after a judge error lands later in the
    samples file; the next training must not see the data reordered by that)."""
    place = {key: i for i, key in enumerate(order)}
    rows = [row for row in read_finished_rows(path) if isinstance(row, dict) and "key" in row]
    rows.sort(key=lambda row: place.get(row["key"], len(place)))
    kept = [row["example"] for row in rows if row.get("example")]
    write_jsonl_atomic(rd / "kept.jsonl", kept)
    samples = [s for row in rows for s in row["samples"]]
    hard_rows = [row for row in rows if row.get("hard")]
    return RolloutStats(
        queries=len(rows), samples=len(samples),
        failed_checks=dict(Counter(s["verdict"]["kind"] for s in samples if s["verdict"])),
        passed_checks=sum(s["verdict"] is None for s in samples),
        passed_judge=sum(bool(s.get("judge") and s["judge"]["passed"]) for s in samples),
        unreadable_judgements=sum(bool(s.get("judge") and s["judge"].get("unreadable")) for s in samples),
        kept=len(kept), hard_in=len(hard_rows), hard_kept=sum(bool(row.get("example")) for row in hard_rows),
        failed_queries=sorted(row["key"] for row in rows if not row.get("example")), judge_errors=errors)
