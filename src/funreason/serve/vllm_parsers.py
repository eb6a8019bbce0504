"""vLLM parsers for a FunReason-trained model: the answer read as FunReason reads it.

    vllm serve runs/srml/final --enable-auto-tool-choice \\
        --reasoning-parser-plugin funreason.serve.vllm_parsers --reasoning-parser funreason \\
        --tool-parser-plugin funreason.serve.vllm_parsers --tool-call-parser funreason

A trained model answers `<think>…</think>\\n\\n[f(a=1)]`. vLLM's own parsers do not read that:
`deepseek_r1` refuses any vocabulary without `<think>` and `</think>` as single tokens (SmolLM2,
Qwen2.5, Llama 3.1: a RuntimeError when it is built), and where it works (Qwen3) the content it
hands on starts with "\\n\\n", which `pythonic`'s pattern, anchored at the first character, does
not match, so no tool call comes out (checked with vLLM 0.33.0's classes: `bench/agreement/vllm_parsers_check.py`).
These two parse text, with `funreason.calls` (`split_think`, `split_think_partial`, `parse_output`),
exactly as `funreason serve` and the evaluation read an answer, whatever the vocabulary.

This module imports vLLM: only vLLM loads it (by module name, as above).

Streaming invariant: what a streaming client receives equals what `extract_tool_calls` gives on the
whole answer (reasoning, content, calls). Reasoning is sent as it comes. Answer text is sent as
content once it is content in the whole parse whatever follows: `calls.CallsPrefix` says it can no
longer be a JSON or Python call list (`[Note] …`, a code fence of prose, `[f()] and then prose`, a
second JSON object: at the first character no call list can follow), and it stops before any
`<tool_call>` or think tag. Everything else (a call list, a bare call, `<tool_call>` blocks, a
one-word answer) is held back and read whole at the end of the stream. That end is vLLM's
`finish_streaming` hook: its `Parser.parse_delta(finished=True)` calls it on a tool parser that sets
`engine_based_streaming` (vLLM 0.33.0's `_flush_engine_parsers`; checked with its classes in
`bench/agreement/vllm_parsers_check.py`). So tool calls reach a streaming client with the last
chunk, never before: a call list followed by prose is not calls, so no call can be sent before the
answer ends. A vLLM whose serving code does not call `finish_streaming` never sends the held-back
text (not checked on releases before 0.33.0).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from funreason.calls import (THINK_CLOSE, THINK_OPEN, TOOL_CALL_OPEN, CallsPrefix, parse_output, split_think,
                             split_think_partial)

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
    same way (no JSON-schema guided decoding: the model answers in its trained format).

    Streamed, it gives what it gives whole: text goes out as content only once it is content in the
    whole parse whatever follows (`CallsPrefix` says the answer can no longer be JSON or Python calls,
    and the text stops before any `<tool_call>` or think tag, and before blanks a strip would drop);
    the rest waits for `finish_streaming`, which vLLM calls at the end of the stream, and is read there
    by `extract_tool_calls` on the whole answer: calls and content, or content."""

    supports_required_and_named = False
    # vLLM's Parser calls finish_streaming() of a tool parser that says this, on the last chunk
    # (parse_delta(finished=True)); the only end-of-stream signal a tool parser gets
    engine_based_streaming = True

    _TAGS = (TOOL_CALL_OPEN, THINK_OPEN, THINK_CLOSE)  # from where the whole parse may read text otherwise

    def __init__(self, tokenizer: Any, *args: Any, **kwargs: Any):
        super().__init__(tokenizer, *args, **kwargs)
        self._answer = ""  # the answer as generated so far
        self._shape = CallsPrefix()  # fed the answer without its leading blanks
        self._sent = 0  # characters of that text already streamed as content

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
        # vLLM hands the answer so far, or (a Parser whose parsers are all engine-based) only the new text
        if previous_text == self._answer and current_text.startswith(previous_text):
            self._answer = current_text
        else:
            self._answer += delta_text or ""
        s = self._answer.lstrip()
        if not self._shape.feed(s[len(self._shape.text):]):
            return None  # may still become calls: nothing is sure yet
        upto = self._settled(s)
        if upto <= self._sent:
            return None
        new, self._sent = s[self._sent:upto], upto
        return DeltaMessage(content=new)

    def finish_streaming(self) -> DeltaMessage | None:
        """The end of the stream: what the whole parse gives, less the content already sent."""
        s = self._answer.lstrip()
        if not s:
            return None
        whole = self.extract_tool_calls(s, request=None)
        content, sent = whole.content or "", s[:self._sent]
        # the content sent is the start of the whole parse's content (see the class docstring); were
        # it not, it cannot be taken back, and the rest still goes out
        rest = content[len(sent):] if content.startswith(sent) else content
        self._sent = len(s)
        if not whole.tools_called:
            return DeltaMessage(content=rest) if rest else None
        self.prev_tool_call_arr = [{"name": t.function.name, "arguments": json.loads(t.function.arguments)} for t in whole.tool_calls]
        self.streamed_args_for_tool = [t.function.arguments for t in whole.tool_calls]
        self.current_tool_id = len(whole.tool_calls) - 1
        return DeltaMessage(content=rest or None, tool_calls=[
            DeltaToolCall(index=i, type="function", id=t.id,
                          function=DeltaFunctionCall(name=t.function.name, arguments=t.function.arguments))
            for i, t in enumerate(whole.tool_calls)])

    def _settled(self, s: str) -> int:
        """How much of `s` (no longer calls by `CallsPrefix`) is content in the whole parse whatever
        follows: up to the first tag or a partial tag at its end, blanks at the end held back."""
        found = [k for k in (s.find(t) for t in self._TAGS) if k >= 0]
        upto = min(found) if found else len(s) - max((k for t in self._TAGS for k in range(1, len(t)) if s.endswith(t[:k])), default=0)
        return len(s[:upto].rstrip())


ReasoningParserManager.register_module("funreason", module=FunReasonReasoningParser)
ToolParserManager.register_module("funreason", module=FunReasonToolParser)
