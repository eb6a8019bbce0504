"""The OpenAI-compatible server, on a real port, with the official `openai` client."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from conftest import JOKE, PARIS, TOOLS

from funreason.llm.local import LocalEngine
from funreason.serve.app import BackgroundServer, ServeConfig, create_app




@pytest.fixture(scope="module")
def engine(trained_tiny_model_dir):
    eng = LocalEngine.from_pretrained(str(trained_tiny_model_dir), max_batch=16)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def server(engine):
    srv = BackgroundServer(create_app(engine, ServeConfig("tiny", max_tokens_cap=512, max_body_bytes=64 << 10)))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=server.url + "/v1", api_key="unused")


def test_openai_client_gets_tool_calls(client):
    r = client.chat.completions.create(model="tiny", messages=PARIS, tools=TOOLS, max_tokens=64)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    assert choice.message.model_extra["reasoning_content"] == "The user names Paris."
    assert r.usage.completion_tokens > 0 and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_openai_client_streams_reasoning_and_tool_calls(client):
    stream = client.chat.completions.create(model="tiny", messages=PARIS, tools=TOOLS, max_tokens=64, stream=True,
                                            stream_options={"include_usage": True})
    reasoning, name, args, finish, usage = "", "", "", None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for ch in chunk.choices:
            reasoning += (ch.delta.model_extra or {}).get("reasoning_content") or ""
            for tc in ch.delta.tool_calls or []:
                name += tc.function.name or ""
                args += tc.function.arguments or ""
            finish = ch.finish_reason or finish
    assert reasoning == "The user names Paris."
    assert name == "get_weather" and json.loads(args) == {"city": "Paris"} and finish == "tool_calls"
    assert usage is not None and usage.completion_tokens > 0


def test_plain_answer_is_content_and_required_choice_says_when_unmet(client):
    r = client.chat.completions.create(model="tiny", messages=JOKE, tools=TOOLS, max_tokens=64)
    assert r.choices[0].message.content == "I can only look up the weather."
    assert r.choices[0].message.tool_calls is None and r.choices[0].finish_reason == "stop"
    r = client.chat.completions.create(model="tiny", messages=JOKE, tools=TOOLS, max_tokens=64, tool_choice="required")
    assert r.choices[0].message.tool_calls is None
    assert "not one" in r.choices[0].message.refusal
    named = {"type": "function", "function": {"name": "get_weather"}}
    r = client.chat.completions.create(model="tiny", messages=PARIS, tools=TOOLS, max_tokens=64, tool_choice=named)
    assert r.choices[0].message.tool_calls[0].function.name == "get_weather"


def test_sampling_settings(client):
    kw = dict(model="tiny", messages=JOKE, max_tokens=12, temperature=1.5, top_p=0.9, seed=7)
    a = client.chat.completions.create(**kw).choices[0].message.content
    b = client.chat.completions.create(**kw).choices[0].message.content
    assert a == b  # same seed, same sample
    r = client.chat.completions.create(model="tiny", messages=JOKE, tools=TOOLS, max_tokens=64, stop=["look"])
    assert r.choices[0].message.content == "I can only" and r.choices[0].finish_reason == "stop"
    r = client.chat.completions.create(model="tiny", messages=JOKE, tools=TOOLS, max_tokens=3)
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 3


def test_errors_are_openai_style_and_4xx(server):
    url = server.url + "/v1/chat/completions"

    def post(content=None, **kw):
        return httpx.post(url, content=content if content is not None else json.dumps(kw), headers={"content-type": "application/json"})

    cases = [
        (post(content=b"{not json"), 400, None),
        (post(model="gpt-4", messages=PARIS), 404, "model_not_found"),
        (post(model="tiny", messages=PARIS, tools=[{"type": "function", "function": {"name": "bad name!"}}]), 400, None),
        (post(model="tiny", messages=PARIS, tools=[{"type": "function", "function": {"name": "f", "parameters": "x"}}]), 400, None),
        (post(model="tiny", messages=PARIS, max_tokens=100_000), 400, None),
        (post(model="tiny", messages="hi"), 400, None),
        (post(model="tiny", messages=[{"role": "robot", "content": "x"}]), 400, None),
        (post(model="tiny", messages=PARIS, tool_choice="required"), 400, None),
        (post(content=json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "x" * 100_000}]})), 413, None),
    ]
    for resp, status, code in cases:
        assert resp.status_code == status, resp.text
        err = resp.json()["error"]
        assert err["message"] and err["type"]
        if code:
            assert err["code"] == code


def test_generation_failure_is_a_500_and_the_server_lives_on(server, engine, monkeypatch):
    def failing(*args, **kwargs):  # a fault we cannot cause on a healthy model: the model itself throws
        raise RuntimeError("device lost")

    monkeypatch.setattr(engine.model, "forward", failing)
    r = httpx.post(server.url + "/v1/chat/completions", json={"model": "tiny", "messages": PARIS, "max_tokens": 8})
    assert r.status_code == 500 and "device lost" in r.json()["error"]["message"]
    monkeypatch.undo()
    r = httpx.post(server.url + "/v1/chat/completions", json={"model": "tiny", "messages": PARIS, "tools": TOOLS, "max_tokens": 64})
    assert r.status_code == 200 and r.json()["choices"][0]["finish_reason"] == "tool_calls"


def test_api_key_guards_every_route_but_health(engine):
    srv = BackgroundServer(create_app(engine, ServeConfig("tiny", api_key="s3cret")))
    try:
        assert httpx.get(srv.url + "/health").status_code == 200
        assert httpx.get(srv.url + "/v1/models").status_code == 401
        bad = httpx.get(srv.url + "/v1/models", headers={"Authorization": "Bearer wrong"})
        assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_api_key"
        ok = httpx.get(srv.url + "/v1/models", headers={"Authorization": "Bearer s3cret"})
        assert ok.json()["data"][0]["id"] == "tiny"
    finally:
        srv.stop()


def test_concurrent_requests_are_batched_and_none_fail(server, engine):
    async def load(clients: int, seconds: float):
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            stats = {"ok": 0, "failed": 0}
            end = time.monotonic() + seconds

            async def one_client():
                while time.monotonic() < end:
                    r = await http.post("/v1/chat/completions", json={"model": "tiny", "messages": PARIS, "tools": TOOLS, "max_tokens": 32})
                    ok = r.status_code == 200 and r.json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
                    stats["ok" if ok else "failed"] += 1

            await asyncio.gather(*[one_client() for _ in range(clients)])
            return stats

    before = engine.batches
    stats = asyncio.run(load(64, 4.0))
    assert stats["failed"] == 0 and stats["ok"] >= 64
    assert engine.batches - before < stats["ok"], "requests should share batches"


def test_one_bad_request_never_fails_its_batch_mates(server, engine):
    from funreason.errors import BackendError
    from funreason.llm import SamplingParams

    # over HTTP the bad settings are refused alone, with a 400 naming the parameter
    async def burst():
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            body = {"model": "tiny", "messages": PARIS, "tools": TOOLS, "max_tokens": 16, "temperature": 0.7}
            bad = [dict(body, top_p=0), dict(body, seed=2**70)]
            return await asyncio.gather(*[http.post("/v1/chat/completions", json=b) for b in [body] * 8 + bad])

    replies = asyncio.run(burst())
    assert [r.status_code for r in replies] == [200] * 8 + [400, 400]
    assert [r.json()["error"]["param"] for r in replies[8:]] == ["top_p", "seed"]
    # inside the engine, a row whose own settings break the sampler fails alone: same batch, others finish
    good = SamplingParams(max_tokens=8, temperature=0.7, seed=1)
    futures = [engine.submit("hello", good) for _ in range(3)]
    futures += [engine.submit("hello", SamplingParams(max_tokens=8, temperature=0.7, top_p=0.0)),
                engine.submit("hello", SamplingParams(max_tokens=8, temperature=0.7, seed=2**70))]
    futures += [engine.submit("hello", good) for _ in range(3)]
    for f in futures[:3] + futures[5:]:
        assert f.result(timeout=60).completion_tokens > 0
    for f in futures[3:5]:
        with pytest.raises(BackendError, match="generation failed"):
            f.result(timeout=60)


def test_prompts_over_the_window_or_the_cap_are_refused_before_generating(server, engine):
    # 200-level nested parameters in a few KB: once 107k prompt tokens that stalled every client
    nested = {"type": "string"}
    for _ in range(200):
        nested = {"type": "object", "properties": {"x": nested}}
    tools = [{"type": "function", "function": {"name": f"f{i}", "description": "d" * 40, "parameters": {"type": "object", "properties": {"a": nested}}}}
             for i in range(3)]
    before = engine.batches
    r = httpx.post(server.url + "/v1/chat/completions", json={"model": "tiny", "messages": PARIS, "tools": tools, "max_tokens": 8})
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded", r.text
    assert "context window of 8192 tokens" in r.json()["error"]["message"] and engine.batches == before  # nothing decoded
    capped = BackgroundServer(create_app(engine, ServeConfig("tiny", max_prompt_tokens=40)))
    try:
        r = httpx.post(capped.url + "/v1/chat/completions", json={"model": "tiny", "messages": PARIS, "tools": TOOLS, "max_tokens": 8})
        assert r.status_code == 400 and "--max-prompt-tokens 40" in r.json()["error"]["message"]
        r = httpx.post(capped.url + "/v1/chat/completions", json={"model": "tiny", "messages": PARIS, "max_tokens": 8})
        assert r.status_code == 200  # a short prompt still passes
    finally:
        capped.stop()


def test_completions_decode_a_prompt_rendered_by_the_client_as_the_local_engine_does(client, server, engine):
    """`/v1/completions` (what self-refine's launched engines are driven by): the prompt text is
    decoded as it is, so the answer equals the local engine's on the same rendered prompt."""
    from funreason.chat import render_prompt
    from funreason.formats.openai import message_from_openai
    from funreason.llm import SamplingParams
    from funreason.schema import Example, Tool

    tools = [Tool(t["function"]["name"], t["function"].get("description", ""), t["function"]["parameters"]) for t in TOOLS]
    prompt = render_prompt(Example("q", tools, [message_from_openai(m) for m in PARIS]), engine.tokenizer)
    r = client.completions.create(model="tiny", prompt=prompt, max_tokens=40, temperature=0)
    local = engine.submit(prompt, SamplingParams(max_tokens=40)).result()
    assert r.choices[0].text == local.text and "[get_weather(city='Paris')]" in local.text
    assert r.usage.prompt_tokens == local.prompt_tokens and r.choices[0].finish_reason == local.finish_reason
    bad = [({"model": "tiny", "prompt": ""}, 400, "prompt"), ({"model": "other", "prompt": "x"}, 404, "model"),
           ({"model": "tiny", "prompt": "x", "stream": True}, 400, "stream"), ({"model": "tiny", "prompt": "x", "top_p": 0}, 400, "top_p"),
           ({"model": "tiny", "prompt": "x", "max_tokens": 10**6}, 400, "max_tokens")]
    for body, status, param in bad:
        resp = httpx.post(server.url + "/v1/completions", json=body)
        assert resp.status_code == status and resp.json()["error"]["param"] == param, (body, resp.text)


def test_a_guided_server_answers_required_tool_choice_with_a_call_that_fits_and_leaves_free_answers_as_they_are(engine):
    from openai import OpenAI

    srv = BackgroundServer(create_app(engine, ServeConfig("tiny", guided=True)))
    try:
        client = OpenAI(base_url=srv.url + "/v1", api_key="unused")
        r = client.chat.completions.create(model="tiny", messages=PARIS, tools=TOOLS, max_tokens=64)
        assert json.loads(r.choices[0].message.tool_calls[0].function.arguments) == {"city": "Paris"}
        r = client.chat.completions.create(model="tiny", messages=JOKE, tools=TOOLS, max_tokens=64)
        assert r.choices[0].message.content == "I can only look up the weather."  # auto: prose stays the model's
        # required: the unguided server could only refuse (above); guided, the answer is a call of the tool
        r = client.chat.completions.create(model="tiny", messages=JOKE, tools=TOOLS, max_tokens=64, tool_choice="required")
        (call,) = r.choices[0].message.tool_calls
        assert call.function.name == "get_weather" and set(json.loads(call.function.arguments)) == {"city"}
        assert r.choices[0].finish_reason == "tool_calls" and r.choices[0].message.refusal is None
    finally:
        srv.stop()


def test_fields_the_server_cannot_apply_are_refused_and_nulls_are_not_given(server):
    """Probe: response_format, logprobs, parallel_tool_calls false, penalties and stream_options
    without stream came back 200 with nothing applied; a null tool_choice or n was a 400, and a null
    max_completion_tokens hid max_tokens (1024 tokens generated for max_tokens 5)."""
    url = server.url + "/v1/chat/completions"

    def post(**kw):
        return httpx.post(url, json={"model": "tiny", "messages": PARIS, **kw})

    for field, value in (("response_format", {"type": "json_object"}), ("logprobs", True), ("parallel_tool_calls", False),
                         ("presence_penalty", 0.5), ("logit_bias", {"1": 5}), ("stream_options", {"include_usage": True})):
        resp = post(tools=TOOLS, **{field: value})
        assert resp.status_code == 400 and resp.json()["error"]["param"] == field, (field, resp.text)
    for field, value in (("response_format", {"type": "text"}), ("logprobs", False), ("parallel_tool_calls", True), ("presence_penalty", 0)):
        assert post(tools=TOOLS, max_tokens=8, **{field: value}).status_code == 200, field  # what the server does anyway
    fine = post(tools=TOOLS, tool_choice=None, n=None, max_tokens=5, max_completion_tokens=None, temperature=None)
    assert fine.status_code == 200 and fine.json()["usage"]["completion_tokens"] <= 5, fine.text


def test_earlier_calls_stay_in_the_prompt_when_no_call_is_wanted(server):
    """Probe: with tool_choice none (or no tools) the prompt kept only each message's content, so an
    earlier assistant turn that called a function showed as an empty turn before its tool result."""
    called = [*PARIS, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "22C sunny"}, {"role": "user", "content": "Thanks. Summarise."}]
    silent = [*PARIS, {"role": "assistant", "content": ""}, {"role": "user", "content": "22C sunny"}, {"role": "user", "content": "Thanks. Summarise."}]
    tokens = {}
    for name, messages in (("called", called), ("silent", silent)):
        for extra in ({"tools": TOOLS, "tool_choice": "none"}, {}):
            resp = httpx.post(server.url + "/v1/chat/completions", json={"model": "tiny", "messages": messages, "max_tokens": 1, **extra})
            assert resp.status_code == 200, resp.text
            tokens[name, bool(extra)] = resp.json()["usage"]["prompt_tokens"]
    for with_tools in (True, False):  # the call's text, get_weather(city='Paris'), is in the prompt
        assert tokens["called", with_tools] > tokens["silent", with_tools] + 5, tokens


