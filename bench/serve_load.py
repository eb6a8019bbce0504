"""Load test of `funreason serve` on the tiny model, over real HTTP on 127.0.0.1. Prints JSON.

1. batching speed-up: requests/s of 32 concurrent clients against one client at a time;
2. soak: 64 concurrent clients for 60 s: requests/s, p50 / p99 latency, failed requests.
Every request carries tools and asks for 32 new tokens, greedy.
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

from funreason.llm.local import LocalEngine
from funreason.serve import BackgroundServer, ServeConfig, create_app
from funreason.train.tiny import build_tiny_model

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city.",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
BODY = {"model": "tiny", "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": TOOLS, "max_tokens": 32}


async def load(url: str, clients: int, seconds: float) -> dict:
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
        await asyncio.gather(*[client() for _ in range(clients)])
        wall = time.monotonic() - t0
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    return {"clients": clients, "seconds": round(wall, 1), "requests": len(latencies), "failed": failed,
            "requests_per_s": round(len(latencies) / wall, 2), "p50_s": round(q[49], 3), "p99_s": round(q[98], 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--speedup-seconds", type=float, default=20)
    p.add_argument("--soak-seconds", type=float, default=60)
    p.add_argument("--max-batch", type=int, default=32)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = LocalEngine.from_pretrained(str(build_tiny_model(Path(tmp) / "tiny")), max_batch=a.max_batch)
        server = BackgroundServer(create_app(engine, ServeConfig("tiny")))
        url = server.url
        one = asyncio.run(load(url, 1, a.speedup_seconds))
        many = asyncio.run(load(url, 32, a.speedup_seconds))
        soak = asyncio.run(load(url, 64, a.soak_seconds))
        server.stop()
        engine.close()
    print(json.dumps({"one_at_a_time": one, "concurrent_32": many,
                      "batching_speedup": round(many["requests_per_s"] / one["requests_per_s"], 2),
                      "soak_64_clients": soak}, indent=2))


if __name__ == "__main__":
    main()
