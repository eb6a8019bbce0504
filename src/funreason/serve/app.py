"""`funreason serve`: an OpenAI-compatible server for a trained FunReason model.

Routes: `GET /health`, `GET /v1/models`, `POST /v1/chat/completions` (with `tools`, `tool_choice`,
`stream`, `temperature`, `top_p`, `max_tokens`, `stop`, `seed`), and `POST /v1/completions` for a
prompt the client rendered itself (self-refine's rollouts and evaluation on a launched engine). With tools, the model is prompted
as it was trained (its chat template, BFCL's system prompt with the tool list) and its output is
split: `<think>…</think>` → `reasoning_content`, a call list → `tool_calls` with
`finish_reason: "tool_calls"`, anything else → `content`. When `tool_choice` is `required` or names
a function and the output is not such a call, the reply says so in `message.refusal` instead of
inventing a call. With `--guided` (`ServeConfig.guided`), a request with tools is decoded under
their call grammar (`funreason.llm.guided`): a call list keeps to their names, parameters and types, and
with `tool_choice` required or named the answer is a call list. Concurrent requests are batched on the model (see `funreason.llm.local`).

Errors are OpenAI-style `{"error": {"message", "type", "param", "code"}}`: malformed JSON, unknown
model, bad tools, oversize body and `max_tokens` over the cap are 4xx; a generation failure is a
500 and the server keeps serving. With an API key every route but `/health` needs
`Authorization: Bearer KEY`. Binds to 127.0.0.1 unless told otherwise.

No client holds up the others: a prompt that with its `max_tokens` does not fit the model's window
is refused before decoding, and one longer in characters than the window could hold (the longest
token of the vocabulary times the tokens allowed) before it is even tokenized; tokenizing runs in a
worker thread, off the event loop; a body that does not arrive within `body_timeout_s` gets 408; a
request whose client goes away is cancelled and leaves its batch at the next decode step, and so
is a stream whose client stops reading: the server's send buffer is bounded (`SEND_BUFFER_BYTES`),
so its writes block, and an event not sent within `stream_send_timeout_s` cancels the stream (the
connection stays open until its client closes it; it holds no decoding). `/health` is 503
when the generation worker has stopped or has had work but made no decode step for `stall_s`.
One Ctrl-C shuts down: in-flight requests get a grace period, then are cancelled.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from funreason.calls import parse_output, split_think, split_think_partial
from funreason.chat import prompt_messages, render_prompt
from funreason.errors import SchemaError
from funreason.formats.openai import message_from_openai
from funreason.llm import Generation, SamplingParams, ServingEngine
from funreason.schema import Example, Tool, check_tool_turns
from funreason.serve.config import ServeConfig, ServerConfig

_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
SEND_BUFFER_BYTES = 64 * 1024  # per connection: an unread stream fills it within ~100 KB, not the kernel's megabytes
GREEDY_BELOW = 1e-5  # a temperature or top_p below this decodes greedily (as vLLM does)
NORMALISER_SLACK = 4  # a normaliser may merge characters (NFC composes up to 3 into 1): the character bound allows for it


class APIError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass
class ChatRequest:
    prompt: list[int]  # token ids, counted and capped before anything is generated
    params: SamplingParams
    tools: list[Tool]
    tool_choice: Any
    stream: bool
    include_usage: bool


def parse_request(body: Any, cfg: ServeConfig, tokenizer: Any) -> ChatRequest:
    """Validate an OpenAI chat request and build the prompt. Raises APIError (4xx)."""
    if not isinstance(body, dict):
        raise APIError(400, "request body must be a JSON object")
    body = {k: v for k, v in body.items() if v is not None}  # as OpenAI's API reads a null: not given
    _refuse_unapplied(body)
    model = body.get("model")
    if model != cfg.model_name:
        raise APIError(404, f"model {model!r} is not served here; this server serves {cfg.model_name!r}",
                       "invalid_request_error", "model", "model_not_found")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise APIError(400, "'messages' must be a non-empty list", param="messages")
    try:
        messages = [message_from_openai(_plain_message(m)) for m in raw_messages]
        check_tool_turns(messages)  # as OpenAI's API: a tool message answers a call before it
    except SchemaError as e:
        raise APIError(400, f"bad message: {e}", param="messages") from None
    tools = _tools(body.get("tools"))
    tool_choice = body.get("tool_choice", "auto" if tools else "none")
    if tool_choice not in ("auto", "none", "required") and not _named_choice(tool_choice):
        raise APIError(400, "tool_choice must be 'auto', 'none', 'required' or {'type': 'function', 'function': {'name': ...}}", param="tool_choice")
    if tool_choice != "none" and tool_choice != "auto" and not tools:
        raise APIError(400, "tool_choice needs 'tools'", param="tool_choice")
    if _named_choice(tool_choice):
        name = tool_choice["function"]["name"]
        tools = [t for t in tools if t.name == name]
        if not tools:
            raise APIError(400, f"tool_choice names {name!r}, which is not among the tools", param="tool_choice")
    if body.get("n", 1) != 1:
        raise APIError(400, "only n=1 is supported", param="n")
    params = _sampling(body, cfg)
    use_tools = bool(tools) and tool_choice != "none"
    if use_tools:
        prompt = render_prompt(Example("request", tools, messages), tokenizer)
    else:
        # no tools offered (or tool_choice none): no function-calling prompt, but earlier turns keep their calls
        plain = prompt_messages(Example("request", [], messages))
        prompt = tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=True)
    _check_characters(prompt, params, cfg, tokenizer)
    if use_tools and cfg.guided:  # required or named: the answer is a call; auto: prose stays possible
        from funreason.llm.guided import guided_params

        params = guided_params(params, tools, tokenizer, prose=tool_choice == "auto")
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    _check_length(len(ids), params, cfg)
    stream_options = body.get("stream_options") or {}
    return ChatRequest(ids, params, tools if use_tools else [], tool_choice, bool(body.get("stream")),
                       bool(isinstance(stream_options, dict) and stream_options.get("include_usage")))


def _plain_message(m: Any) -> Any:
    """A message as the readers take it: OpenAI's `developer` role is the system's (its newer name),
    and content given as parts is their text, a line each; a part that is not text is refused (a model
    of text cannot read it)."""
    if not isinstance(m, dict):
        return m
    out = {**m, "role": "system"} if m.get("role") == "developer" else dict(m)
    if isinstance(out.get("content"), list):
        parts = out["content"]
        if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in parts):
            raise SchemaError("content parts other than text ({'type': 'text', 'text': ...}) cannot be read by this model")
        out["content"] = "\n".join(p["text"] for p in parts)  # as vLLM joins them
    return out


# OpenAI chat fields this server cannot apply: refused, never taken and dropped (a client would
# believe its JSON mode, log probabilities or single-call limit took effect)
_UNAPPLIED = {"logprobs": lambda v: v is not False, "top_logprobs": lambda v: True, "logit_bias": lambda v: bool(v),
              "presence_penalty": lambda v: v != 0, "frequency_penalty": lambda v: v != 0,
              "parallel_tool_calls": lambda v: v is not True,
              "response_format": lambda v: not (isinstance(v, dict) and v.get("type") == "text")}


def _refuse_unapplied(body: dict) -> None:
    for name, applies in _UNAPPLIED.items():
        if name in body and applies(body[name]):
            raise APIError(400, f"{name!r} {json.dumps(body[name])[:80]} is not supported by this server", param=name)
    if "stream_options" in body and body.get("stream") is not True:
        raise APIError(400, "'stream_options' is only allowed with stream: true", param="stream_options")


def parse_completion(body: Any, cfg: ServeConfig, tokenizer: Any) -> tuple[list[int], SamplingParams]:
    """Validate a legacy completions request: a prompt rendered by the client (self-refine's
    rollouts, which prompt the model exactly as it was trained), decoded as it is. Raises APIError."""
    if not isinstance(body, dict):
        raise APIError(400, "request body must be a JSON object")
    if body.get("model") != cfg.model_name:
        raise APIError(404, f"model {body.get('model')!r} is not served here; this server serves {cfg.model_name!r}",
                       "invalid_request_error", "model", "model_not_found")
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise APIError(400, "'prompt' must be one non-empty string", param="prompt")
    for unsupported in ("stream", "echo", "logprobs", "suffix", "best_of"):
        if body.get(unsupported):
            raise APIError(400, f"'{unsupported}' is not supported on /v1/completions here", param=unsupported)
    if body.get("n", 1) != 1:
        raise APIError(400, "only n=1 is supported", param="n")
    special = body.get("add_special_tokens", False)  # vLLM's field; the default here is the local engine's (a rendered prompt)
    if not isinstance(special, bool):
        raise APIError(400, "'add_special_tokens' must be true or false", param="add_special_tokens")
    params = _sampling(body, cfg)
    _check_characters(prompt, params, cfg, tokenizer)
    ids = tokenizer(prompt, add_special_tokens=special)["input_ids"]
    _check_length(len(ids), params, cfg)
    return ids, params


def longest_token(tokenizer: Any) -> int:
    """The most characters one token of `tokenizer` stands for: its longest vocabulary entry (a
    byte-level entry has one character per byte, and a text character is at least one byte)."""
    return max((len(t) for t in tokenizer.get_vocab()), default=1) or 1


def _check_characters(prompt: str, params: SamplingParams, cfg: ServeConfig, tokenizer: Any) -> None:
    """Refuse, before tokenizing, a prompt with more characters than the allowed tokens could spell.
    A lone surrogate (which no tokenizer takes) is refused here too."""
    limits = []  # (tokens the prompt may have, what says so)
    if cfg.max_prompt_tokens is not None:
        limits.append((cfg.max_prompt_tokens, f"this server's --max-prompt-tokens {cfg.max_prompt_tokens}"))
    if cfg.context_window is not None:
        limits.append((cfg.context_window - params.max_tokens,
                       f"the model's context window of {cfg.context_window} tokens less max_tokens ({params.max_tokens})"))
    if limits:
        tokens, why = min(limits)
        bound = max(tokens, 0) * (cfg.longest_token or longest_token(tokenizer)) * NORMALISER_SLACK
        if len(prompt) > bound:
            raise APIError(400, f"the prompt is {len(prompt)} characters, more than {why} could hold ({bound} characters at most)",
                           param="messages", code="context_length_exceeded")
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as e:
        raise APIError(400, f"the prompt is not valid Unicode ({e.reason} at character {e.start})", param="messages") from None


def _check_length(n: int, params: SamplingParams, cfg: ServeConfig) -> None:
    if cfg.max_prompt_tokens is not None and n > cfg.max_prompt_tokens:
        raise APIError(400, f"the prompt is {n} tokens, over this server's --max-prompt-tokens {cfg.max_prompt_tokens}",
                       param="messages", code="context_length_exceeded")
    if cfg.context_window is not None and n + params.max_tokens > cfg.context_window:
        raise APIError(400, f"the prompt ({n} tokens) and max_tokens ({params.max_tokens}) exceed the model's "
                       f"context window of {cfg.context_window} tokens", param="messages", code="context_length_exceeded")


def _named_choice(choice: Any) -> bool:
    return (isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("function"), dict)
            and isinstance(choice["function"].get("name"), str))


def _tools(raw: Any) -> list[Tool]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise APIError(400, "'tools' must be a list", param="tools")
    tools = []
    for i, t in enumerate(raw):
        fn = t.get("function") if isinstance(t, dict) and t.get("type") == "function" else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not _NAME.match(fn["name"]):
            raise APIError(400, f"tools[{i}] must be {{'type': 'function', 'function': {{'name': <1-64 of A-Za-z0-9_.->, ...}}}}", param=f"tools[{i}]")
        params = fn.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(params, dict) or ("properties" in params and not isinstance(params["properties"], dict)):
            raise APIError(400, f"tools[{i}].function.parameters must be a JSON Schema object", param=f"tools[{i}]")
        if not isinstance(fn.get("description", ""), str):
            raise APIError(400, f"tools[{i}].function.description must be a string", param=f"tools[{i}]")
        tools.append(Tool(fn["name"], fn.get("description", ""), params))
    if len({t.name for t in tools}) != len(tools):
        raise APIError(400, "tool names must be unique", param="tools")
    return tools


def _sampling(body: dict, cfg: ServeConfig) -> SamplingParams:
    default = min(cfg.default_max_tokens, cfg.max_tokens_cap)  # a request that names no max_tokens is never refused for it
    max_tokens = body.get("max_completion_tokens")
    max_tokens = body.get("max_tokens", default) if max_tokens is None else max_tokens  # a null is not given
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise APIError(400, "max_tokens must be a positive integer", param="max_tokens")
    if max_tokens > cfg.max_tokens_cap:
        raise APIError(400, f"max_tokens {max_tokens} is over this server's cap of {cfg.max_tokens_cap}", param="max_tokens")
    temperature = body.get("temperature", 0.0)
    top_p = body.get("top_p", 1.0)
    if temperature is not None and (not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not 0 <= temperature <= 2):
        raise APIError(400, "temperature must be a number in [0, 2]", param="temperature")
    # top_p 0 keeps no token at all: refused here rather than failing inside the sampler
    if top_p is not None and (not isinstance(top_p, (int, float)) or isinstance(top_p, bool) or not 0 < top_p <= 1):
        raise APIError(400, "top_p must be a number in (0, 1]", param="top_p")
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) for s in stop):
        raise APIError(400, "stop must be a string or a list of up to 4 strings", param="stop")
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not -(2**63) <= seed < 2**64):
        raise APIError(400, "seed must be an integer in [-2**63, 2**64)", param="seed")  # torch's generator range
    temperature = float(temperature if temperature is not None else 0.0)
    top_p = float(top_p if top_p is not None else 1.0)
    if temperature < GREEDY_BELOW or top_p < GREEDY_BELOW:  # what both sample is the likeliest token; dividing by 1e-300 is inf
        temperature = 0.0
    return SamplingParams(max_tokens, temperature, top_p, stop, seed)


def build_message(req: ChatRequest, text: str) -> tuple[dict[str, Any], str | None]:
    """(assistant message, finish reason override) from the model's raw output."""
    out = parse_output(text)
    # reasoning_content is always there (None without a think block): clients can index it
    message: dict[str, Any] = {"role": "assistant", "content": None, "reasoning_content": out.reasoning}
    names = {t.name for t in req.tools}
    if req.tools and out.calls and all(c.name in names for c in out.calls):
        message["tool_calls"] = [
            {"id": f"call_{secrets.token_hex(12)}", "type": "function",
             "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)}}
            for c in out.calls
        ]
        if out.content:
            message["content"] = out.content
        return message, "tool_calls"
    message["content"] = split_think(text)[1]
    if req.tool_choice == "required" or _named_choice(req.tool_choice):
        why = out.error or ("the calls name functions that are not among the tools" if out.calls else "no calls")
        message["refusal"] = f"tool_choice asked for a function call, but the model's output is not one ({why})"
    return message, None


class _Guard:
    """API key and body-size checks before any route runs. Plain ASGI rather than FastAPI's
    `@app.middleware("http")`, which hides a client's disconnect from the routes (they could not
    cancel an abandoned generation)."""

    def __init__(self, app: Any, cfg: ServeConfig):
        self.app, self.cfg = app, cfg

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            problem = self.check(scope)
            if problem is not None:
                await JSONResponse(problem.body(), status_code=problem.status)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def check(self, scope: dict) -> APIError | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if scope.get("path") != "/health" and self.cfg.api_key is not None:
            auth = headers.get("authorization", "")
            if not secrets.compare_digest(auth.encode(), f"Bearer {self.cfg.api_key}".encode()):
                return APIError(401, "missing or wrong API key (Authorization: Bearer ...)", "authentication_error", code="invalid_api_key")
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.cfg.max_body_bytes:
            return APIError(413, f"request body over {self.cfg.max_body_bytes} bytes")
        return None


def create_app(engine: ServingEngine, cfg: ServeConfig) -> FastAPI:
    app = FastAPI(title="FunReason", docs_url=None, redoc_url=None)
    if cfg.context_window is None:  # a prompt the model cannot attend to is refused, never decoded
        cfg.context_window = getattr(getattr(engine.model, "config", None), "max_position_embeddings", None)
    if cfg.longest_token is None:
        cfg.longest_token = longest_token(engine.tokenizer)

    def error(e: APIError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status)

    app.add_middleware(_Guard, cfg=cfg)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """A route or method not served (404, 405), in OpenAI's error shape as every other error here."""
        return error(APIError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}"))

    @app.get("/health")
    async def health():
        state = engine.health()
        if not state["alive"]:
            return JSONResponse({"status": "down", "reason": "the generation worker has stopped", **state}, status_code=503)
        if state["stalled_s"] > cfg.stall_s:
            return JSONResponse({"status": "stalled", "reason": f"no decode step for {state['stalled_s']:.0f}s with work "
                                 f"waiting (limit {cfg.stall_s:.0f}s)", **state}, status_code=503)
        return {"status": "ok", **state}

    model_card = {"id": cfg.model_name, "object": "model", "created": 0, "owned_by": "funreason"}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [model_card]}

    @app.get("/v1/models/{model_id:path}")  # the client's models.retrieve; a served name may hold slashes
    async def model(model_id: str):
        if model_id != cfg.model_name:
            return error(APIError(404, f"model {model_id!r} is not served here; this server serves {cfg.model_name!r}",
                                  param="model", code="model_not_found"))
        return model_card

    async def read_body(request: Request) -> Any:
        async def receive() -> bytes:
            raw = b""
            async for chunk in request.stream():
                raw += chunk
                if len(raw) > cfg.max_body_bytes:
                    raise APIError(413, f"request body over {cfg.max_body_bytes} bytes")
            return raw

        try:
            raw = await asyncio.wait_for(receive(), cfg.body_timeout_s)
        except asyncio.TimeoutError:
            raise APIError(408, f"the request body did not arrive within {cfg.body_timeout_s:.0f}s", code="timeout") from None
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise APIError(400, "request body is not valid JSON") from None

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        try:  # rendering and tokenizing in a thread: a long prompt does not stop the event loop
            req = await asyncio.to_thread(parse_request, await read_body(request), cfg, engine.tokenizer)
        except APIError as e:
            return error(e)
        rid, created = f"chatcmpl-{secrets.token_hex(12)}", int(time.time())
        if req.stream:
            return StreamingResponse(_stream(engine, req, rid, created, cfg.model_name, cfg.stream_send_timeout_s),
                                     media_type="text/event-stream")
        try:
            gen: Generation = await _generate(engine, request, req.prompt, req.params)
        except Exception as e:
            return error(APIError(500, _failed(e), "server_error"))
        message, finish = build_message(req, gen.text)
        return {
            "id": rid, "object": "chat.completion", "created": created, "model": cfg.model_name,
            "choices": [{"index": 0, "message": message, "finish_reason": finish or gen.finish_reason}],
            "usage": _usage(gen),
        }

    @app.post("/v1/completions")
    async def completions(request: Request):
        try:
            prompt, params = await asyncio.to_thread(parse_completion, await read_body(request), cfg, engine.tokenizer)
        except APIError as e:
            return error(e)
        try:
            gen = await _generate(engine, request, prompt, params)
        except Exception as e:
            return error(APIError(500, _failed(e), "server_error"))
        return {"id": f"cmpl-{secrets.token_hex(12)}", "object": "text_completion", "created": int(time.time()),
                "model": cfg.model_name, "choices": [{"index": 0, "text": gen.text, "finish_reason": gen.finish_reason}],
                "usage": _usage(gen)}

    return app


