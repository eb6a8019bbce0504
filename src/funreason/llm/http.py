"""An OpenAI-compatible HTTP backend (vLLM, SGLang, Ollama, hosted APIs, `funreason serve`): chat and
completions, and `RemoteEngine`, the local engine's interface over an endpoint.

Async, with a concurrency limit, a per-request timeout, retries with exponential backoff and
jitter on 429 (honouring Retry-After), 5xx, timeouts, connection errors and unreadable bodies,
and several endpoints balanced by load (each request goes to the endpoint with the fewest
requests in flight). Other 4xx answers are not retried: they will not get better.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import random
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from funreason.errors import BackendError
from funreason.llm import Generation, SamplingParams
from funreason.schema import Call

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


@dataclass
class Usage:
    requests: int = 0
    retries: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    by_endpoint: dict[str, int] = field(default_factory=dict)


def normalise_endpoint(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


class HTTPBackend:
    """`async with HTTPBackend([url], model) as llm: text = (await llm.chat(messages, params)).text`"""

    def __init__(
        self,
        endpoints: list[str],
        model: str,
        *,
        api_key: str | None = None,
        concurrency: int = 64,
        timeout: float = 120.0,
        max_retries: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
    ):
        if not endpoints:
            raise ValueError("at least one endpoint is needed")
        self.endpoints = [normalise_endpoint(e) for e in endpoints]
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.usage = Usage(by_endpoint={e: 0 for e in self.endpoints})
        self._limit = asyncio.Semaphore(concurrency)
        self._in_flight = {e: 0 for e in self.endpoints}
        self._next = 0
        self._client: aiohttp.ClientSession | None = None
        self._concurrency = concurrency

    async def __aenter__(self) -> "HTTPBackend":
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self._client = aiohttp.ClientSession(
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            connector=aiohttp.TCPConnector(limit=self._concurrency),
        )
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _pick(self) -> str:
        """The endpoint with the fewest requests in flight (round robin among equals)."""
        n = len(self.endpoints)
        order = [self.endpoints[(self._next + i) % n] for i in range(n)]
        self._next = (self._next + 1) % n
        return min(order, key=lambda e: self._in_flight[e])

    async def aclose(self) -> None:
        await self.__aexit__(None, None, None)

    async def chat(self, messages: list[dict[str, Any]], params: SamplingParams, tools: list[dict] | None = None) -> Generation:
        """One chat completion: the content as `text`; an endpoint's separate reasoning and native
        tool calls as `reasoning` and `tool_calls`."""
        body: dict[str, Any] = {"model": self.model, "messages": messages, **_sampling_body(params)}
        if tools:
            body["tools"] = tools
        return await self._post("/chat/completions", body, self._generation)

    async def complete(self, prompt: str, params: SamplingParams) -> Generation:
        """One legacy completion of a prompt rendered by the caller: the text comes back as the
        model wrote it (nothing parsed), so the caller checks it as it checks a local generation.
        `add_special_tokens: false`: the rendered prompt already holds the template's special tokens
        (Llama 3's `<|begin_of_text|>`), and vLLM would otherwise add a second BOS in front of it."""
        body = {"model": self.model, "prompt": prompt, "add_special_tokens": False, **_sampling_body(params)}
        return await self._post("/completions", body, self._completion)

    async def _post(self, path: str, body: dict[str, Any], parse: Any) -> Generation:
        """POST with the retry policy of the module docstring; `parse` turns a 200 body into a Generation."""
        if self._client is None:
            raise RuntimeError("use `async with HTTPBackend(...)`")
        last = "no attempt"
        async with self._limit:
            for attempt in range(self.max_retries + 1):
                if attempt:
                    self.usage.retries += 1
                endpoint = self._pick()
                self._in_flight[endpoint] += 1
                wait: float | None = None
                status, content, retry_after = 0, b"", None
                try:
                    async with self._client.post(endpoint + path, json=body) as resp:
                        status, retry_after = resp.status, resp.headers.get("retry-after")
                        content = await resp.read()
                except asyncio.TimeoutError:
                    last = f"{endpoint}: timed out after {self.timeout}s"
                except aiohttp.ClientError as e:
                    last = f"{endpoint}: {type(e).__name__}: {e}"
                finally:
                    self._in_flight[endpoint] -= 1
                if status == 200:
                    try:
                        gen = parse(content)
                    except (ValueError, KeyError, IndexError, TypeError) as e:
                        last = f"{endpoint}: unreadable response ({type(e).__name__}: {str(e)[:80]})"
                    else:
                        self.usage.requests += 1
                        self.usage.by_endpoint[endpoint] += 1
                        return gen
                elif status in RETRY_STATUS:
                    last = f"{endpoint}: HTTP {status} {content[:120]!r}"
                    wait = _retry_after(retry_after)
                elif status:
                    self.usage.failures += 1
                    raise BackendError(f"{endpoint}: HTTP {status} {content[:200]!r}")
                if attempt < self.max_retries:
                    await asyncio.sleep(wait if wait is not None else self._backoff(attempt))
        self.usage.failures += 1
        raise BackendError(f"gave up after {self.max_retries + 1} attempts: {last}")

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_max, self.backoff_base * 2**attempt) * (0.5 + random.random())

    def _generation(self, content: bytes) -> Generation:
        data = json.loads(content)
        choice = data["choices"][0]
        msg = choice["message"]
        text = msg.get("content") or ""
        if not isinstance(text, str):
            raise TypeError("message content is not text")
        gen = self._counted(data, text, choice)
        gen.reasoning = msg.get("reasoning_content") or msg.get("reasoning") or None
        if msg.get("tool_calls"):
            gen.tool_calls = [Call(c["function"]["name"], _arguments(c["function"]["arguments"])) for c in msg["tool_calls"]]
        return gen

    def _completion(self, content: bytes) -> Generation:
        data = json.loads(content)
        choice = data["choices"][0]
        if not isinstance(choice["text"], str):
            raise TypeError("completion text is not text")
        return self._counted(data, choice["text"], choice)

    def _counted(self, data: dict[str, Any], text: str, choice: dict[str, Any]) -> Generation:
        usage = data.get("usage") or {}
        self.usage.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        self.usage.completion_tokens += int(usage.get("completion_tokens") or 0)
        return Generation(text, choice.get("finish_reason") or "stop", int(usage.get("prompt_tokens") or 0),
                          int(usage.get("completion_tokens") or 0))


