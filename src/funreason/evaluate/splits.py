"""BFCL's entries split into *dev* (studied while this project designed data and settings) and *test*
(never read entry by entry), by a committed registry, and the ledger of every look at test.

Invariant: `bfcl_splits.json` is the one record of which entries are dev. It lists the dev ids of
every category with the SHA-256 of that list, and the count and SHA-256 of the test ids (the
rest), so a BFCL release whose entries differ from the registry's is refused rather than split
anew. The rule it was made by (`RULE`, `build_registry`) is written down once; changing the
registry is a commit anyone can see. Every evaluation that scores a test entry appends one line to
the ledger (date, commit, model, settings, counts), so how often the test set was looked at is on
record; a ledger that cannot be written stops the run before any score is reported.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

REGISTRY = Path(__file__).with_name("bfcl_splits.json")
SPLITS = ("dev", "test", "all")
LEDGER_NAME = "bfcl_test_ledger.jsonl"

# ids (BFCL's own numbering, which starts at 0) below these are dev: entries 1–200 of each single-turn
# category as `--limit 200` counts them (ids 0–199), simple_python 1–300 (ids 0–299), per the
# contamination audit of eb7bac0; every other category (live, multi-turn, memory, web search)
# was never scored here and is test throughout
DEV_BELOW = {"simple_python": 300, "simple_java": 200, "simple_javascript": 200, "multiple": 200,
             "parallel": 200, "parallel_multiple": 200, "irrelevance": 200}
RULE = ("dev: ids 0-199 (the first 200 entries) of simple_java, simple_javascript, multiple, parallel, parallel_multiple and "
        "irrelevance, and ids 0-299 of simple_python: the entries whose misses were read, or that selected settings or "
        "designed generated rows (docs/evaluation.md). test: every other entry, and every entry of the live, multi-turn, "
        "memory and web-search categories (format sensitivity re-asks entries of the others under their ids).")


def id_hash(ids: Iterable[str]) -> str:
    """The SHA-256 of ids, one a line, sorted: the same set gives the same hash."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


def _number(entry_id: str) -> int:
    """`simple_python_12` → 12; `live_simple_3-2-0` → 3 (BFCL's running number)."""
    return int(entry_id.rsplit("_", 1)[1].split("-", 1)[0])


@dataclass(frozen=True)
class CategorySplit:
    entries: int
    dev: frozenset[str]
    test_count: int
    test_sha256: str

    def count(self, split: str) -> int:
        """How many of the category's entries `split` (dev, test or all) holds."""
        return {"dev": len(self.dev), "test": self.test_count}.get(split, self.entries)


@dataclass(frozen=True)
class Registry:
    """The committed split: per category its dev ids, and the count and hash of its test ids."""

    categories: dict[str, CategorySplit]
    sha256: str  # of every dev id

    def split_of(self, entry_id: str) -> str:
        from funreason.formats.bfcl import category_of

        cat = self.categories.get(category_of(entry_id))
        if cat is None:
            raise ValueError(f"{entry_id}: category not in the split registry {REGISTRY.name}")
        return "dev" if entry_id in cat.dev else "test"

    def select(self, category: str, ids: list[str], split: str) -> list[str]:
        """The ids of `split` among a category's `ids` (all of them, in the data's order): ValueError
        when they are not the entries the registry was made from."""
        cat = self.categories.get(category)
        if cat is None:
            raise ValueError(f"category {category!r} is not in the split registry {REGISTRY}")
        test = [i for i in ids if i not in cat.dev]
        if len(ids) != cat.entries or len(test) != cat.test_count or id_hash(test) != cat.test_sha256:
            raise ValueError(f"BFCL's {category} entries ({len(ids)}) are not the ones the split registry was made from "
                             f"({cat.entries}); the installed bfcl-eval differs from the registry's, so no entry can be said to be dev or test")
        return ids if split == "all" else [i for i in ids if (i in cat.dev) == (split == "dev")]


