"""`funreason eval bfcl --endpoint`: does `--concurrency` bind? Prints JSON.

A local OpenAI-compatible endpoint on 127.0.0.1 answers every chat request after a fixed delay
(100 ms) and counts the requests in flight. `funreason eval bfcl` runs against it as a user runs it
(a subprocess, the real CLI) over `--entries` BFCL entries at `--concurrency` N; the figure is the
request rate the endpoint saw (requests from the first arrival to the last answer) as a share of
the ideal (N / delay), and the most requests in flight at once. The API key is passed and checked, as a hosted endpoint would.

    .venv/bin/python bench/perf/eval_concurrency.py --entries 512 --concurrency 64

The defaults (those above) are already the small run that `make bench` runs; the JSON also goes to
`--out` (bench/results/eval_concurrency.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import threading
from typing import Any

from aiohttp import web

from common import add_out, write_result

KEY = "bench-key"


def slow_endpoint(delay: float) -> tuple[str, dict, Any]:
    """An aiohttp server in a thread (lighter than the FastAPI stack: the endpoint must not be
    what limits the rate); (url, counters, stop)."""
    seen = {"requests": 0, "in_flight": 0, "max_in_flight": 0, "unauthorised": 0, "first": None, "last": None}

    async def complete(request: web.Request) -> web.Response:
        if request.headers.get("authorization") != f"Bearer {KEY}":
            seen["unauthorised"] += 1
            return web.json_response({"error": {"message": "bad key", "type": "auth"}}, status=401)
        body = await request.json()
        seen["requests"] += 1
        seen["first"] = seen["first"] or time.perf_counter()
        seen["in_flight"] += 1
        seen["max_in_flight"] = max(seen["max_in_flight"], seen["in_flight"])
        try:
            await asyncio.sleep(delay)
        finally:
            seen["in_flight"] -= 1
            seen["last"] = time.perf_counter()
        return web.json_response({"id": "x", "object": "chat.completion", "model": body["model"],
                                  "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "[]"}}],
                                  "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

    app = web.Application(client_max_size=1 << 24)
    app.router.add_post("/v1/chat/completions", complete)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)

    return f"http://127.0.0.1:{port}", seen, stop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=512)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--delay", type=float, default=0.1)
    add_out(ap, __file__)
    args = ap.parse_args()
    url, seen, stop = slow_endpoint(args.delay)
    per = args.entries // 2  # simple_python has 400 entries, live_multiple 1,053: half from each
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "funreason.cli", "eval", "bfcl", "--endpoint", url, "--served-model", "m",
                   "--api-key", KEY, "--categories", "simple_python,live_multiple", "--limit", str(per),
                   "--concurrency", str(args.concurrency), "--out", str(Path(tmp) / "eval"),
                   # a speed measure of a stand-in endpoint, over both splits: its looks at test entries are no model's,
                   # so they go to a ledger of their own, not the project's
                   "--split", "all", "--ledger", str(Path(tmp) / "ledger.jsonl")]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                sys.exit(proc.stderr[-2000:])
            report = json.loads((Path(tmp) / "eval" / "report.json").read_text())
    finally:
        stop()
    # the request rate the endpoint saw: from the first request's arrival to the last answer
    span = seen["last"] - seen["first"]
    rate = seen["requests"] / span
    ideal = args.concurrency / args.delay
    write_result({"entries": seen["requests"], "concurrency": args.concurrency, "delay_s": args.delay,
                      "requests_span_s": round(span, 3), "rate_per_s": round(rate, 1), "ideal_per_s": ideal,
                      "cli_report_entries_per_s": report["entries_per_second"],
                      "share_of_ideal": round(rate / ideal, 3), "max_in_flight": seen["max_in_flight"],
                      "unauthorised": seen["unauthorised"], "cli_wall_s": round(wall, 1)}, args.out)


if __name__ == "__main__":
    main()
