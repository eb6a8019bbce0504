"""Writes the demo's bundled open data (src/funreason/data/bundled/open_demo_*.jsonl) from the carried open sources.

    .venv/bin/python scripts/make_demo_data.py            # the copy in src/funreason/data/open
    .venv/bin/python scripts/make_demo_data.py OTHER_DIR  # another folder laid out the same way
    .venv/bin/python scripts/make_demo_data.py --conversations [OTHER_DIR]  # only the conversation files

The open mix (`funreason data mix`) without templated reasoning for calls (the demo's FCDR teacher
writes it), statements with theirs; only rows whose prompt is short (a CPU trains on them in
minutes): at most MAX_CHARS characters of tools and turns, only calls that take arguments, and
statements at 15% of the rows (irrelevance rows first). Deterministic: the same files each run.

`open_demo_conversations_{train,heldout}.jsonl`: whole conversations of the multi-turn sources
(`data mix --multi-turn`'s split: a conversation is trained on or held out whole), the shortest with
at least CONV_TURNS assistant turns, one of them a call. A held-out conversation shares no user turn
with any of the demo's training rows (the single-turn glaive rows are cut from the same dialogues).
`--conversations` writes only these two, leaving the single-turn files, on which the demo's figures
were measured, as they are.
"""

import json
import sys
import tempfile
from pathlib import Path

from funreason.formats import Reader
from funreason.data.mix import MixConfig, build_mix, template_reasoning

MAX_CHARS = 1800
TRAIN_ROWS, STATEMENTS, HELDOUT_PER_SOURCE = 240, 36, 10
CONV_MAX_CHARS, CONV_TURNS, CONV_TRAIN, CONV_HELDOUT = 900, 2, 8, 6
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


def user_turns(ex) -> set[str]:
    return {" ".join(m.content.split()).lower() for m in ex.messages if m.role == "user"}


def short_conversations(rows, exclude: set[str], k: int) -> list:
    """The `k` shortest conversations with CONV_TURNS assistant turns or more, a call among them and
    all calls with values, none sharing a user turn with `exclude`; one source after another in turn,
    so each source has its place."""
    fits = sorted((ex for ex in rows if ex.meta.get("conversation") == "whole" and ex.meta["assistant_turns"] >= CONV_TURNS
                   and size(ex) <= CONV_MAX_CHARS and not user_turns(ex) & exclude
                   and (any(m.tool_calls for m in ex.messages) or bool(ex.calls))
                   and all(c.arguments for m in ex.messages for c in m.tool_calls or []) and takes_values(ex)),
                  key=lambda ex: (size(ex), ex.id))
    by_source: dict[str, list] = {}
    for ex in fits:
        by_source.setdefault(ex.meta["source"], []).append(ex)
    picked = []
    while len(picked) < k and any(by_source.values()):
        for source in sorted(by_source):
            if by_source[source] and len(picked) < k:
                picked.append(by_source[source].pop(0))
    return picked


def conversations(fc_open: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        build_mix(MixConfig(fc_open=fc_open, out=tmp, sources=("glaive-dialogues", "tooltalk", "api-bank"), heldout=25,
                            irrelevance=0.0, reasoning="none"))
        trained = [ex for name in ("open_demo_train.jsonl", "sample_xlam.jsonl") for ex in Reader(HERE / name)]
        train = short_conversations(list(Reader(Path(tmp) / "train.jsonl")), set(), CONV_TRAIN)
        seen = set().union(*map(user_turns, trained + train))
        # fewest assistant turns first: each held-out turn is one more prompt of each of the demo's evaluations
        held = sorted(short_conversations(list(Reader(Path(tmp) / "heldout.jsonl")), seen, CONV_HELDOUT),
                      key=lambda ex: (ex.meta["assistant_turns"], size(ex), ex.id))
    for name, rows in (("open_demo_conversations_train.jsonl", train), ("open_demo_conversations_heldout.jsonl", held)):
        (HERE / name).write_text("".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in rows), encoding="utf-8")
        print(name, len(rows), "conversations,", sum(e.meta["assistant_turns"] for e in rows), "assistant turns")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--conversations"]
    if len(args) == len(sys.argv) - 1:
        main(args[0] if args else "")
    conversations(args[0] if args else "")