async def _generate(engine: ServingEngine, request: Request, prompt: list[int], params: SamplingParams) -> Generation:
    """The generation, watching the client meanwhile: when it goes away the engine is told to drop
    the request (it leaves its batch at the next step) and this raises RequestCancelled."""
    cancel = threading.Event()
    waiter = asyncio.wrap_future(engine.submit(prompt, params, cancel=cancel))
    try:
        while True:
            done, _ = await asyncio.wait({waiter}, timeout=0.25)
            if done:
                return waiter.result()
            if await request.is_disconnected():
                cancel.set()
                return await waiter  # the engine fails it with RequestCancelled at its next step
    finally:
        cancel.set()  # also when this handler is itself cancelled (server shutdown)
        waiter.add_done_callback(_retrieved)


def _failed(e: BaseException) -> str:
    """The 500's message: the engine's own already says 'generation failed'."""
    return str(e) if str(e).startswith("generation failed") else f"generation failed: {e}"


def _retrieved(fut: asyncio.Future) -> None:
    """Mark a generation nobody waits for any more as seen (asyncio would log its exception)."""
    if not fut.cancelled():
        fut.exception()


def _usage(gen: Generation) -> dict[str, int]:
    return {"prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens,
            "total_tokens": gen.prompt_tokens + gen.completion_tokens}


