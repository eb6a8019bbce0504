"""Agreement of FunReason's BFCL verdicts with the official checker, and their speed, side by side.

Generates many model outputs for every entry of the 13 single-turn categories, Java and JavaScript included (correct
answers, every alternative acceptable value, wrong names, missing / extra / wrong parameters, type
changes, shuffled / dropped / repeated calls, reasoning prefixes, prose, code fences, positional
arguments, bare names, arithmetic, nested calls...), scores them with `funreason.evaluate` and with
the official bfcl-eval code (in its own environment: bench/agreement/bfcl_reference/make_env.sh), and
compares entry by entry. Prints JSON and writes it to `--out` (bench/results/bfcl_agreement.json);
lists the first disagreements.

    python bench/agreement/bfcl_agreement.py                 # every entry (87,681 outputs, the committed figure)
    python bench/agreement/bfcl_agreement.py --quick         # 10 entries per category: the small run

Without `--ref-python` the reference environment is $FUNREASON_CACHE/bfcl-ref (default
~/.cache/funreason/bfcl-ref), made by make_env.sh on first use (pip needs the network then).
"""

from __future__ import annotations

import argparse
import json
import os
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


# --- Java and JavaScript outputs: source text by declared type ----------------------------------


def java_src(v, typ: str | None, items: str | None = None) -> str:
    if typ in ("Array", "ArrayList") and isinstance(v, list):
        inner = ", ".join(java_src(x, items) for x in v)
        if typ == "Array":
            return f"new {(items or 'Object').replace('integer', 'int').replace('boolean', 'boolean')}[]{{{inner}}}"
        return f"new ArrayList<>(Arrays.asList({inner}))"
    if typ == "HashMap" and isinstance(v, dict):
        puts = " ".join(f'put("{k}", {java_src(x, None)});' for k, x in v.items())
        return f"new HashMap<String, Object>() {{{{ {puts} }}}}"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v}L" if typ == "long" else str(v)
    if isinstance(v, float):
        return f"{v}f" if typ == "float" else repr(v)
    if isinstance(v, str):
        if typ == "char":
            return f"'{v}'"
        return v if typ == "any" else json.dumps(v)
    if isinstance(v, list):
        return "new Object[]{" + ", ".join(java_src(x, None) for x in v) + "}"
    return json.dumps(v)


def js_src(v, typ: str | None, items: str | None = None) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(js_src(x, items) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {js_src(x, None)}" for k, x in v.items()) + "}"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return v if typ == "any" else json.dumps(v) if len(v) % 2 else "'" + v.replace("'", "\\'") + "'"
    return json.dumps(v)


def lang_mutations(truth: list[dict], functions: list[dict], r: random.Random, java: bool) -> list[str]:
    src = java_src if java else js_src
    props = {f["name"]: f["parameters"]["properties"] for f in functions}

    def text(name, args, raw=()):
        ps = props.get(name, {})
        parts = []
        for k, v in args.items():
            d = ps.get(k, {})
            parts.append(f"{k}={v if k in raw else src(v, d.get('type'), d.get('items', {}).get('type'))}")
        return f"{name}(" + ", ".join(parts) + ")"

    good = concrete(truth, r)
    name, args = good[0]
    outs = [f"[{text(name, args)}]", text(name, args)]
    for _ in range(3):
        (n2, a2), = concrete(truth, r, optional_in=r.random())
        outs.append(f"[{text(n2, a2)}]")
    lang = "java" if java else "javascript"
    outs += [f"<think>Use {name}.</think>\n[{text(name, args)}]", f"```{lang}\n[{text(name, args)}]\n```",
             f"[{text(name + 'X', args)}]", f"[{text(name.split('.')[-1], args)}]",
             f"[{text(name, {**args, 'extra': 1})}]", f"[{text(name, args)}, {text(name, args)}]",
             f"[{text(name, args)}; {text(name, args)}]", f"[{name}(" + ", ".join(src(v, None) for v in args.values()) + ")]",
             f"Sure: {text(name, args)}", f"[{text(name, args)}] // done", f"[obj.{text(name, args)}]",
             f"[{text(name, args)}", "[]", "", "I cannot help with that.", f"[{name}()]", f"[{name}(]"]
    for k, v in args.items():
        t = props.get(name, {}).get(k, {}).get("type")
        rest = {a: b for a, b in args.items() if a != k}
        outs.append(f"[{text(name, rest)}]")
        outs.append(f"[{text(name, {**args, k: 'someVariable'}, raw={k})}]")
        outs.append(f"[{text(name, {**args, k: json.dumps(str(v))}, raw={k})}]")
        outs.append(f"[{text(name, {**args, k: 'ünïcode'}, raw=())}]")
        outs.append(f"[{text(name, {**args, k: 'getValue(5)'}, raw={k})}]")
        outs.append(f"[{text(name, args)[:-1]}, {k}={src(v, t)})]")
        for changed in _changes(v, r):
            outs.append(f"[{text(name, {**args, k: changed})}]")
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            for form in (f"{v}L", f"{v}f", f"{float(v)}", f"{v}n", f"-{v}", f"{v}e0"):
                outs.append(f"[{text(name, {**args, k: form}, raw={k})}]")
        if isinstance(v, str):
            outs.append(f"[{text(name, {**args, k: v.upper()})}]")
            outs.append(f"[{text(name, {**args, k: repr(v)}, raw={k})}]")
        if isinstance(v, list):
            forms = [f"new Array({', '.join(src(x, None) for x in v)})", f"[{src(v, None)}]", "[]",
                     "new ArrayList<String>() {{ " + " ".join(f"add({src(x, None)});" for x in v) + " }}",
                     "new ArrayList<>()", "new String[]{}"]
            outs += [f"[{text(name, {**args, k: f}, raw={k})}]" for f in forms]
        if isinstance(v, dict):
            forms = ["{}", "new HashMap<>()", "new HashMap<>() {{ }}", "{" + ", ".join(f"'{a}': {src(b, None)}" for a, b in v.items()) + "}"]
            outs += [f"[{text(name, {**args, k: f}, raw={k})}]" for f in forms]
    return outs


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
            elif category in ("simple_java", "simple_javascript"):
                outs = lang_mutations(truth, functions, r, java=category == "simple_java")
            else:
                outs = mutations(truth, functions, r)
            for o in outs:
                entries.append({"id": ex.id, "category": category, "result": o, "function": functions, "ground_truth": truth})
    return entries


