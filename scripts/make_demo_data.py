"""Writes the demo's bundled open data (src/funreason/data/bundled/open_demo_*.jsonl) from the carried open sources.

    .venv/bin/python scripts/make_demo_data.py            # the copy in src/funreason/data/open
    .venv/bin/python scripts/make_demo_data.py OTHER_DIR  # another folder laid out the same way

The open mix (`funreason data mix`) without templated reasoning for calls (the demo's FCDR teacher
writes it), statements with theirs; only rows whose prompt is short (a CPU trains on them in
minutes): at most MAX_CHARS characters of tools and turns, only calls that take arguments, and
statements at 15% of the rows (irrelevance rows first). Deterministic: the same files each run.
"""

import json
import sys
import tempfile
from pathlib import Path

from funreason.formats import Reader
from funreason.data.mix import MixConfig, build_mix, template_reasoning

MAX_CHARS = 1800
TRAIN_ROWS, STATEMENTS, HELDOUT_PER_SOURCE = 240, 36, 10
HERE = Path(__file__).resolve().parent.parent / "src" / "funreason" / "data" / "bundled"


def size(ex) -> int:
    return len(json.dumps([t.to_dict() for t in ex.tools])) + sum(len(m.content) for m in ex.messages)


def takes_values(ex) -> bool:
    """Calls without arguments (a quarter of STE's) would teach a small model to write `f()`: the
    demo's short training keeps only calls that carry values, as every BFCL call does."""
    return all(c.arguments for c in ex.calls)


def main(fc_open: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        build_mix(MixConfig(fc_open=fc_open, out=tmp, sources=("seal-tools", "glaive", "ste"), heldout=80, reasoning="none"))
        fits = [ex for ex in Reader(Path(tmp) / "train.jsonl") if size(ex) <= MAX_CHARS and takes_values(ex)]
        # statements at 15%: irrelevance rows first (BFCL checks that skill), then glaive's replies
        statements = sorted((ex for ex in fits if isinstance(ex.answer, str)), key=lambda e: "augmented" not in e.meta)[:STATEMENTS]
        keep = {ex.id for ex in statements} | {ex.id for ex in fits if ex.calls}
        train = [ex for ex in fits if ex.id in keep][:TRAIN_ROWS]
        held, per = [], {}
        for ex in Reader(Path(tmp) / "heldout.jsonl"):
            if size(ex) <= MAX_CHARS and takes_values(ex) and per.get(ex.meta["source"], 0) < HELDOUT_PER_SOURCE:
                per[ex.meta["source"]] = per.get(ex.meta["source"], 0) + 1
                held.append(ex)
    for ex in train:
        if isinstance(ex.answer, str):  # FCDR keeps statements as they are: give them their reasoning here
            ex.reasoning, ex.meta["reasoning_source"] = template_reasoning(ex), "template"
    for name, rows in (("open_demo_train.jsonl", train), ("open_demo_heldout.jsonl", held)):
        (HERE / name).write_text("".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in rows), encoding="utf-8")
        print(name, len(rows))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
