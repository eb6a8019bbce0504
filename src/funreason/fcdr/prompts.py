"""FCDR's stage prompts and what fills them: one home for the teacher's and the judge's view of a row.

Invariant: the teacher (every FCDR stage) and the self-refinement judge see a row's functions
exactly as the student sees them in its system prompt (`chat.public_schema`: without FunReason's
`x-…` round-trip annotations), and its answer written as the Python call list the student writes.
"""

from __future__ import annotations

import json

from funreason.calls import format_python_calls
from funreason.chat import prompt_template, public_schema
from funreason.schema import Call, Example

def template(name: str) -> str:
    """The text of `fcdr/prompts/{name}.txt`: write_cot, response, query_tool, cot, function_param, regenerate or score."""
    return prompt_template(name, "fcdr/prompts")


def fill(text: str, **values: str) -> str:
    """`{key}` placeholders replaced; braces elsewhere (JSON in the functions) are left alone."""
    for k, v in values.items():
        text = text.replace("{" + k + "}", v)
    return text


def functions_json(ex: Example) -> str:
    """The row's functions as the teacher and the judge see them: as the student sees them."""
    return json.dumps([public_schema(t) for t in ex.tools], indent=2, ensure_ascii=False)


def stage_context(ex: Example, functions: str, answer: list[Call] | str | None = None) -> dict[str, str]:
    """The values a stage prompt is filled with; `answer` in place of the row's own when given."""
    ans = ex.answer if answer is None else answer
    return {
        "functions": functions,
        "query": ex.query,
        "answer": ans if isinstance(ans, str) else format_python_calls(ans or []),
        "reasoning": ex.reasoning or "",
    }


def stage_prompt(stage: str, ex: Example, functions: str, answer: list[Call] | str | None = None, **extra: str) -> str:
    """The prompt of `stage` for row `ex` (`functions`: `functions_json(ex)`, built once per row);
    `extra` values (a problem to fix, a sample's reasoning) override the row's."""
    return fill(template(stage), **{**stage_context(ex, functions, answer), **extra})