def load_registry(path: Path = REGISTRY) -> Registry:
    """The committed registry, its dev list checked against its hash (an edited list is refused)."""
    held = json.loads(path.read_text(encoding="utf-8"))
    cats = {}
    for name, c in held["categories"].items():
        dev = frozenset(c["dev"])
        if id_hash(dev) != c["dev_sha256"]:
            raise ValueError(f"{path}: the dev ids of {name} do not match their recorded hash; the registry was edited by hand")
        cats[name] = CategorySplit(c["entries"], dev, c["test"], c["test_sha256"])
    every = [i for c in cats.values() for i in c.dev]
    if id_hash(every) != held["dev_sha256"]:
        raise ValueError(f"{path}: the dev ids do not match the registry's hash")
    return Registry(cats, held["dev_sha256"])


def build_registry(data_dir: str | Path | None = None) -> dict[str, Any]:
    """The registry `RULE` gives for the installed BFCL question files (what `scripts/make_bfcl_splits.py`
    writes; the test of the committed file compares with it)."""
    from funreason.formats import bfcl

    d = Path(data_dir) if data_dir else bfcl.data_dir()
    cats: dict[str, Any] = {}
    for path in sorted(d.glob("BFCL_v*.json")):
        if "format_sensitivity" in path.name:  # not entries: lists of other categories' ids
            continue
        ids = [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        name = path.stem.split("_", 2)[2]  # BFCL_v4_<category>
        below = DEV_BELOW.get(name, 0)
        dev = [i for i in ids if _number(i) < below]
        test = [i for i in ids if _number(i) >= below]
        cats[name] = {"entries": len(ids), "test": len(test), "test_sha256": id_hash(test), "dev_sha256": id_hash(dev), "dev": dev}
    return {"about": "BFCL entries studied by this project (dev); every other entry is test. Made by scripts/make_bfcl_splits.py; "
                     "see docs/evaluation.md.", "rule": RULE, "bfcl_eval": _bfcl_version(),
            "dev_sha256": id_hash(i for c in cats.values() for i in c["dev"]), "categories": cats}


def _bfcl_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bfcl-eval")
    except PackageNotFoundError:
        return "unknown"


def wilson(correct: int, total: int, z: float = 1.96) -> tuple[float, float] | None:
    """The 95% Wilson interval of a share `correct / total` (None without entries)."""
    if total <= 0:
        return None
    return _wilson_share(correct / total, total, z)


def mean_interval(parts: list[tuple[float, int]], weights: list[float] | None = None, z: float = 1.96) -> tuple[float, float] | None:
    """A 95% interval of a weighted mean of independent accuracies (`(accuracy, entries)` each): how
    the leaderboard's aggregates are made. The normal approximation, each part's variance taken at
    its Wilson-adjusted share (p + 2)/(n + 4) so that a category at 0% or 100% still adds width; but
    never narrower than the Wilson interval of the mean share over the parts' effective entry count
    `1 / Σ((w_i / Σw)² / n_i)` (the total when parts are of equal size and weight, or weighted by
    their sizes), because with few entries per part the normal approximation is far too narrow
    (four categories of one entry each, all wrong: [0.0, 21.5] against 0 of 4's [0.0, 49.0]). With a
    hundred entries per part the two differ by a fraction of a point (the normal one gains from the
    parts' spread)."""
    parts = [(p, n) for p, n in parts if n > 0]
    if not parts:
        return None
    w = weights or [1.0] * len(parts)
    total = sum(w)
    mean = sum(wi * p for wi, (p, _) in zip(w, parts)) / total
    var = sum((wi / total) ** 2 * ((p * n + 2) / (n + 4)) * (1 - (p * n + 2) / (n + 4)) / (n + 4) for wi, (p, n) in zip(w, parts))
    half = z * math.sqrt(var)
    effective = 1.0 / sum((wi / total) ** 2 / n for wi, (_, n) in zip(w, parts))
    pooled = _wilson_share(mean, effective, z)
    return max(0.0, min(mean - half, pooled[0])), min(1.0, max(mean + half, pooled[1]))


def _wilson_share(p: float, total: float, z: float) -> tuple[float, float]:
    """`wilson` at a share rather than a count (a weighted mean's share need not be a whole count)."""
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def checkout_root() -> Path | None:
    """The git checkout this package runs from, if any (an installed wheel has none)."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / ".git").exists() and (root / "pyproject.toml").exists() else None


def default_ledger() -> Path:
    """`$FUNREASON_LEDGER`; else, in a checkout, its committed `experiments/bfcl_test_ledger.jsonl`;
    else the user cache's."""
    if os.environ.get("FUNREASON_LEDGER"):
        return Path(os.environ["FUNREASON_LEDGER"])
    root = checkout_root()
    if root is not None:
        return root / "experiments" / LEDGER_NAME
    from funreason.models.get import cache_dir

    return cache_dir() / LEDGER_NAME


def code_version() -> str:
    """The checkout's commit (with `+dirty` when files differ from it), else the package version."""
    root = checkout_root()
    if root is not None:
        try:
            head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=20, check=True).stdout.strip()
            dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=20).stdout.strip()
            return head + ("+dirty" if dirty else "")
        except (OSError, subprocess.SubprocessError):
            pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"funreason {version('funreason')}"
    except PackageNotFoundError:
        return "funreason (not installed, no checkout)"


