"""Render a record with a tokenizer's chat template and label every token prompt / think / result.

The prompt is BFCL's default system prompt with the tool list (a system turn already in the
record is appended after it, as BFCL does), then the conversation. The assistant turn is
`<think>{reasoning}</think>\\n\\n[calls]` followed by the template's end-of-turn token.

Segments, in character offsets of the rendered text (see DESIGN.md):
- think: from `<think>` through `</think>`;
- result: everything after `</think>` (or the whole answer when there is no reasoning) up to and
  including the end-of-turn token; whitespace the template puts after that carries no loss;
- prompt: everything else.

Token labels come from the fast tokenizer's offset mapping. A token that straddles a boundary
belongs to the segment of its **last character**: every token that completes answer text is
trained, so the model learns to emit the whole answer, and a token ending after `</think>` counts
as result (it is the first thing the call depends on).
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from funreason.calls import THINK_CLOSE, format_answer, format_python_calls
from funreason.errors import TemplateError
from funreason.schema import Example, Tool

PROMPT, THINK, RESULT = 0, 1, 2
SEGMENT_NAMES = ("prompt", "think", "result")


@lru_cache(maxsize=None)
def prompt_template(name: str = "bfcl_system") -> str:
    return resources.files("funreason").joinpath(f"prompts/{name}.txt").read_text(encoding="utf-8")


def system_prompt(tools: Sequence[Tool], template: str | None = None) -> str:
    """BFCL's default prompting system prompt with the tools as indented JSON."""
    functions = json.dumps([_public(t.to_dict()) for t in tools], indent=4)
    return (template or prompt_template()).replace("{functions}", functions)


def _public(value: Any) -> Any:
    """Drop FunReason's round-trip annotations (`x-…` keys) before showing a schema to a model."""
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items() if not (isinstance(k, str) and k.startswith("x-"))}
    if isinstance(value, list):
        return [_public(v) for v in value]
    return value


def prompt_messages(ex: Example, system: str | None = None) -> list[dict[str, str]]:
    """The chat messages the model sees before its answer. `system` is a system prompt template
    (`{functions}` becomes the tool list); default: BFCL's."""
    sys_text = system_prompt(ex.tools, system)
    msgs: list[dict[str, str]] = []
    for m in ex.messages:
        content = m.content
        if m.tool_calls:
            content = (content + "\n\n" if content else "") + format_python_calls(m.tool_calls)
        msgs.append({"role": m.role, "content": content})
    if msgs and msgs[0]["role"] == "system":
        msgs[0] = {"role": "system", "content": sys_text + "\n\n" + msgs[0]["content"]}
    else:
        msgs.insert(0, {"role": "system", "content": sys_text})
    return msgs


@dataclass
class Rendered:
    """One rendered example. `segments[i]` is PROMPT, THINK or RESULT for `input_ids[i]`."""

    id: str
    text: str
    input_ids: list[int]
    segments: list[int]
    # character spans [start, end) of the think and result segments in `text`
    think_span: tuple[int, int]
    result_span: tuple[int, int]

    def count(self, segment: int) -> int:
        return sum(1 for s in self.segments if s == segment)


@dataclass
class _Layout:
    id: str
    text: str
    answer_start: int
    think_end: int  # == answer_start when there is no reasoning
    result_end: int


def _layout(ex: Example, tokenizer: Any, system: str | None) -> _Layout:
    if getattr(tokenizer, "chat_template", None) is None:
        name = getattr(tokenizer, "name_or_path", "the tokenizer")
        raise ValueError(f"{name} has no chat template; FunReason renders every example with one")
    msgs = prompt_messages(ex, system)
    prompt_text = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    if ex.answer is None and ex.reasoning is None:
        return _Layout(ex.id, prompt_text, len(prompt_text), len(prompt_text), len(prompt_text))
    answer = format_answer(ex.reasoning, ex.answer)
    text = tokenizer.apply_chat_template(
        msgs + [{"role": "assistant", "content": answer}], tokenize=False
    )
    start = _common_prefix(prompt_text, text)
    _check_template(ex, tokenizer, prompt_text, text, start, answer)
    think_end = start
    if ex.reasoning is not None:
        close = text.find(THINK_CLOSE, start)
        think_end = close + len(THINK_CLOSE) if close >= 0 else start
    return _Layout(ex.id, text, start, think_end, len(text.rstrip()))


def _check_template(ex: Example, tokenizer: Any, prompt_text: str, text: str, start: int, answer: str) -> None:
    """Refuse a template that would train on something else than the record: one that drops or
    rewrites the reasoning or the answer (DeepSeek-R1-Distill's keeps only what follows `</think>`),
    or whose generation prompt is not a prefix of the training text (the model would be asked with
    a prompt it never saw, e.g. one that opens `<think>` itself)."""
    name = getattr(tokenizer, "name_or_path", "") or "the tokenizer"
    body = text[start:]
    missing = [part for part, value in (("reasoning", ex.reasoning), ("answer", answer.split(THINK_CLOSE)[-1]))
               if value and value.strip() and value.strip() not in body]
    if missing:
        raise TemplateError(
            f"{ex.id}: the chat template of {name} drops or rewrites the {' and the '.join(missing)} of the assistant turn, "
            "so those tokens would silently not be trained; use a chat template that renders the assistant content as "
            "given (e.g. set `chat_template` in the model folder)")
    if not text.startswith(prompt_text):
        raise TemplateError(
            f"{ex.id}: the chat template of {name} asks for the answer with {prompt_text[start:][:40]!r}, which the training "
            "text does not contain: the model would be prompted differently from how it was trained; use a chat template "
            "whose generation prompt is the start of the assistant turn (e.g. set `chat_template` in the model folder)")


def _common_prefix(a: str, b: str) -> int:
    if b.startswith(a):
        return len(a)
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def render(ex: Example, tokenizer: Any, *, system: str | None = None) -> Rendered:
    """Render one example; see `render_many` for batches."""
    return render_many([ex], tokenizer, system=system)[0]


def render_many(examples: Sequence[Example], tokenizer: Any, *, system: str | None = None) -> list[Rendered]:
    """Render and tokenize a batch (one call into the fast tokenizer for the whole batch)."""
    layouts = [_layout(ex, tokenizer, system) for ex in examples]
    enc = tokenizer(
        [lay.text for lay in layouts], add_special_tokens=False, return_offsets_mapping=True
    )
    out = []
    for lay, ids, offsets in zip(layouts, enc["input_ids"], enc["offset_mapping"]):
        bounds = [lay.answer_start, lay.think_end, lay.result_end]
        labels = (PROMPT, THINK, RESULT, PROMPT)
        segments = [labels[bisect_right(bounds, e - 1 if e > s else s)] for s, e in offsets]
        out.append(
            Rendered(
                lay.id,
                lay.text,
                list(ids),
                segments,
                (lay.answer_start, lay.think_end),
                (lay.think_end, lay.result_end),
            )
        )
    return out


def render_prompt(ex: Example, tokenizer: Any, *, system: str | None = None) -> str:
    """The prompt text for generation (chat template with the generation prompt)."""
    return tokenizer.apply_chat_template(prompt_messages(ex, system), tokenize=False, add_generation_prompt=True)
