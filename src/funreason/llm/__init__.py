"""Generation backends behind two small protocols: prompts and sampling settings in, `Generation`s out.

- `ChatBackend`: `await chat(messages, params, tools=None)` and `await aclose()`; an OpenAI-style
  chat turn. FCDR's teacher, the self-refinement judges and the demo's teacher use it; it is
  opened by one factory, `llm.factory.open_chat`, whatever stands behind it (an endpoint, a local
  transformers model, vLLM in-process).
- `Engine`: `submit(prompt) -> Future[Generation]`, its `tokenizer`, `close()`; prompts rendered by
  the caller with the model's own chat template. Evaluation and rollouts use it, in-process
  (`llm.local.LocalEngine`, opened by `llm.factory.open_engine`) or on a launched endpoint
  (`llm.http.RemoteEngine`, through `llm.launch.ModelEngines`).

A `Generation` keeps what the model wrote apart from what an endpoint parsed out of it: `text` is
the content, `reasoning` and `tool_calls` what a serving engine returned as fields of their own.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from funreason.schema import Call


@dataclass
class SamplingParams:
    """OpenAI-style sampling settings. temperature 0 is greedy decoding."""

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    # a Lark grammar the answer must follow (`guided.call_grammar`); local engine only
    grammar: str | None = None
    # beam search over a call list (local engine, greedy only): the answer is greedy until it opens
    # a call list, then the `beams` likeliest continuations are kept and the likeliest finished one
    # is the answer (`llm.local`)
    beams: int = 1
    # how a beam search ranks finished call lists of different lengths: summed log probabilities
    # divided by (tokens since the opening) ** length_penalty; 0 ranks by the sum, which favours
    # the shorter list (each more call costs probability); 1 by the mean per token
    length_penalty: float = 0.0

    def search_settings(self) -> dict[str, Any]:
        """The beam search settings a run folder records (none for plain decoding), so a run
        resumed with another search is refused."""
        return {**({"beams": self.beams} if self.beams > 1 else {}),
                **({"length_penalty": self.length_penalty} if self.length_penalty else {})}


@dataclass
class Candidate:
    """One answer a beam search finished: its text, its summed log probability and its tokens
    since the call list opened (the end of turn counted), and why it ended."""

    text: str
    logprob: float
    tokens: int
    finish_reason: str  # "stop" (the list or the turn ended) or "length" (cut by the budget)


@dataclass
class Generation:
    text: str  # the content, as written
    finish_reason: str  # "stop" (end of turn or a stop string) or "length"
    prompt_tokens: int
    completion_tokens: int
    reasoning: str | None = None  # an endpoint's separate reasoning field (reasoning_content)
    tool_calls: list[Call] | None = None  # an endpoint's native tool calls, names as the endpoint gave them
    # a beam search's finished answers once its call list opened, `text` among them (local engine);
    # None for greedy and sampled answers, and for searches whose answer never opened a call list
    candidates: list[Candidate] | None = None


class ChatBackend(Protocol):
    async def chat(self, messages: list[dict[str, Any]], params: SamplingParams, tools: list[dict] | None = None) -> Generation: ...

    async def aclose(self) -> None: ...


class Engine(Protocol):
    tokenizer: Any

    def submit(self, prompt: str, params: SamplingParams) -> concurrent.futures.Future[Generation]: ...

    def generate(self, prompts: list[str], params: SamplingParams) -> list[Generation]: ...

    def close(self) -> None: ...


class ServingEngine(Protocol):
    """What `funreason serve` needs of an engine (`LocalEngine` is one): token-id prompts, a text
    callback for streaming, a cancel event per request, and a health report for `/health`."""

    tokenizer: Any
    model: Any

    def submit(self, prompt: str | list[int], params: SamplingParams, on_text: Callable[[str], None] | None = None,
               cancel: threading.Event | None = None) -> concurrent.futures.Future[Generation]: ...

    def health(self) -> dict[str, Any]: ...


def next_batch(q: "queue.Queue[Any]", max_batch: int, wait_s: float) -> list[Any] | None:
    """Block for one request, then take whatever else arrives within `wait_s`, up to `max_batch`.
    None means the queue was closed (a None item was put); the close mark is put back."""
    first = q.get()
    if first is None:
        return None
    batch = [first]
    while len(batch) < max_batch:
        try:
            nxt = q.get(timeout=wait_s)
        except queue.Empty:
            break
        if nxt is None:
            q.put(None)
            break
        batch.append(nxt)
    return batch