def test_a_streamed_answers_first_delta_names_the_role_only(server):
    """Probe: the first delta carried content "", so a streamed tool-call message ended with content ''
    where the unstreamed one has null."""
    with httpx.stream("POST", server.url + "/v1/chat/completions",
                      json={"model": "tiny", "messages": PARIS, "tools": TOOLS, "max_tokens": 64, "stream": True}) as resp:
        first = next(line for line in resp.iter_lines() if line.startswith("data: "))
    assert json.loads(first[len("data: "):])["choices"][0]["delta"] == {"role": "assistant"}


def test_content_parts_the_developer_role_and_unserved_routes_as_openai_has_them(server, client):
    """Probe: text content parts and the `developer` role (what agent frameworks send) were 400s;
    a route or method not served answered {"detail": ...}; `models.retrieve` had no route."""
    import openai

    url = server.url + "/v1/chat/completions"
    parts = [{"role": "developer", "content": "Answer briefly."},
             {"role": "user", "content": [{"type": "text", "text": "Weather in"}, {"type": "text", "text": "Paris?"}]}]
    assert httpx.post(url, json={"model": "tiny", "messages": parts, "max_tokens": 4}).status_code == 200
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}]
    resp = httpx.post(url, json={"model": "tiny", "messages": image})
    assert resp.status_code == 400 and "content parts other than text" in resp.json()["error"]["message"]
    for resp, status in ((httpx.get(server.url + "/v1/nowhere"), 404), (httpx.get(url), 405)):
        assert resp.status_code == status and resp.json()["error"]["message"] and resp.json()["error"]["type"], resp.text
    assert client.models.retrieve("tiny").id == "tiny"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4")
