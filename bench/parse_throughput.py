"""Parse throughput: 100k generated calls in each syntax. Prints JSON (calls/s)."""

from __future__ import annotations

import json
import random
import time

from funreason.calls import format_json_calls, format_python_calls, format_tool_call_tags, parse_calls
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


def main(n_calls: int = 100_000) -> dict:
    groups = generated_outputs(n_calls)
    result = {"calls": n_calls, "outputs": len(groups)}
    for name, fmt in (("python", format_python_calls), ("json", format_json_calls), ("tool_call_tags", format_tool_call_tags)):
        texts = [fmt(g) for g in groups]
        start = time.perf_counter()
        parsed = sum(len(parse_calls(t)) for t in texts)
        seconds = time.perf_counter() - start
        assert parsed == n_calls
        result[name] = {"seconds": round(seconds, 3), "calls_per_s": round(n_calls / seconds)}
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
