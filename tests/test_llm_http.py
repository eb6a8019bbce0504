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


def test_a_remote_engine_sends_the_rendered_prompt_without_a_second_bos():
    """Review M6. vLLM's /v1/completions tokenizes the prompt with the tokenizer's special tokens
    unless the request says `add_special_tokens: false`. Llama 3's template already writes
    `<|begin_of_text|>`, so without it the engine would see two BOS tokens, not the prompt the model
    was trained on. The server below tokenizes as vLLM does (vLLM itself needs a GPU), with Llama 3.1's
    real vocabulary and template."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from vocabularies import tokenizer as vocabulary

    from funreason.chat import render_prompt
    from funreason.llm.http import RemoteEngine
    from funreason.schema import Example, Message, Tool
    from funreason.serve.app import BackgroundServer

    tok = vocabulary("llama3.1", "llama31.jinja")

    async def completions(request):
        body = await request.json()
        ids = tok(body["prompt"], add_special_tokens=body.get("add_special_tokens", True))["input_ids"]  # vLLM's default
        return JSONResponse({"choices": [{"text": " ".join(map(str, ids[:2])), "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": len(ids), "completion_tokens": 1}})

    app = Starlette(routes=[Route("/v1/completions", completions, methods=["POST"])])

    ex = Example("q", [Tool("get_weather", "Weather.", {"type": "object", "properties": {"city": {"type": "string"}}})],
                 [Message("user", "Weather in Paris?")])
    prompt = render_prompt(ex, tok)
    trained = tok(prompt, add_special_tokens=False)["input_ids"]  # as training and the local engine tokenize it
    assert trained[0] == tok.bos_token_id and trained[1] != tok.bos_token_id
    with BackgroundServer(app) as srv:
        engine = RemoteEngine(srv.url, "llama", tok)
        try:
            gen = engine.submit(prompt, SamplingParams(max_tokens=4)).result(timeout=60)
        finally:
            engine.close()
    assert gen.prompt_tokens == len(trained), f"the engine saw {gen.prompt_tokens} tokens, trained on {len(trained)}: {gen.text}"
    assert gen.text == f"{trained[0]} {trained[1]}"
