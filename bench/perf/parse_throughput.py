"""Parse throughput: 100k generated calls in each syntax, and hostile input. Prints JSON.

    .venv/bin/python bench/perf/parse_throughput.py               # 100,000 calls (the committed figure)
    .venv/bin/python bench/perf/parse_throughput.py --quick       # 10,000 calls, hostile sweep of 10 sizes

The JSON also goes to `--out` (bench/results/parse_throughput.json).

"hostile" times each family of adversarial text that tests/test_calls.py feeds the parsers (at the
largest size it draws) beside honest call lists of the same length, parsed in the same run: the
ratio says how much longer a refusal takes than an answer of equal size.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from common import add_out, write_result

from funreason.calls import MAX_CHARS, format_json_calls, format_python_calls, format_tool_call_tags, parse_calls, parse_output
from funreason.errors import ParseError
from funreason.schema import Call

WORDS = ["Paris", "São Paulo", "東京", "beta", "it's", "x" * 40]


def value(r: random.Random, depth: int = 0):
    k = r.randint(0, 6 if depth < 2 else 3)
    if k == 0:
        return r.randint(-10**6, 10**6)
    if k == 1:
        return round(r.uniform(-1e3, 1e3), 3)
    if k == 2:
        return r.choice(WORDS)
    if k == 3:
        return r.choice([True, False, None])
    if k in (4, 5):
        return [value(r, depth + 1) for _ in range(r.randint(0, 4))]
    return {f"k{i}": value(r, depth + 1) for i in range(r.randint(0, 3))}


def generated_outputs(n_calls: int, seed: int = 0) -> list[list[Call]]:
    r = random.Random(seed)
    groups, made = [], 0
    while made < n_calls:
        k = min(r.randint(1, 3), n_calls - made)
        groups.append([
            Call(r.choice(["get_weather", "math.factorial", "pkg.sub.fn", "search"]),
                 {f"p{i}": value(r) for i in range(r.randint(0, 4))})
            for _ in range(k)
        ])
        made += k
    return groups


HOSTILE = {  # family -> (text of size n, the largest n tests/test_calls.py's hostile_text draws)
    "nested_lists": (lambda n: "[f(x=" + "[" * n + "]" * n + ")]", 20_000),
    "unary_minus": (lambda n: "[f(x=" + "-" * n + "1)]", 20_000),
    "not_chain": (lambda n: "[f(x=" + "not " * n + "1)]", 20_000),
    "nested_json": (lambda n: '[{"name": "f", "arguments": ' + '{"a": ' * n + "1" + "}" * n + "}]", 20_000),
    "open_tool_call": (lambda n: "<tool_call>" + "[" * n, 20_000),
    "dotted_name": (lambda n: "f." * n + "g()", 5_000),
    "nested_dicts": (lambda n: "[f(x=" + "{'a': " * n + "1" + "}" * n + ")]", 2_000),
    "huge_string": (lambda n: "[f(x='" + "a" * n + "')]", 10_000_000),
    "parens": (lambda n: "(" * n + ")" * n, 10_000),
}


def _seconds(fn, text: str, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        try:
            fn(text)
        except ParseError:
            pass
        best = min(best, time.perf_counter() - start)
    return best


def hostile(steps: int = 40) -> dict:
    """Per family, the slowest size of a sweep up to its largest (the parsers' limits make the
    worst case a middle size: just under the nesting limit is parsed in full, just over is refused)."""
    honest_text = format_python_calls([c for g in generated_outputs(20_000, seed=1) for c in g])
    out = {}
    for family, (make, largest) in HOSTILE.items():
        sizes = sorted({max(1, largest * i // steps) for i in range(1, steps + 1)}) if largest <= 20_000 else [largest]
        worst, n = max((max(_seconds(parse_calls, make(n)), _seconds(parse_output, make(n))), n) for n in sizes)
        text = make(n)
        honest = honest_text[: min(len(text), MAX_CHARS)]
        honest = honest[: honest.rfind("), ") + 1] + "]"  # cut at a call boundary: a valid list
        base = _seconds(parse_calls, honest)
        out[family] = {"worst_n": n, "chars": len(text), "seconds": round(worst, 5),
                       "honest_seconds": round(base, 5), "ratio": round(worst / base, 2)}
    return out


def main(n_calls: int = 100_000, steps: int = 40, out: Path | None = None) -> dict:
    groups = generated_outputs(n_calls)
    result = {"calls": n_calls, "outputs": len(groups)}
    for name, fmt in (("python", format_python_calls), ("json", format_json_calls), ("tool_call_tags", format_tool_call_tags)):
        texts = [fmt(g) for g in groups]
        start = time.perf_counter()
        parsed = sum(len(parse_calls(t)) for t in texts)
        seconds = time.perf_counter() - start
        assert parsed == n_calls
        result[name] = {"seconds": round(seconds, 3), "calls_per_s": round(n_calls / seconds)}
    result["hostile"] = hostile(steps)
    result["hostile_worst_seconds"] = max(v["seconds"] for v in result["hostile"].values())
    if out is None:
        print(json.dumps(result, indent=2))
    else:
        write_result(result, out)
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="10,000 calls and a hostile sweep of 10 sizes (the small run)")
    add_out(ap, __file__)
    a = ap.parse_args()
    main(10_000 if a.quick else a.calls, 10 if a.quick else 40, a.out)
