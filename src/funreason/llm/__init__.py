"""Generation backends behind one small protocol: prompts and sampling settings in, text out."""

from __future__ import annotations

import queue
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SamplingParams:
    """OpenAI-style sampling settings. temperature 0 is greedy decoding."""

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None


@dataclass
class Generation:
    text: str
    finish_reason: str  # "stop" (end of turn or a stop string) or "length"
    prompt_tokens: int
    completion_tokens: int


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
