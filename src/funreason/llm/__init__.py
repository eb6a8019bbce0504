"""Generation backends behind one small protocol: prompts and sampling settings in, text out."""

from __future__ import annotations

from dataclasses import dataclass, field


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