async def _stream(engine: ServingEngine, req: ChatRequest, rid: str, created: int, model: str, send_timeout_s: float):
    """SSE. Reasoning streams as `reasoning_content` deltas while the model thinks. Without tools
    the rest streams as `content`; with tools it is held back to the end and sent as `tool_calls`
    when it parses as calls, else as content. An event the server cannot hand to the client within
    `send_timeout_s` (the client stopped reading and the buffers are full) cancels the generation."""
    loop = asyncio.get_running_loop()
    deltas: asyncio.Queue[str] = asyncio.Queue()
    cancel = threading.Event()  # set when the stream ends early: the client went away, stopped reading (or the server stops)
    fut = engine.submit(req.prompt, req.params, on_text=lambda t: loop.call_soon_threadsafe(deltas.put_nowait, t), cancel=cancel)
    done = asyncio.wrap_future(fut)
    sending: list[float | None] = [None]  # when the event being sent was handed over (the generator waits in `yield` meanwhile)

    async def watch() -> None:
        while not cancel.is_set():
            await asyncio.sleep(min(1.0, send_timeout_s / 4))
            since = sending[0]
            if since is not None and loop.time() - since > send_timeout_s:
                cancel.set()  # the engine drops the request at its next step

    watcher = asyncio.ensure_future(watch())
    try:
        async for event in _events(done, deltas, req, rid, created, model):
            sending[0] = loop.time()
            yield event
            sending[0] = None
    finally:
        watcher.cancel()
        cancel.set()
        done.add_done_callback(_retrieved)