def _arguments(raw: Any) -> dict[str, Any]:
    """A tool call's arguments: a JSON object, or the JSON text of one (OpenAI's spelling)."""
    args = (json.loads(raw) if raw.strip() else {}) if isinstance(raw, str) else (raw or {})
    if not isinstance(args, dict):
        raise TypeError("tool call arguments are not an object")
    return args


def _sampling_body(params: SamplingParams) -> dict[str, Any]:
    if params.grammar is not None:  # endpoints spell structured output each their own way: not sent silently wrong
        raise BackendError("guided decoding (a grammar) runs on a local model only, not through an endpoint")
    if params.beams > 1:  # OpenAI-style endpoints have no beam search setting
        raise BackendError("beam search runs on a local model only, not through an endpoint")
    body: dict[str, Any] = {"max_tokens": params.max_tokens, "temperature": params.temperature, "top_p": params.top_p}
    if params.stop:
        body["stop"] = params.stop
    if params.seed is not None:
        body["seed"] = params.seed
    return body


def _retry_after(value: str | None) -> float | None:
    try:
        return min(max(float(value), 0.0), 120.0) if value is not None else None
    except ValueError:
        return None


class BlockingHTTP:
    """An HTTPBackend for synchronous callers: one event loop in a thread and one connection pool
    for the whole run, so `--concurrency` requests really are in flight across every batch (a
    session per batch would cap them at the batch size and reconnect each time).

    `with BlockingHTTP([url], model, concurrency=64) as llm: gens = llm.chat_many(requests)`
    """

    def __init__(self, endpoints: list[str], model: str, **kwargs: Any):
        import threading

        self.backend = HTTPBackend(endpoints, model, **kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="funreason-http", daemon=True)

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def complete_future(self, prompt: str, params: SamplingParams) -> "concurrent.futures.Future[Generation]":
        """Queue one completion; the future gives its Generation (or raises BackendError)."""
        return asyncio.run_coroutine_threadsafe(self.backend.complete(prompt, params), self._loop)

    def __enter__(self) -> "BlockingHTTP":
        self._thread.start()
        self._run(self.backend.__aenter__())
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self._run(self.backend.__aexit__(*exc))
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    def chat_future(self, messages: list[dict[str, Any]], params: SamplingParams,
                    tools: list[dict] | None = None) -> "concurrent.futures.Future[Generation]":
        """Queue one chat completion; the future gives its Generation (or raises BackendError).
        Queue a whole run at once: the backend's semaphore keeps `concurrency` in flight, so the
        pool never drains between a caller's batches or categories."""
        return asyncio.run_coroutine_threadsafe(self.backend.chat(messages, params, tools=tools), self._loop)

    def chat_many(self, requests: list[tuple[list[dict[str, Any]], SamplingParams, list[dict] | None]]) -> list[Generation]:
        """Every request at once (the backend's semaphore bounds what is in flight), in order."""
        async def go() -> list[Generation]:
            return list(await asyncio.gather(*[self.backend.chat(m, p, tools=t) for m, p, t in requests]))

        return self._run(go())


class RemoteEngine:
    """The local engine's interface (`submit(prompt) -> Future[Generation]`, `tokenizer`,
    `close()`) over an OpenAI-compatible `/v1/completions` endpoint, so every caller of a local
    engine (self-refine's rollouts, BFCL and held-out evaluation) runs unchanged on vLLM or a
    launched `funreason serve`. Prompts are rendered here with the model's own tokenizer and chat
    template, exactly as for local generation; the engine only decodes them."""

    def __init__(self, url: str, served_model: str, tokenizer: Any, *, concurrency: int = 64, timeout: float = 3600.0,
                 api_key: str | None = None):
        self.tokenizer = tokenizer
        self._http = BlockingHTTP([url], served_model, concurrency=concurrency, timeout=timeout, api_key=api_key).__enter__()

    def submit(self, prompt: str, params: SamplingParams) -> "concurrent.futures.Future[Generation]":
        if not isinstance(prompt, str):  # token ids would be decoded and re-tokenized: not the same prompt
            raise TypeError("a remote engine takes the rendered prompt text")
        return self._http.complete_future(prompt, params)

    def generate(self, prompts: list[str], params: SamplingParams) -> list[Generation]:
        return [f.result() for f in [self.submit(p, params) for p in prompts]]

    def close(self) -> None:
        self._http.__exit__(None, None, None)
