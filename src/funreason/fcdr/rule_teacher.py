"""A rule program standing in for FCDR's teacher LLM where none can run (the offline demo).

It speaks the chat protocol (`async chat(messages, params) -> Generation`) and answers FCDR's stage
prompts (`refine/prompts/*.txt`) by rules over the sections those prompts carry:
- write_cot / regenerate: a templated reasoning (`data.mix.template_reasoning`) and the reference answer;
- query & tool: FAIL when a string argument shares no word with the query (a value not derivable from it);
- CoT and score: FAIL when the reasoning does not name every function the answer calls; the score
  grows with the share of argument values the reasoning mentions;
- function & parameter: PASS (FCDR's own decidable checks already ran).

It is not a language model and judges nothing a model would: reports that use it say so.
"""

from __future__ import annotations

import json
import re
from typing import Any

from funreason.calls import ParseError, format_python_calls, parse_calls
from funreason.data.mix import template_reasoning
from funreason.llm import Generation, SamplingParams
from funreason.schema import Example, Message, Tool

_WORD = re.compile(r"[a-z0-9]+")


def section(prompt: str, title: str) -> str:
    """The text under `Title:` in a stage prompt, up to the next section or instruction."""
    m = re.search(rf"^{re.escape(title)}:\n(.*?)(?:\n\n[A-Z][^\n]*:\n|\n\n(?:Explain|Write|Reply)|\Z)", prompt, re.S | re.M)
    return m.group(1).strip() if m else ""


class RuleTeacher:
    """`await RuleTeacher().chat([{"role": "user", "content": stage_prompt}], params)`"""

    def __init__(self) -> None:
        self.requests = 0

    async def chat(self, messages: list[dict[str, Any]], params: SamplingParams) -> Generation:
        self.requests += 1
        prompt = messages[-1]["content"]
        text = self.reply(prompt)
        return Generation(text, "stop", len(prompt) // 4, len(text) // 4)

    def reply(self, prompt: str) -> str:
        query, reasoning = section(prompt, "Query"), section(prompt, "Reasoning")
        answer_text = section(prompt, "Reference answer") or section(prompt, "Answer") or section(prompt, "Calls") or section(prompt, "Previous calls")
        try:
            tools = [Tool.from_dict(t) for t in json.loads(section(prompt, "Functions") or "[]")]
            calls = parse_calls(answer_text) if answer_text.startswith("[") else []
        except (ValueError, ParseError):
            return "The prompt could not be read.\nVERDICT: FAIL"
        if prompt.startswith("You are given a user query") or prompt.startswith("The calls below"):
            ex = Example(id="rule", tools=tools, messages=[Message("user", query)], answer=calls)
            return f"<think>\n{template_reasoning(ex)}\n</think>\nANSWER: {format_python_calls(calls)}"
        if prompt.startswith("Decide whether"):
            return "It reads as prose.\nVERDICT: STATEMENT"
        if prompt.startswith("Judge whether this function-calling example"):
            words = set(_WORD.findall(query.lower()))
            for c in calls:
                for k, v in c.arguments.items():
                    if isinstance(v, str) and len(v) >= 4 and not words & set(_WORD.findall(v.lower())):
                        return f"The value {v!r} of {k} is not in the query.\nVERDICT: FAIL"
            return "The functions cover the request and the values come from the query.\nVERDICT: PASS"
        named = all(c.name in reasoning for c in calls)
        if prompt.startswith("Judge the reasoning"):
            return "The reasoning leads to the calls.\nVERDICT: PASS" if named else "The reasoning does not reach the calls.\nVERDICT: FAIL"
        if prompt.startswith("Score the reasoning"):
            values = [str(v) for c in calls for v in c.arguments.values()]
            share = sum(v in reasoning for v in values) / len(values) if values else 1.0
            score = round(4 + 6 * share) if named else 2
            return f"Rule score.\nSCORE: {score}\nVERDICT: {'PASS' if named else 'FAIL'}"
        if prompt.startswith("Judge the function calls"):
            return "Checked by FCDR's rules.\nVERDICT: PASS"
        return "I do not understand.\nVERDICT: FAIL"


def rule_teacher_app(name: str = "rule-teacher") -> Any:
    """The rule teacher as an OpenAI-compatible `/v1/chat/completions` app (serve it with
    `serve.BackgroundServer`), so FCDR and self-refinement reach it over HTTP as they reach vLLM."""
    from fastapi import FastAPI

    teacher, app = RuleTeacher(), FastAPI()

    @app.post("/v1/chat/completions")
    async def complete(body: dict[str, Any]) -> dict[str, Any]:
        gen = await teacher.chat(body.get("messages") or [{"content": ""}], SamplingParams())
        return {"id": f"rule-{teacher.requests}", "object": "chat.completion", "model": name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": gen.text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens,
                          "total_tokens": gen.prompt_tokens + gen.completion_tokens}}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model"}]}

    return app
