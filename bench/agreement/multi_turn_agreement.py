"""Agreement of FunReason's multi-turn verdicts with bfcl-eval's own multi-turn checker, entry by entry.

For every entry of the four multi-turn categories, builds model results from the ground truth and
mutations of it (each call its own step, prose steps, dropped / extra / reordered calls, changed
values, empty turns, wrong turn counts, calls where nothing fits, calls a turn early, unknown and
dotted names, positional arguments, reasoning and code fences that do not decode), scores them with
`funreason.evaluate.multi_turn` and with the official checker (bfcl_reference/official_multi_turn.py,
in its own process, with this interpreter), and compares validity and error type. Prints JSON and
writes it to `--out` (bench/results/multi_turn_agreement.json); lists the first disagreements.

    python bench/agreement/multi_turn_agreement.py              # all 800 entries (the committed figure)
    python bench/agreement/multi_turn_agreement.py --quick      # 10 entries per category
"""

from __future__ import annotations

import argparse
import inspect
import json
import random
import subprocess
import sys
import time
from pathlib import Path

from funreason.calls import format_value
from funreason.evaluate.multi_turn import CATEGORIES, bfcl_version, environment_class, load_category, parse_ground_truth, score_entry

HERE = Path(__file__).resolve().parent
OFFICIAL = HERE / "bfcl_reference" / "official_multi_turn.py"


def keyword_calls(entry: dict, turn: list[str]) -> list[tuple[str, dict]]:
    """A ground-truth turn as (name, keyword arguments): positional ones named from the method's signature."""
    out = []
    for text in turn:
        call, positional = parse_ground_truth(text)
        args = dict(call.arguments)
        if positional:
            cls = next(environment_class(c) for c in entry["involved_classes"] if hasattr(environment_class(c), call.name))
            names = [p for p in inspect.signature(getattr(cls, call.name)).parameters if p != "self"]
            args = {**dict(zip(names, positional)), **args}
        out.append((call.name, args))
    return out


def text(calls: list[tuple[str, dict]]) -> str:
    return "[" + ", ".join(f"{n}(" + ", ".join(f"{k}={format_value(v)}" for k, v in a.items()) + ")" for n, a in calls) + "]"


def _changed(v, r: random.Random):
    if isinstance(v, bool):
        return not v
    if isinstance(v, (int, float)):
        return v + 1
    if isinstance(v, str):
        return v + "_x" if r.random() < 0.7 else v.upper()
    if isinstance(v, list):
        return v[:-1] if v else ["x"]
    if isinstance(v, dict):
        return {**v, "zz": 1}
    return "changed"


def mutations(entry: dict, truth: list[list[str]], r: random.Random) -> list[tuple[str, object]]:
    """(label, result) pairs: the ground truth played back and mutated, each as BFCL's result format."""
    turns = [keyword_calls(entry, t) for t in truth]
    full = [[text(t)] if t else ["I cannot do that with the functions I have."] for t in turns]
    called = [i for i, t in enumerate(turns) if t]
    empty = [i for i, t in enumerate(turns) if not t]
    out: list[tuple[str, object]] = [("ground_truth", full)]
    out.append(("one_step_per_call", [[text([c]) for c in t] + ["Done."] for t in turns]))
    out.append(("bare_calls_no_brackets", [[", ".join(text([c])[1:-1] for c in t)] if t else [] for t in turns]))
    out.append(("ground_truth_as_written", [[" ,".join(t)] if t else [] for t in truth]))  # positional args: dropped by the decoder
    i = r.choice(called)
    t = turns[i]
    k = r.randrange(len(t))
    out.append(("drop_call", _with(full, i, [text(t[:k] + t[k + 1:])] if len(t) > 1 else ["Done."])))
    out.append(("drop_last_call_each_turn", [[text(x[:-1])] if len(x) > 1 else ["ok"] for x in turns]))
    name, args = t[k]
    if args:
        key = r.choice(list(args))
        out.append(("change_value", _with(full, i, [text(t[:k] + [(name, {**args, key: _changed(args[key], r)})] + t[k + 1:])])))
        out.append(("drop_argument", _with(full, i, [text(t[:k] + [(name, {a: b for a, b in args.items() if a != key})] + t[k + 1:])])))
    out.append(("extra_argument", _with(full, i, [text(t[:k] + [(name, {**args, "extra": 1})] + t[k + 1:])])))
    out.append(("reorder", _with(full, i, [text(list(reversed(t)))])))
    out.append(("shuffle_steps", _with(full, i, [text([c]) for c in r.sample(t, len(t))])))
    out.append(("repeat_call", _with(full, i, [text(t + [t[k]])])))
    out.append(("empty_turn", _with(full, i, [])))
    out.append(("prose_turn", _with(full, i, ["Sure, I moved the file for you.", "Anything else?"])))
    out.append(("reasoning_prefix", _with(full, i, ["<think>first the folder</think>\n" + text(t)])))
    out.append(("code_fence", _with(full, i, ["```python\n" + text(t) + "\n```"])))
    out.append(("unknown_function", _with(full, i, [text(t + [("not_a_function", {"x": 1})])])))
    out.append(("dotted_name", _with(full, i, [text([(f"{entry['involved_classes'][0]}.{n}", a) for n, a in t])])))
    out.append(("steps_a_turn_early", [[text(turns[j] + turns[j + 1])] if j == i - 1 else ([] if j == i else full[j]) for j in range(len(turns))] if i > 0 else full[:-1]))
    out.append(("last_turn_dropped", full[:-1]))
    out.append(("extra_turn", full + [["Done."]]))
    out.append(("not_a_list", "I am done."))
    if empty:
        j = empty[0]
        donor = turns[called[0]]
        out.append(("calls_where_none_fit", _with(full, j, [text(donor[:1])])))
        out.append(("calls_where_none_fit_then_truth", _with(full, j, [text(turns[called[-1]])])))
    return out


