"""FCDR pipeline throughput against a local endpoint that answers every request after 100 ms.

With concurrency 64 the ideal is 64 / 0.1 s = 640 requests/s. Reports the achieved share of that,
and the pipeline's own overhead per row: CPU time of the refine process (parsing, checks, prompt
building, HTTP client, bookkeeping; everything but waiting) divided by rows. The endpoint runs in
a separate process (raw asyncio) so its CPU is not counted. Prints JSON and writes it to `--out`
(bench/results/refine_throughput.json). The defaults are already the small run that `make bench` runs.

    .venv/bin/python bench/perf/refine_throughput.py [--rows 2000] [--concurrency 64] [--latency 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import socket
import tempfile
import time
from pathlib import Path

from common import add_out, write_result

from funreason.data.synth import generate
from funreason.fcdr.runner import RefineConfig, run_refine
from funreason.llm.http import HTTPBackend

REPLY = json.dumps({"id": "x", "object": "chat.completion", "choices": [{"index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "Checked.\nVERDICT: PASS"}}],
                    "usage": {"prompt_tokens": 300, "completion_tokens": 5, "total_tokens": 305}}).encode()


def serve(port: int, latency: float, ready) -> None:
    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                n = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(n)
                await asyncio.sleep(latency)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(REPLY) + REPLY)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=2048)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--latency", type=float, default=0.1)
    add_out(p, __file__)
    a = p.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ready = mp.Event()
    server = mp.Process(target=serve, args=(port, a.latency, ready), daemon=True)
    server.start()
    ready.wait(10)
    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "in.jsonl"
        rows = [r for r in generate(a.rows * 2, seed=1, reasoning_share=1.0) if r["answers"].startswith("[")][: a.rows]
        inp.write_text("".join(json.dumps(r) + "\n" for r in rows))

        async def go():
            async with HTTPBackend([f"http://127.0.0.1:{port}"], "bench", concurrency=a.concurrency) as llm:
                cpu0, t0 = time.process_time(), time.perf_counter()
                report = await run_refine(RefineConfig(str(inp), str(Path(tmp) / "out"), concurrency=a.concurrency), llm)
                return report, llm.usage, time.process_time() - cpu0, time.perf_counter() - t0

        report, usage, cpu, wall = asyncio.run(go())
    server.terminate()
    ideal = a.concurrency / a.latency
    rate = usage.requests / wall
    write_result({
        "rows": report.rows, "kept": report.outcomes["kept"], "requests": usage.requests, "seconds": round(wall, 2),
        "requests_per_s": round(rate, 1), "ideal_requests_per_s": ideal, "share_of_ideal": round(rate / ideal, 3),
        "overhead_ms_per_row": round(1000 * cpu / report.rows, 3), "overhead_ms_per_request": round(1000 * cpu / usage.requests, 3),
    }, a.out)


if __name__ == "__main__":
    main()
