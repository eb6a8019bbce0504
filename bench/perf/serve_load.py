"""Load test of `funreason serve` on the tiny model, over real HTTP on 127.0.0.1. Prints JSON.

1. batching speed-up: requests/s of 32 concurrent clients against one client at a time;
2. soak: 64 concurrent clients for 60 s: requests/s, p50 / p99 latency, failed requests;
3. poisoned soak: the same, with a poisoned request about every second (each followed by a 1 s pause), in turn a bad sampling value
   (`top_p: 0`), a prompt over the model's window and an abandoned connection (the client gives up
   after 0.3 s on a 1000-token answer). Every good request must succeed, every bad one get its 4xx,
   every abandoned one be cancelled by the server, and the good requests' p99 stay within 2x of
   the clean soak's (`p99_ratio`).
Every good request carries tools and asks for 32 new tokens, greedy.

    .venv/bin/python bench/perf/serve_load.py            # 20 s per speed-up run, 60 s per soak (the committed figure)
    .venv/bin/python bench/perf/serve_load.py --quick    # 5 s and 15 s: the small run `make bench` runs

The JSON also goes to `--out` (bench/results/serve_load.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from common import add_out

from funreason.llm.local import LocalEngine
from funreason.serve.app import BackgroundServer, ServeConfig, create_app
from funreason.train.tiny import build_tiny_model

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city.",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
BODY = {"model": "tiny", "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": TOOLS, "max_tokens": 32}


POISON = [
    ("bad_sampling", {**BODY, "top_p": 0}),
    ("prompt_over_window", {**BODY, "messages": [{"role": "user", "content": "word " * 9000}]}),
    ("abandoned", {**BODY, "max_tokens": 1000}),
]


async def poisoner(url: str, end: float, out: dict) -> None:
    """A poisoned request, then a 1 s pause, until `end`; counts per kind what was expected (a 4xx;
    for an abandoned request, giving up before the answer) and anything else."""
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        i = 0
        while time.monotonic() < end:
            kind, body = POISON[i % len(POISON)]
            i += 1
            got = out.setdefault(kind, {"sent": 0, "expected": 0, "other": 0})
            got["sent"] += 1
            try:
                if kind == "abandoned":
                    await http.post("/v1/chat/completions", json=body, timeout=0.3)
                    got["other"] += 1  # it finished within 0.3 s: not abandoned after all
                else:
                    r = await http.post("/v1/chat/completions", json=body)
                    got["expected" if 400 <= r.status_code < 500 else "other"] += 1
            except httpx.TimeoutException:
                got["expected" if kind == "abandoned" else "other"] += 1
            await asyncio.sleep(1.0)


async def load(url: str, clients: int, seconds: float, poison: dict | None = None) -> dict:
    latencies: list[float] = []
    failed = 0
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=httpx.Limits(max_connections=clients)) as http:
        end = time.monotonic() + seconds

        async def client():
            nonlocal failed
            while time.monotonic() < end:
                t0 = time.monotonic()
                try:
                    r = await http.post("/v1/chat/completions", json=BODY)
                    ok = r.status_code == 200 and r.json()["choices"][0]["finish_reason"] in ("stop", "length", "tool_calls")
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append(time.monotonic() - t0)
                else:
                    failed += 1

        t0 = time.monotonic()
        extra = [poisoner(url, end, poison)] if poison is not None else []
        await asyncio.gather(*[client() for _ in range(clients)], *extra)
        wall = time.monotonic() - t0
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    return {"clients": clients, "seconds": round(wall, 1), "requests": len(latencies), "failed": failed,
            "requests_per_s": round(len(latencies) / wall, 2), "p50_s": round(q[49], 3), "p99_s": round(q[98], 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--speedup-seconds", type=float, default=20)
    p.add_argument("--soak-seconds", type=float, default=60)
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--quick", action="store_true", help="5 s speed-up runs and 15 s soaks (the small run)")
    add_out(p, __file__)
    a = p.parse_args()
    if a.quick:
        a.speedup_seconds, a.soak_seconds = 5, 15
    with tempfile.TemporaryDirectory() as tmp:
        engine = LocalEngine.from_pretrained(str(build_tiny_model(Path(tmp) / "tiny")), max_batch=a.max_batch)
        server = BackgroundServer(create_app(engine, ServeConfig("tiny")))
        url = server.url
        one = asyncio.run(load(url, 1, a.speedup_seconds))
        many = asyncio.run(load(url, 32, a.speedup_seconds))
        soak = asyncio.run(load(url, 64, a.soak_seconds))
        poison: dict = {}
        cancelled_before = engine.cancelled
        poisoned = asyncio.run(load(url, 64, a.soak_seconds, poison))
        poisoned["poison"] = poison
        poisoned["cancelled_by_server"] = engine.cancelled - cancelled_before
        server.stop()
        engine.close()
    ok = (poisoned["failed"] == 0 and all(p["other"] == 0 for p in poison.values())
          and poisoned["cancelled_by_server"] == poison.get("abandoned", {}).get("sent", 0))
    result = json.dumps({"one_at_a_time": one, "concurrent_32": many,
                      "batching_speedup": round(many["requests_per_s"] / one["requests_per_s"], 2),
                      "soak_64_clients": soak, "poisoned_soak_64_clients": poisoned,
                      "p99_ratio": round(poisoned["p99_s"] / soak["p99_s"], 2),
                      "poisoned_soak_holds": ok and poisoned["p99_s"] <= 2 * soak["p99_s"]}, indent=2)
    print(result)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(result + "\n")


if __name__ == "__main__":
    main()
