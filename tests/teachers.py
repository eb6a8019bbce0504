"""Scripted teacher endpoints for FCDR tests: real HTTP servers on 127.0.0.1 (raw asyncio, so
they can also misbehave at the connection level: drop connections, truncate bodies, stall).

- the rule teacher answers like a careful, deterministic judge: it writes reasoning ending in the
  reference answer, passes what is right, fails queries marked UNSOLVABLE / BADCOT, and fixes
  arguments whose value is 'wrong';
- chaos mode answers a random share of requests with garbage, empty content, HTTP 500, 429 with
  Retry-After, a stall past the client's timeout, a slow answer, a truncated or non-JSON body, or
  a dropped connection.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import socket
import threading

from funreason.fcdr.rule_teacher import section


def rule_teacher(prompt: str) -> str:
    query = section(prompt, "Query")
    answer = section(prompt, "Reference answer") or section(prompt, "Answer") or section(prompt, "Calls") or section(prompt, "Previous calls")
    if prompt.startswith("You are given a user query"):
        return f"<think>\nThe user asks: {query}\nThe matching function and the values in the query give the call.\n</think>\nANSWER: {answer}"
    if prompt.startswith("You are given a conversation"):  # a conversation's statement step
        return f"<think>\nThe results so far answer: {query}\n</think>\nANSWER: {section(prompt, 'Reference reply')}"
    if prompt.startswith("Decide whether"):
        return "It reads as prose.\nVERDICT: STATEMENT"
    if prompt.startswith("Judge whether this function-calling example"):
        return "No function can do that.\nVERDICT: FAIL" if "UNSOLVABLE" in query else "Solvable.\nVERDICT: PASS"
    if prompt.startswith("Judge the reasoning"):
        return "The steps do not follow.\nVERDICT: FAIL" if "BADCOT" in query else "Sound.\nVERDICT: PASS"
    if prompt.startswith("Score the reasoning"):  # self-refinement: longer reasoning scores higher
        if "BADCOT" in query:
            return "The steps do not follow.\nSCORE: 1\nVERDICT: FAIL"
        return f"Sound.\nSCORE: {min(10, 4 + len(section(prompt, 'Reasoning')) // 20)}\nVERDICT: PASS"
    if prompt.startswith("Judge the function calls"):
        return "A value is wrong.\nVERDICT: FAIL" if "'wrong'" in answer else "Correct.\nVERDICT: PASS"
    if prompt.startswith("The calls below"):
        if "NEVERFIX" in query:
            return "ANSWER: [not a call"
        return "ANSWER: " + answer.replace("'wrong'", "'right'")
    return "I do not understand."


class TeacherServer:
    """`with TeacherServer(chaos=0.3, seed=1) as t: t.url`"""

    def __init__(self, chaos: float = 0.0, seed: int = 0, latency: float = 0.0, stall: float = 3.0, script: list[str] | None = None,
                 replies: dict[str, list[str]] | None = None):
        self.chaos, self.latency, self.stall = chaos, latency, stall
        self.replies = replies or {}  # model name -> its replies, in order (then the rule teacher's)
        self.script = list(script or [])  # fault kinds for the first requests, in order ("ok" = none)
        self.rng = random.Random(seed)
        self.requests = 0
        self.in_flight = self.max_in_flight = 0  # requests being answered at once: concurrency, counted
        self.loop = asyncio.new_event_loop()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()

    def __enter__(self) -> "TeacherServer":
        self.thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        async def shutdown():
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop)
        self.thread.join(timeout=5)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=1024))
        self._ready.set()
        self.loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"content-length:\s*(\d+)", head, re.I).group(1))
                body = json.loads(await reader.readexactly(length))
                self.requests += 1
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    answered = await self._respond(body, writer)
                finally:
                    self.in_flight -= 1
                if not answered:
                    return
        except (asyncio.IncompleteReadError, ConnectionError, AttributeError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _respond(self, body: dict, writer: asyncio.StreamWriter) -> bool:
        scripted = self.replies.get(body.get("model"))
        text = scripted.pop(0) if scripted else rule_teacher(body["messages"][-1]["content"])
        status, payload, headers = 200, None, ""
        if self.latency:
            await asyncio.sleep(self.latency)
        kind = None
        if self.script:
            kind = self.script.pop(0)
        elif self.chaos and self.rng.random() < self.chaos:
            kind = self.rng.choice(["garbage", "empty", "500", "429", "stall", "slow", "truncated", "nonjson", "drop"])
        if kind is not None:
            if kind == "garbage":
                text = "".join(self.rng.choice("abc VERDICT:#[]()\n") for _ in range(40))
            elif kind == "empty":
                text = ""
            elif kind == "500":
                status, payload = 500, b'{"error": {"message": "boom"}}'
            elif kind == "429":
                status, payload, headers = 429, b'{"error": {"message": "slow down"}}', "Retry-After: 0\r\n"
            elif kind == "429-wait":
                status, payload, headers = 429, b'{"error": {"message": "slow down"}}', "Retry-After: 1\r\n"
            elif kind == "400":
                status, payload = 400, b'{"error": {"message": "bad request"}}'
            elif kind == "stall":
                await asyncio.sleep(self.stall)
            elif kind == "slow":
                await asyncio.sleep(0.2)
            elif kind == "truncated":
                payload = json.dumps(_completion(text)).encode()[:-15]
            elif kind == "nonjson":
                payload = b"<html>Bad Gateway</html>"
            elif kind == "drop":
                return False
        if payload is None:
            payload = json.dumps(_completion(text)).encode()
        writer.write(f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(payload)}\r\n{headers}\r\n".encode() + payload)
        await writer.drain()
        return True


def _completion(text: str) -> dict:
    return {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": max(1, len(text) // 4), "total_tokens": 10 + max(1, len(text) // 4)}}