def score_ours(entries: list[dict]) -> tuple[list[dict], float]:
    t0 = time.perf_counter()
    out = [score_entry(e["category"], e["result"], e["function"], e["ground_truth"]) for e in entries]
    return out, time.perf_counter() - t0


def score_official(ref_python: str, entries: list[dict]) -> tuple[list[dict], float]:
    """Verdicts of bfcl-eval's own decode + ast_checker, timed inside the reference process (its
    imports and the JSON transport not counted, as ours are not)."""
    # the official decoder gets the output with the reasoning already removed, as FunReason does
    payload = "".join(json.dumps({**e, "result": split_think(e["result"])[1]}) + "\n" for e in entries)
    script = Path(__file__).parent / "bfcl_reference" / "official_verdicts.py"
    proc = subprocess.run([ref_python, str(script)], input=payload, capture_output=True, text=True, check=True)
    lines = proc.stdout.strip().splitlines()
    return [json.loads(line) for line in lines[:-1]], json.loads(lines[-1])["seconds"]


ROOT = Path(__file__).resolve().parents[2]  # the repository: bench/agreement/bfcl_agreement.py -> ../..


def reference_python() -> str:
    """The default reference environment's python, made with make_env.sh when missing."""
    env = Path(os.environ.get("FUNREASON_CACHE") or Path.home() / ".cache" / "funreason") / "bfcl-ref"
    if not (env / "bin" / "python").exists():
        subprocess.run([str(Path(__file__).parent / "bfcl_reference" / "make_env.sh"), str(env)], check=True)
    return str(env / "bin" / "python")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ref-python", help="python of the reference environment (default: made by make_env.sh in the cache)")
    p.add_argument("--limit", type=int, help="entries per category")
    p.add_argument("--quick", action="store_true", help="10 entries per category (the small run)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "bfcl_agreement.json",
                   help="write the JSON here (default: bench/results/bfcl_agreement.json)")
    p.add_argument("--disagreements", type=Path, help="write all disagreements here (JSONL)")
    a = p.parse_args()
    if a.quick:
        a.limit = a.limit or 10
    a.ref_python = a.ref_python or reference_python()
    entries = build(a.limit, a.seed)
    ours, our_seconds = score_ours(entries)
    official, official_seconds = score_official(a.ref_python, entries)
    # one result per entry of every category (the first output generated for each: its answer)
    seen, first = set(), []
    for e in entries:
        if (e["category"], e["id"]) not in seen:
            seen.add((e["category"], e["id"]))
            first.append(e)
    _, first_ours = score_ours(first)
    _, first_official = score_official(a.ref_python, first)
    disagree = [
        {**e, "ours": o, "official": t} for e, o, t in zip(entries, ours, official)
        if o["valid"] != t["valid"] or (not o["valid"] and o.get("error_type") != t.get("error_type"))
    ]
    if a.disagreements:
        a.disagreements.write_text("".join(json.dumps(d, default=str) + "\n" for d in disagree))
    report = json.dumps({
        "entries": len(entries), "limit_per_category": a.limit,
        "categories": sorted(SUPPORTED),
        "valid_official": sum(t["valid"] for t in official),
        "agree_valid": sum(o["valid"] == t["valid"] for o, t in zip(ours, official)),
        "agree_valid_and_error_type": len(entries) - len(disagree),
        "agreement": round((len(entries) - len(disagree)) / len(entries), 6),
        "ours_seconds": round(our_seconds, 3),
        "official_seconds": round(official_seconds, 3),
        "speedup": round(official_seconds / our_seconds, 2),
        "one_result_per_entry": {"entries": len(first), "ours_seconds": round(first_ours, 3),
                                 "official_seconds": round(first_official, 3), "speedup": round(first_official / first_ours, 2)},
        "first_disagreements": [{k: d[k] for k in ("id", "category", "result", "ours", "official")} for d in disagree[:8]],
    }, indent=2, default=str)
    print(report)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(report + "\n")


if __name__ == "__main__":
    main()
