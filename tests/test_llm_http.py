"""The OpenAI-compatible HTTP backend against real local servers that misbehave on cue."""

from __future__ import annotations

import asyncio
import time

import pytest
from teachers import TeacherServer

from funreason.errors import BackendError
from funreason.llm import SamplingParams
from funreason.llm.http import HTTPBackend

MSG = [{"role": "user", "content": "Judge the function calls below for the query.\n\nQuery:\nq\n\nCalls:\n[f(a=1)]\n\nExplain"}]


def ask(urls, n=1, **kw):
    async def go():
        async with HTTPBackend(urls, "teacher", backoff_base=0.01, **kw) as llm:
            out = await asyncio.gather(*[llm.chat(MSG, SamplingParams(max_tokens=8)) for _ in range(n)])
            return out, llm.usage
    return asyncio.run(go())


@pytest.mark.parametrize("faults", [["500", "500"], ["429"], ["drop"], ["truncated"], ["nonjson"], ["drop", "truncated", "nonjson", "500"]])
def test_retries_until_a_good_answer(faults):
    with TeacherServer(script=faults + ["ok"]) as t:
        (gen,), usage = ask([t.url], max_retries=6)
    assert gen.text.endswith("VERDICT: PASS") and usage.retries == len(faults) and usage.requests == 1
    assert usage.prompt_tokens == 10 and usage.completion_tokens > 0


def test_retry_after_is_honoured():
    with TeacherServer(script=["429-wait"]) as t:
        start = time.perf_counter()
        ask([t.url])
    assert time.perf_counter() - start >= 1.0


def test_a_stalled_request_times_out_and_is_retried():
    with TeacherServer(script=["stall", "ok"], stall=30.0) as t:
        (gen,), usage = ask([t.url], timeout=0.3)
    # Without the timeout the stalled request would have been answered (after 30 s) and not retried.
    assert usage.retries == 1 and t.requests == 2 and gen.text


def test_gives_up_with_the_reason_and_does_not_retry_client_errors():
    with TeacherServer(script=["500"] * 5) as t:
        with pytest.raises(BackendError, match="gave up after 3 attempts.*HTTP 500"):
            ask([t.url], max_retries=2)
    with TeacherServer(script=["400", "ok"]) as t:
        with pytest.raises(BackendError, match="HTTP 400"):
            ask([t.url], max_retries=5)
        assert t.requests == 1


def test_requests_run_concurrently_and_spread_over_endpoints():
    with TeacherServer(latency=0.5) as a, TeacherServer(latency=0.5) as b:
        out, usage = ask([a.url, b.url], n=64, concurrency=32)
    # Counted by the servers, not timed: one at a time would leave max_in_flight at 1.
    assert len(out) == 64 and a.max_in_flight + b.max_in_flight >= 16, (a.max_in_flight, b.max_in_flight)
    assert min(usage.by_endpoint.values()) >= 16, usage.by_endpoint
