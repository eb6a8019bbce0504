"""FCDR's stage prompts and what fills them: one home for the teacher's and the judge's view of a row.

Invariant: the teacher (every FCDR stage) and the self-refinement judge see a row's functions
exactly as the student sees them in its system prompt (`chat.public_schema`: without FunReason's
`x-…` round-trip annotations), and its answer written as the Python call list the student writes.
A step of a conversation (a record with assistant turns before its answer) is shown with the
conversation before it as the student sees it: earlier calls written as it writes them, tool results
as they came, earlier reasoning never (`chat.HISTORY_REASONING`). A record without earlier assistant
turns gets no such section, so its prompts are those single-turn FCDR always wrote.
"""

from __future__ import annotations

import json

from funreason.calls import format_python_calls
from funreason.chat import prompt_template, public_schema, shown_content
from funreason.schema import Call, Example, Message

# the title of the history section; what follows the title tells the teacher how to read it
HISTORY_TITLE = "Conversation so far"
HISTORY_NOTE = ("the answer below is the assistant's next turn; a value found in an earlier turn or tool result is derived "
                "from the conversation, not invented, and an earlier tool error may explain the answer")

def template(name: str) -> str:
    """The text of `fcdr/prompts/{name}.txt`: write_cot, write_reply_cot, response, query_tool, cot,
    function_param, regenerate or score."""
    return prompt_template(name, "fcdr/prompts")


def fill(text: str, **values: str) -> str:
    """`{key}` placeholders replaced; braces elsewhere (JSON in the functions) are left alone."""
    for k, v in values.items():
        text = text.replace("{" + k + "}", v)
    return text


def functions_json(ex: Example) -> str:
    """The row's functions as the teacher and the judge see them: as the student sees them."""
    return json.dumps([public_schema(t) for t in ex.tools], indent=2, ensure_ascii=False)


def is_conversation(ex: Example) -> bool:
    """True when the record's answer follows assistant turns: each is a step FCDR judges in turn."""
    return any(m.role == "assistant" for m in ex.messages)


def history_line(m: Message) -> str:
    """One turn of the history as the student sees it, on lines of its own: `[role] text`, later
    lines of the text indented so that no line of it can start a section of the prompt."""
    text = shown_content(m, calls_after="\n") if m.role == "assistant" else m.content
    label = f"tool {m.name}" if m.role == "tool" and m.name else m.role
    return f"[{label}] " + text.strip().replace("\n", "\n  ")


def history_section(ex: Example) -> str:
    """The conversation before the answer, as a prompt section ending in a blank line; "" for a
    record without earlier assistant turns (its prompts stay single-turn FCDR's)."""
    if not is_conversation(ex):
        return ""
    lines = "\n".join(history_line(m) for m in ex.messages)
    return f"{HISTORY_TITLE} ({HISTORY_NOTE}):\n{lines}\n\n"


def stage_context(ex: Example, functions: str, answer: list[Call] | str | None = None) -> dict[str, str]:
    """The values a stage prompt is filled with; `answer` in place of the row's own when given."""
    ans = ex.answer if answer is None else answer
    return {
        "functions": functions,
        "query": ex.query,
        "answer": ans if isinstance(ans, str) else format_python_calls(ans or []),
        "reasoning": ex.reasoning or "",
        "history": history_section(ex),
    }


def stage_prompt(stage: str, ex: Example, functions: str, answer: list[Call] | str | None = None, **extra: str) -> str:
    """The prompt of `stage` for row `ex` (`functions`: `functions_json(ex)`, built once per row);
    `extra` values (a problem to fix, a sample's reasoning) override the row's."""
    return fill(template(stage), **{**stage_context(ex, functions, answer), **extra})
