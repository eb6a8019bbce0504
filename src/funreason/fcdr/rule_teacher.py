"""A rule program standing in for FCDR's teacher LLM where none can run (the offline demo).

It speaks the chat protocol (`async chat(messages, params) -> Generation`) and answers FCDR's stage
prompts (`refine/prompts/*.txt`) by rules over the sections those prompts carry:
- write_cot / regenerate: a templated reasoning (`data.mix.template_reasoning`) and the reference answer;
  after a tool error in the conversation so far, the reasoning opens with that error;
- write_reply_cot (a conversation's statement step): a templated reasoning and the reply;
- query & tool: FAIL when a string argument shares no word with the query nor with the
  conversation so far (a value not derivable from either: an earlier tool result's value is);
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
from funreason.fcdr.prompts import HISTORY_TITLE
from funreason.llm import Generation, SamplingParams
from funreason.schema import Example, Message, Tool

_WORD = re.compile(r"[a-z0-9]+")


def section(prompt: str, title: str) -> str:
    """The text under `Title:` (or `Title (a note):`) in a stage prompt, up to the next section or instruction."""
    m = re.search(rf"^{re.escape(title)}(?: \([^\n]*\))?:\n(.*?)(?:\n\n[A-Z][^\n]*:\n|\n\n(?:Explain|Write|Reply)|\Z)", prompt, re.S | re.M)
    return m.group(1).strip() if m else ""


def last_tool_error(history: str) -> str | None:
    """The last tool turn of a prompt's conversation so far, when it reports an error."""
    tools = [line for line in history.splitlines() if line.startswith("[tool")]
    return tools[-1].split("] ", 1)[-1] if tools and "error" in tools[-1].lower() else None


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
        history = section(prompt, HISTORY_TITLE)
        answer_text = section(prompt, "Reference answer") or section(prompt, "Answer") or section(prompt, "Calls") or section(prompt, "Previous calls")
        try:
            tools = [Tool.from_dict(t) for t in json.loads(section(prompt, "Functions") or "[]")]
            calls = parse_calls(answer_text) if answer_text.startswith("[") else []
        except (ValueError, ParseError):
            return "The prompt could not be read.\nVERDICT: FAIL"
        if prompt.startswith("You are given a user query") or prompt.startswith("The calls below"):
            ex = Example(id="rule", tools=tools, messages=[Message("user", query)], answer=calls)
            error = last_tool_error(history)
            lead = f"The last call failed ({error}), so I call again with what it says. " if error else ""
            return f"<think>\n{lead}{template_reasoning(ex)}\n</think>\nANSWER: {format_python_calls(calls)}"
        if prompt.startswith("You are given a conversation"):
            reply = section(prompt, "Reference reply")
            why = ("The tool results so far answer the request, so I reply in words with what they say." if "[tool" in history
                   else "None of the functions can be called with what the user has given yet, so I reply in words.")
            return f"<think>\n{why}\n</think>\nANSWER: {reply}"
        if prompt.startswith("Decide whether"):
            return "It reads as prose.\nVERDICT: STATEMENT"
        if prompt.startswith("Judge whether this function-calling example"):
            words = set(_WORD.findall((query + "\n" + history).lower()))
            for c in calls:
                for k, v in c.arguments.items():
                    if isinstance(v, str) and len(v) >= 4 and not words & set(_WORD.findall(v.lower())):
                        return f"The value {v!r} of {k} is not in the query{' nor in the conversation' if history else ''}.\nVERDICT: FAIL"
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
