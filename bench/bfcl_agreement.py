"""Agreement of FunReason's BFCL verdicts with the official checker, and their speed, side by side.

Generates many model outputs for every entry of the Python-language single-turn categories (correct
answers, every alternative acceptable value, wrong names, missing / extra / wrong parameters, type
changes, shuffled / dropped / repeated calls, reasoning prefixes, prose, code fences, positional
arguments, bare names, arithmetic, nested calls...), scores them with `funreason.evaluate` and with
the official bfcl-eval code (in its own environment: bench/bfcl_reference/make_env.sh), and
compares entry by entry. Prints JSON; lists the first disagreements.

    bench/bfcl_reference/make_env.sh /tmp/bfcl-ref
    python bench/bfcl_agreement.py --ref-python /tmp/bfcl-ref/bin/python
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import time
from pathlib import Path

from funreason.calls import format_value, split_think
from funreason.evaluate.bfcl_checker import SUPPORTED, score_entry
from funreason.formats import bfcl, read_examples


def call_text(name: str, args: dict) -> str:
    return f"{name}(" + ", ".join(f"{k}={format_value(v) if not isinstance(v, _Raw) else v}" for k, v in args.items()) + ")"


class _Raw(str):
    """An argument written as source text (bare names, arithmetic, nested calls)."""


def pick(options: list, r: random.Random):
    vals = [o for o in options if o != ""]
    return r.choice(vals) if vals else None


def concrete(truth: list[dict], r: random.Random, optional_in: float = 0.5) -> list[tuple[str, dict]]:
    calls = []
    for item in truth:
        (name, params), = item.items()
        args = {}
        for p, options in params.items():
            v = pick(options, r)
            if v is None or ("" in options and r.random() > optional_in):
                continue
            args[p] = _concrete_value(v, r)
        calls.append((name, args))
    return calls


def _concrete_value(v, r):
    if isinstance(v, dict):  # nested ground truth: value lists inside
        return {k: _concrete_value(pick(vals, r), r) for k, vals in v.items() if isinstance(vals, list) and pick(vals, r) is not None}
    return v


def mutations(truth: list[dict], functions: list[dict], r: random.Random) -> list[str]:
    outs = []
    good = concrete(truth, r)
    listing = lambda calls: "[" + ", ".join(call_text(n, a) for n, a in calls) + "]"
    outs.append(listing(good))
    for _ in range(3):
        outs.append(listing(concrete(truth, r, optional_in=r.random())))
    outs.append(f"<think>Let me think about {len(good)} calls.</think>\n\n" + listing(good))
    outs.append("```python\n" + listing(good) + "\n```")
    outs.append(", ".join(call_text(n, a) for n, a in good))
    if good:
        name, args = good[0]
        outs.append(listing([(name + "_x", args)] + good[1:]))
        outs.append(listing([(name.split(".")[-1], args)] + good[1:]))
        outs.append(listing(good[:-1]))
        outs.append(listing(good + [good[0]]))
        outs.append(listing(list(reversed(good))))
        outs.append(listing([(name, {**args, "extra_param": 1})] + good[1:]))
        if args:
            k = r.choice(list(args))
            v = args[k]
            dropped = {a: b for a, b in args.items() if a != k}
            outs.append(listing([(name, dropped)] + good[1:]))
            for changed in _changes(v, r):
                outs.append(listing([(name, {**args, k: changed})] + good[1:]))
            outs.append(listing([(name, {**args, k: _Raw("some_variable")})] + good[1:]))
            outs.append(listing([(name, {**args, k: _Raw("compute(x=1)")})] + good[1:]))
            outs.append(listing([(name, {**args, k: _Raw("str(5)")})] + good[1:]))
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                outs.append(listing([(name, {**args, k: _Raw(f"{v} + 0")})] + good[1:]))
                outs.append(listing([(name, {**args, k: _Raw(f"+{abs(v)}")})] + good[1:]))
            if isinstance(v, str):
                outs.append(listing([(name, {**args, k: v.upper()})] + good[1:]))
                outs.append(listing([(name, {**args, k: v.replace(" ", "_") + "."})] + good[1:]))
        outs.append(f"[{name}(" + ", ".join(format_value(v) for v in args.values()) + ")]")
    other = [f for f in functions if f["name"] not in {n for n, _ in good}]
    if other:
        outs.append(f"[{other[0]['name']}()]")
    outs += ["[]", "[{}]", "I cannot help with that.", "None of the functions fit the request.", "[1, 2]", "", "[f(]"]
    return outs


def _changes(v, r):
    if isinstance(v, bool):
        return [not v, int(v), str(v)]
    if isinstance(v, int):
        return [v + 1, float(v), str(v), [v]]
    if isinstance(v, float):
        return [v * 2 + 1, int(v), str(v)]
    if isinstance(v, str):
        return [v + " extra", 5, [v]]
    if isinstance(v, list):
        return [v[:-1], v + v[:1], tuple(v), list(reversed(v)), "text"]
    if isinstance(v, dict):
        return [{**v, "zz": 1}, {k: x for k, x in list(v.items())[1:]}, "text"]
    return [None]


def build(limit: int | None, seed: int) -> list[dict]:
    r = random.Random(seed)
    entries = []
    for category in sorted(SUPPORTED):
        exs = read_examples(bfcl.question_file(category))[:limit]
        for ex in exs:
            functions = [t.to_dict() for t in ex.tools]
            truth = ex.possible_answer
            if truth is None:  # relevance categories: outputs with and without calls
                names = [f["name"] for f in functions] or ["lookup"]
                outs = ["[]", "I cannot help.", f"[{names[0]}()]", f"<think>hm</think>[{names[0]}(x=1)]", "[{}]", "[1]", ""]
            else:
                outs = mutations(truth, functions, r)
            for o in outs:
                entries.append({"id": ex.id, "category": category, "result": o, "function": functions, "ground_truth": truth})
    return entries


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ref-python", required=True, help="python of the reference environment (make_env.sh)")
    p.add_argument("--limit", type=int, help="entries per category")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="write all disagreements here (JSONL)")
    a = p.parse_args()
    entries = build(a.limit, a.seed)
    t0 = time.perf_counter()
    ours = [score_entry(e["category"], e["result"], e["function"], e["ground_truth"]) for e in entries]
    our_seconds = time.perf_counter() - t0
    # the official decoder gets the output with the reasoning already removed, as FunReason does
    payload = "".join(json.dumps({**e, "result": split_think(e["result"])[1]}) + "\n" for e in entries)
    script = Path(__file__).parent / "bfcl_reference" / "official_verdicts.py"
    proc = subprocess.run([a.ref_python, str(script)], input=payload, capture_output=True, text=True, check=True)
    lines = proc.stdout.strip().splitlines()
    official = [json.loads(line) for line in lines[:-1]]
    official_seconds = json.loads(lines[-1])["seconds"]
    disagree = [
        {**e, "ours": o, "official": t} for e, o, t in zip(entries, ours, official)
        if o["valid"] != t["valid"] or (not o["valid"] and o.get("error_type") != t.get("error_type"))
    ]
    if a.out:
        a.out.write_text("".join(json.dumps(d, default=str) + "\n" for d in disagree))
    print(json.dumps({
        "entries": len(entries),
        "categories": sorted(SUPPORTED),
        "valid_official": sum(t["valid"] for t in official),
        "agree_valid": sum(o["valid"] == t["valid"] for o, t in zip(ours, official)),
        "agree_valid_and_error_type": len(entries) - len(disagree),
        "agreement": round((len(entries) - len(disagree)) / len(entries), 6),
        "ours_seconds": round(our_seconds, 3),
        "official_seconds": round(official_seconds, 3),
        "speedup": round(official_seconds / our_seconds, 2),
        "first_disagreements": [{k: d[k] for k in ("id", "category", "result", "ours", "official")} for d in disagree[:8]],
    }, indent=2, default=str))


if __name__ == "__main__":
    main()
