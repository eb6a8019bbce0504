"""vLLM parsers for a FunReason-trained model: the answer read as FunReason reads it.

    vllm serve runs/srml/final --enable-auto-tool-choice \\
        --reasoning-parser-plugin funreason.serve.vllm_parsers --reasoning-parser funreason \\
        --tool-parser-plugin funreason.serve.vllm_parsers --tool-call-parser funreason

A trained model answers `<think>…</think>\\n\\n[f(a=1)]`. vLLM's own parsers do not read that:
`deepseek_r1` refuses any vocabulary without `<think>` and `</think>` as single tokens (SmolLM2,
Qwen2.5, Llama 3.1: a RuntimeError when it is built), and where it works (Qwen3) the content it
hands on starts with "\\n\\n", which `pythonic`'s pattern, anchored at the first character, does
not match, so no tool call comes out (checked with vLLM 0.33.0's classes: `bench/vllm_parsers_check.py`).
These two parse text, with `funreason.calls` (`split_think`, `split_think_partial`, `parse_output`),
exactly as `funreason serve` and the evaluation read an answer, whatever the vocabulary.

This module imports vLLM: only vLLM loads it (by module name, as above). Streaming: reasoning is
sent as it comes; a call list is held back until it parses whole, then sent as tool calls; any
other answer streams as content.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from funreason.calls import THINK_CLOSE, THINK_OPEN, parse_output, split_think, split_think_partial

try:  # vLLM ≥ 0.12 layout, then the older one
    from vllm.entrypoints.generate.base.protocol import (DeltaFunctionCall, DeltaMessage, DeltaToolCall,
                                                         ExtractedToolCallInformation, FunctionCall, ToolCall)
    from vllm.reasoning import ReasoningParser, ReasoningParserManager
    from vllm.tool_parsers.abstract_tool_parser import ToolParser, ToolParserManager
except ImportError:  # pragma: no cover - depends on the installed vLLM
    from vllm.entrypoints.openai.protocol import (DeltaFunctionCall, DeltaMessage, DeltaToolCall,  # type: ignore[no-redef]
                                                  ExtractedToolCallInformation, FunctionCall, ToolCall)
    from vllm.entrypoints.openai.tool_parsers.abstract_tool_parser import ToolParser, ToolParserManager  # type: ignore[no-redef]
    from vllm.reasoning import ReasoningParser, ReasoningParserManager  # type: ignore[no-redef]


def _grown(before: str | None, after: str | None) -> str | None:
    """The text `after` adds to `before`, or None when it adds nothing."""
    before, after = before or "", after or ""
    return after[len(before):] if len(after) > len(before) and after.startswith(before) else None


class FunReasonReasoningParser(ReasoningParser):
    """`<think>…</think>` found in the text, not by token id (no vocabulary needs them as tokens).
    A prompt that opens the block (DeepSeek-R1-Distill's template) is seen through
    `set_prompt_token_ids`, and the answer is read as the block's continuation."""

    def __init__(self, tokenizer: Any, *args: Any, **kwargs: Any):
        super().__init__(tokenizer, *args, **kwargs)
        self._prompt: list[int] | None = None
        self._opened = ""  # "<think>" when the prompt opened the block

    def set_prompt_token_ids(self, prompt_token_ids: Sequence[int]) -> None:
        self._prompt = list(prompt_token_ids)
        tail = self.model_tokenizer.decode(self._prompt[-16:])
        self._opened = THINK_OPEN if tail.rfind(THINK_OPEN) > tail.rfind(THINK_CLOSE) else ""

    def _answer(self, text: str) -> tuple[str | None, str | None]:
        if self._opened and not text.lstrip().startswith(THINK_OPEN):
            text = self._opened + text
        return split_think_partial(text)

    def is_reasoning_end(self, input_ids: Sequence[int]) -> bool:
        # vLLM asks this of the prompt first: reasoning can always follow a prompt
        if self._prompt is not None and list(input_ids) == self._prompt:
            return False
        return self._answer(self.model_tokenizer.decode(list(input_ids)))[1] is not None

    def extract_content_ids(self, input_ids: list[int]) -> list[int]:
        decode = self.model_tokenizer.decode
        k = next((k for k in range(1, len(input_ids) + 1) if THINK_CLOSE in decode(input_ids[:k])), None)
        return list(input_ids[k:]) if k is not None else []

    def extract_reasoning(self, model_output: str, request: Any) -> tuple[str | None, str | None]:
        reasoning, rest = split_think(model_output)  # a bare </think> (the prompt opened the block) counts too
        return reasoning, rest or None

    def extract_reasoning_streaming(self, previous_text: str, current_text: str, delta_text: str,
                                    previous_token_ids: Sequence[int], current_token_ids: Sequence[int],
                                    delta_token_ids: Sequence[int]) -> DeltaMessage | None:
        r0, a0 = self._answer(previous_text)
        r1, a1 = self._answer(current_text)
        reasoning, content = _grown(r0, r1), _grown(a0, a1)
        return DeltaMessage(reasoning=reasoning, content=content) if reasoning or content else None


class FunReasonToolParser(ToolParser):
    """The answer is tool calls when `calls.parse_output` reads it as calls (Python call list, JSON
    or `<tool_call>` tags); anything else is content. `tool_choice` required or named is read the
    same way (no JSON-schema guided decoding: the model answers in its trained format)."""

    supports_required_and_named = False

    def __init__(self, tokenizer: Any, *args: Any, **kwargs: Any):
        super().__init__(tokenizer, *args, **kwargs)
        self._sent = 0  # characters of content already streamed
        self._calls_sent = False

    @staticmethod
    def _calls(text: str) -> tuple[list[Any], str | None]:
        out = parse_output(text)
        return (out.calls or []), (out.content or None)

    def extract_tool_calls(self, model_output: str, request: Any) -> ExtractedToolCallInformation:
        calls, content = self._calls(model_output)
        if not calls:
            return ExtractedToolCallInformation(tools_called=False, tool_calls=[], content=model_output)
        return ExtractedToolCallInformation(
            tools_called=True, content=content,
            tool_calls=[ToolCall(type="function", function=FunctionCall(name=c.name, arguments=json.dumps(c.arguments, ensure_ascii=False)))
                        for c in calls])

    def extract_tool_calls_streaming(self, previous_text: str, current_text: str, delta_text: str,
                                     previous_token_ids: Sequence[int], current_token_ids: Sequence[int],
                                     delta_token_ids: Sequence[int], request: Any) -> DeltaMessage | None:
        s = current_text.lstrip()
        if self._calls_sent or not s:
            return None
        if s[0] in "[{<`":  # may be calls: held back until they parse whole
            calls, _ = self._calls(s)
            if not calls:
                return None
            self._calls_sent = True
            self.prev_tool_call_arr = [{"name": c.name, "arguments": c.arguments} for c in calls]
            self.streamed_args_for_tool = [json.dumps(c.arguments, ensure_ascii=False) for c in calls]
            self.current_tool_id = len(calls) - 1
            return DeltaMessage(tool_calls=[
                DeltaToolCall(index=i, type="function", id=ToolCall(function=FunctionCall(name=c.name, arguments=args)).id,
                              function=DeltaFunctionCall(name=c.name, arguments=args))
                for i, (c, args) in enumerate(zip(calls, self.streamed_args_for_tool))])
        new, self._sent = s[self._sent:], len(s)
        return DeltaMessage(content=new) if new else None


ReasoningParserManager.register_module("funreason", module=FunReasonReasoningParser)
ToolParserManager.register_module("funreason", module=FunReasonToolParser)