def append_ledger(path: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """Append one look at the test set to the ledger (one JSON object a line, appended whole);
    OSError naming the file when it cannot be written."""
    line = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "commit": code_version(), **entry}
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(line, ensure_ascii=False, sort_keys=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if os.write(fd, data) != len(data):  # O_APPEND writes of one line land whole or fail
            raise OSError(f"{path}: the ledger line was cut short")
        os.fsync(fd)
    finally:
        os.close(fd)
    return line


def load_split(category: str, split: str, limit: int | None = None, data_dir: str | Path | None = None, skip: int = 0,
               registry: Registry | None = None) -> list[Any]:
    """A category's entries of `split`, in the data's order, `limit` of them after the first `skip`
    (of the split's entries, so `--skip` and `--limit` never reach outside it)."""
    from funreason.formats import bfcl, read_examples

    examples = read_examples(bfcl.question_file(category, data_dir))
    keep = set((registry or load_registry()).select(category, [ex.id for ex in examples], split))
    chosen = [ex for ex in examples if ex.id in keep]
    return chosen[skip:None if limit is None else skip + limit]


def with_intervals(scores: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each category's 95% Wilson interval (added to its scores as `interval`), and the intervals of the
    leaderboard aggregates over the scored categories (`mean_interval`, the aggregates' own weights)."""
    from funreason.evaluate import LIVE_AST, MULTI_TURN, NON_LIVE_OTHER, NON_LIVE_SIMPLE

    for s in scores.values():
        s["interval"] = wilson(s["correct"], s["total"])
    part = lambda c: (scores[c]["accuracy"], scores[c]["total"])  # noqa: E731
    simple = [c for c in NON_LIVE_SIMPLE if c in scores]
    non_live = [(c, 1.0 / len(simple)) for c in simple] + [(c, 1.0) for c in NON_LIVE_OTHER if c in scores]
    live = [(c, float(scores[c]["total"])) for c in LIVE_AST if c in scores]
    out = {"non_live_ast_scored": mean_interval([part(c) for c, _ in non_live], [w for _, w in non_live]) if non_live else None,
           "live_ast": mean_interval([part(c) for c, _ in live], [w for _, w in live]) if live else None}
    multi = [c for c in MULTI_TURN if c in scores]
    if multi:  # the scored multi-turn categories' unweighted mean, as Multi-turn overall weighs them
        out["multi_turn_scored"] = mean_interval([part(c) for c in multi])
    return out


def interval_text(interval: Any) -> str:
    """`[66.8, 83.3]` (percent), or `–`."""
    return "–" if not interval else f"[{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"