def _with(turns: list, i: int, steps: list) -> list:
    return [steps if j == i else t for j, t in enumerate(turns)]


def official(rows: list[dict], python: str) -> tuple[list[dict], float]:
    p = subprocess.run([python, str(OFFICIAL)], input="\n".join(json.dumps(x) for x in rows), capture_output=True, text=True, check=False)
    if p.returncode:
        raise RuntimeError(f"the official checker failed: {p.stderr[-2000:]}")
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    return lines[:-1], lines[-1]["seconds"]


def build(per_category: int | None, seed: int = 0) -> list[dict]:
    r = random.Random(seed)
    rows = []
    for c in CATEGORIES:
        questions, answers = load_category(c)
        for n, (eid, entry) in enumerate(questions.items()):
            if per_category is not None and n >= per_category:
                break
            for label, result in mutations(entry, answers[eid], r):
                rows.append({"category": c, "id": eid, "mutation": label, "result": result})
    return rows


def compare(rows: list[dict], python: str = sys.executable) -> dict:
    questions = {c: load_category(c) for c in {x["category"] for x in rows}}
    t0 = time.perf_counter()
    ours = [score_entry(questions[x["category"]][0][x["id"]], questions[x["category"]][1][x["id"]], x["result"]) for x in rows]
    our_seconds = time.perf_counter() - t0
    theirs, their_seconds = official(rows, python)
    disagree = [{"id": x["id"], "mutation": x["mutation"], "ours": [o.valid, o.kind], "official": [t["valid"], t["error_type"]]}
                for x, o, t in zip(rows, ours, theirs) if (o.valid, o.kind) != (t["valid"], t["error_type"])]
    return {"outputs": len(rows), "entries": len({(x["category"], x["id"]) for x in rows}), "equal": len(rows) - len(disagree),
            "valid_official": sum(t["valid"] for t in theirs), "our_seconds": round(our_seconds, 2),
            "official_seconds": round(their_seconds, 2), "disagreements": disagree}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10 entries per category")
    ap.add_argument("--out", type=Path, default=HERE.parent / "results" / "multi_turn_agreement.json")
    a = ap.parse_args()
    rows = build(10 if a.quick else None)
    res = compare(rows)
    mutation_kinds = sorted({x["mutation"] for x in rows})
    report = {"bfcl_eval": bfcl_version(), "categories": list(CATEGORIES), "mutations": mutation_kinds,
              **{k: v for k, v in res.items() if k != "disagreements"}, "first_disagreements": res["disagreements"][:20],
              "command": "python bench/agreement/multi_turn_agreement.py" + (" --quick" if a.quick else "")}
    print(json.dumps(report, indent=2))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(a.out)


if __name__ == "__main__":
    main()