async def _events(done: asyncio.Future, deltas: asyncio.Queue, req: ChatRequest, rid: str, created: int, model: str):
    """The SSE events of one streamed request, from its text deltas and its finished generation."""

    def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> str:
        body = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [] if usage is not None else [{"index": 0, "delta": delta, "finish_reason": finish}]}
        if usage is not None:
            body["usage"] = usage
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant"})  # content comes in later deltas; a tool-call answer has none (null, as unstreamed)
    text, sent_reasoning, sent_content = "", 0, 0
    while not (done.done() and deltas.empty()):
        getter = asyncio.ensure_future(deltas.get())
        finished, _ = await asyncio.wait({getter, done}, return_when=asyncio.FIRST_COMPLETED)
        if getter in finished:
            text += getter.result()
        else:
            getter.cancel()
        while not deltas.empty():
            text += deltas.get_nowait()
        reasoning, rest = split_think_partial(text)
        if reasoning is not None and len(reasoning) > sent_reasoning:
            yield chunk({"reasoning_content": reasoning[sent_reasoning:]})
            sent_reasoning = len(reasoning)
        if not req.tools and rest is not None and len(rest) > sent_content:
            yield chunk({"content": rest[sent_content:]})
            sent_content = len(rest)
    try:
        gen = done.result()
    except Exception as e:
        yield f"data: {json.dumps(APIError(500, _failed(e), 'server_error').body())}\n\n"
        yield "data: [DONE]\n\n"
        return
    message, finish = build_message(req, gen.text)
    if "tool_calls" in message:
        yield chunk({"tool_calls": [{"index": i, **c} for i, c in enumerate(message["tool_calls"])]})
    content = message.get("content") or ""
    if len(content) > sent_content:
        yield chunk({"content": content[sent_content:]})
    if message.get("refusal"):
        yield chunk({"refusal": message["refusal"]})
    yield chunk({}, finish or gen.finish_reason)
    if req.include_usage:
        yield chunk({}, usage=_usage(gen))
    yield "data: [DONE]\n\n"


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket whose connections inherit a send buffer of SEND_BUFFER_BYTES
    (setting it also turns off the kernel's growth of it to megabytes), so that a client that stops
    reading blocks the server's writes within about a hundred kilobytes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def serve(cfg: ServerConfig) -> None:
    """Serve `cfg.model` until Ctrl-C or SIGTERM."""
    import uvicorn

    from funreason.llm.local import LocalEngine

    engine = LocalEngine.from_pretrained(cfg.model, max_batch=cfg.max_batch, chat_template=cfg.chat_template)
    shutdown_grace_s = cfg.shutdown_grace_s

    class Server(uvicorn.Server):
        """One Ctrl-C (or SIGTERM) stops it: requests in flight get `shutdown_grace_s` to finish;
        then the engine fails what is left at its next decode step, so every response ends (an
        error event for a stream) before uvicorn's own deadline, with nothing cut off mid-write."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            if not self.should_exit:
                timer = threading.Timer(shutdown_grace_s, engine.abort)
                timer.daemon = True
                timer.start()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(create_app(engine, cfg.app_config()), host=cfg.host, port=cfg.port, log_level="info",
                            timeout_graceful_shutdown=shutdown_grace_s + 10, timeout_keep_alive=5)
    try:
        Server(config).run(sockets=[listening_socket(cfg.host, cfg.port)])
    finally:
        engine.close(abort=True)


class BackgroundServer:
    """`create_app(...)` served by uvicorn on a free 127.0.0.1 port, in a thread of this process
    (the demo's local teacher, tests and benchmarks). `url` is the server root; `stop()` ends it."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0):
        import uvicorn

        sock = listening_socket(host, port)
        self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.time() + timeout
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the server on {host}:{self.port} did not start")
            time.sleep(0.05)
        self.url = f"http://{host}:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> "BackgroundServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
