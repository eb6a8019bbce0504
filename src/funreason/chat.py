"""Render a record with a tokenizer's chat template and label every token prompt / think / result.

The prompt is BFCL's default system prompt with the tool list (a system turn already in the
record is appended after it, as BFCL does; a record without tools gets none, `prompt_messages`),
then the conversation, then the template's generation prompt: exactly what `render_prompt` gives
the model at inference. The answer is written by
FunReason, never by the template: `<think>{reasoning}</think>\\n\\n[calls]` (the think part
only with reasoning), then the template's end-of-turn text (found by rendering a sentinel turn).
So a template that drops or rewrites assistant content (DeepSeek-R1-Distill's keeps only what
follows `</think>`; Qwen3's inserts an empty think block) cannot lose or invent answer tokens.
When the generation prompt itself opens `<think>` (DeepSeek-R1-Distill), the answer continues it:
the reasoning and `</think>`, or `</think>` alone when there is no reasoning.

Invariant: the prompt's tokens are a prefix of the training row's tokens. The prompt and the
completion are tokenized apart and joined, as generation sees them.

Segments, in character offsets of the completion:
- think: from its start (`<think>`, or the reasoning when the prompt opened the block) through
  `</think>`; none when the record has no reasoning;
- result: everything after that, through the end-of-turn text; whitespace after it carries no
  loss;
- prompt: the prompt, and that trailing whitespace.

Token labels come from the fast tokenizer's offset mapping. A token that straddles a boundary
belongs to the segment of its **last character**: every token that completes answer text is
trained. On vocabularies where `>` merges with the `\\n\\n` after it (Qwen2.5's and Llama 3's
byte-level BPE), the token that ends `</think>` therefore counts as result; where `</think>` is an
added token (Qwen3) it is wholly think.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from funreason.calls import THINK_CLOSE, THINK_OPEN, format_answer, format_python_calls
from funreason.errors import TemplateError
from funreason.schema import Example, Message, Tool

PROMPT, THINK, RESULT = 0, 1, 2
SEGMENT_NAMES = ("prompt", "think", "result")


@lru_cache(maxsize=None)
def prompt_template(name: str = "bfcl_system", folder: str = "prompts") -> str:
    """The text of the installed prompt `funreason/{folder}/{name}.txt`: the one loader of every prompt
    file (BFCL's system prompt here; FCDR's stage prompts in `fcdr/prompts`)."""
    return resources.files("funreason").joinpath(folder, f"{name}.txt").read_text(encoding="utf-8")


def system_prompt(tools: Sequence[Tool], template: str | None = None) -> str:
    """BFCL's default prompting system prompt with the tools as indented JSON."""
    functions = json.dumps([public_schema(t) for t in tools], indent=4)
    return (template or prompt_template()).replace("{functions}", functions)


def public_schema(tool: Tool) -> dict[str, Any]:
    """A tool as a model is shown it: its JSON without FunReason's round-trip annotations."""
    return _public(tool.to_dict())


def _public(value: Any) -> Any:
    """Drop FunReason's round-trip annotations (`x-…` keys) before showing a schema to a model."""
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items() if not (isinstance(k, str) and k.startswith("x-"))}
    if isinstance(value, list):
        return [_public(v) for v in value]
    return value


# What becomes of an earlier assistant turn's reasoning in the history a later turn is asked with:
# dropped, in training, evaluation, self-refinement and `serve` alike, and by the template a trained
# checkpoint carries. Chat clients do not send reasoning back (OpenAI's API, vLLM's reasoning
# parsers), and Qwen3's and DeepSeek-R1's templates drop it too, so a model trained to see it would
# meet histories unlike its training. Each assistant turn is then learned in a row of its own
# (`assistant_turns`), asked with the history as it will be shown.
HISTORY_REASONING = "dropped"


def shown_content(m: Message, calls_after: str = "\n\n") -> str:
    """What a turn of the history shows the model: its text, an assistant turn's reasoning cut away
    (`HISTORY_REASONING`), then its calls as the model writes them, `calls_after` between the two."""
    content = m.content
    if m.role == "assistant" and THINK_CLOSE in content:
        content = content.split(THINK_CLOSE)[-1].lstrip()  # earlier reasoning is never shown back
    if m.tool_calls:
        content = (content + calls_after if content else "") + format_python_calls(m.tool_calls)
    return content


def answer_turn(ex: Example) -> int:
    """The number (1-based, as `assistant_turns` numbers turns) of the record's own answer: the
    assistant turn after the last one in its messages."""
    return sum(m.role == "assistant" for m in ex.messages) + 1


def prompt_messages(ex: Example, system: str | None = None) -> list[dict[str, str]]:
    """The chat messages the model sees before its answer. `system` is a system prompt template
    (`{functions}` becomes the tool list); default: BFCL's. Earlier assistant turns show their text
    and calls, never their reasoning (`HISTORY_REASONING`). A record without tools gets no system
    prompt of FunReason's: its conversation as it is (see below)."""
    msgs = [{"role": m.role, "content": shown_content(m)} for m in ex.messages]
    # No tools, no function-calling prompt: a served model is asked without one when a request offers
    # no tools (the checkpoint's template, `carry_tools_prompt`, renders its own template then, and
    # `serve` its plain chat), and requests without tools are the common case of plain chat, where
    # no engine can tell `tools=[]` from none. Training a tool-less row under BFCL's prompt with an
    # empty function list would teach the model a prompt no engine ever shows it.
    if not ex.tools:
        return msgs
    sys_text = system_prompt(ex.tools, system)
    if msgs and msgs[0]["role"] == "system":
        msgs[0] = {"role": "system", "content": sys_text + "\n\n" + msgs[0]["content"]}
    else:
        msgs.insert(0, {"role": "system", "content": sys_text})
    return msgs


@dataclass(frozen=True)
class LeftOut:
    """An assistant turn that cannot be learned: the record, the turn's number (1-based) and why.
    `str()` is the line reports print."""

    record: str
    turn: int
    reason: str

    def __str__(self) -> str:
        return f"{self.record} assistant turn {self.turn}: {self.reason}"


@dataclass
class Turns:
    """The assistant turns of one record to learn, each as an `Example` of its own (the conversation
    before it, then its reasoning and answer), and the turns left out with the reason."""

    examples: list[Example]
    left_out: list[LeftOut]


def assistant_turns(ex: Example, last_only: bool = False, *, offered_only: bool = False) -> Turns:
    """Every assistant turn of `ex` as a record to learn: an earlier turn `k` becomes
    `Example("{id}#turn{k}", tools, messages before it, its reasoning, its calls or its text)`,
    and the record's own answer is the last turn (its id unchanged). With `last_only`, only that.
    A turn with both text and calls is left out (its answer has no one form to learn), as is an
    empty one; `left_out` says which and why, so nothing is dropped silently.

    With `offered_only` (training, held-out scoring), an earlier turn that calls a function not
    among the tools is left out too: learned, it teaches calling what is not on offer, and asked,
    no answer could match it. (`Example.validate` refuses such a call in the record's own answer.
    FCDR asks for every turn, so that its query/tool stage judges such a turn and drops the row.)"""
    turns: list[Example] = []
    left_out: list[LeftOut] = []
    offered = {t.name for t in ex.tools}
    if not last_only:
        k = 0
        for i, m in enumerate(ex.messages):
            if m.role != "assistant":
                continue
            k += 1
            if m.tool_calls and m.content.strip():
                left_out.append(LeftOut(ex.id, k, "text and calls in one turn"))
                continue
            if offered_only and (unknown := sorted({c.name for c in m.tool_calls or []} - offered)):
                left_out.append(LeftOut(ex.id, k, f"calls {', '.join(unknown)}, not among the tools"))
                continue
            answer: list[Any] | str | None = list(m.tool_calls) if m.tool_calls else (m.content or None)
            if answer is None and m.reasoning is None:
                left_out.append(LeftOut(ex.id, k, "empty"))
                continue
            if not any(x.role == "user" for x in ex.messages[:i]):
                left_out.append(LeftOut(ex.id, k, "no user turn before it"))
                continue
            turns.append(Example(f"{ex.id}#turn{k}", ex.tools, ex.messages[:i], m.reasoning, answer,
                                 meta={**ex.meta, "turn": k}))
    if ex.answer is not None or ex.reasoning is not None or not turns:
        turns.append(ex)
    return Turns(turns, left_out)


@dataclass
class TurnTally:
    """What `learned_turns` made of a stream of records."""

    records: int = 0
    turns: int = 0  # turns to learn, one training row each
    left_out: int = 0  # turns that cannot be learned
    repeated: int = 0  # earlier turns identical to a record or turn before them in the stream, learned once
    first_left_out: list[str] = field(default_factory=list)


def learned_turns(examples: Iterable[Example], count: TurnTally, last_only: bool = False) -> Iterator[Example]:
    """`assistant_turns` of every record of a stream (`offered_only`), counted in `count`. An earlier turn identical
    (tools, history, reasoning and answer) to a record or turn that came before it in the stream is
    learned once: it is skipped and counted as repeated. That is glaive's reader, which yields every
    target turn of a dialogue as its own record, in order, and two conversations that open alike.
    Records themselves are never skipped."""
    seen: set[bytes] = set()

    def key(ex: Example) -> bytes:
        body = [[t.to_dict() for t in ex.tools], [m.to_dict() for m in ex.messages], ex.reasoning,
                ex.answer if not isinstance(ex.answer, list) else [c.to_dict() for c in ex.answer]]
        return hashlib.blake2b(json.dumps(body, sort_keys=True, ensure_ascii=False).encode(), digest_size=16).digest()

    for ex in examples:
        count.records += 1
        found = assistant_turns(ex, last_only=last_only, offered_only=True)
        count.left_out += len(found.left_out)
        count.first_left_out += [str(x) for x in found.left_out[: max(0, 5 - len(count.first_left_out))]]
        for turn in found.examples:
            if not last_only:  # only earlier turns can repeat a record; with the last alone there are none
                k = key(turn)
                if turn is not ex and k in seen:
                    count.repeated += 1
                    continue
                seen.add(k)
            count.turns += 1
            yield turn


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
    prompt: str  # the generation prompt: exactly what `render_prompt` gives
    completion: str  # what the model writes after it, then the template's end-of-turn text
    think_end: int  # offsets in `completion`; == 0 when there is no reasoning
    result_end: int


# the assistant content used to find where a template ends a turn; it holds no `</think>`, so no
# template rewrites it
_SENTINEL = "FUNREASON-ANSWER-SENTINEL"


def _layout(ex: Example, tokenizer: Any, system: str | None) -> _Layout:
    prompt = render_prompt(ex, tokenizer, system=system)
    if ex.answer is None and ex.reasoning is None:
        return _Layout(ex.id, prompt, "", 0, 0)
    body = format_answer(ex.reasoning, ex.answer)
    opened = prompt.rstrip().endswith(THINK_OPEN)  # e.g. DeepSeek-R1-Distill's generation prompt ends `<think>\n`
    if opened:
        # the prompt already holds `<think>`: the model writes the reasoning and closes the block,
        # or, with no reasoning to give, closes the empty block before the result
        body = body[len(THINK_OPEN):] if ex.reasoning is not None else f"{THINK_CLOSE}\n\n{body}"
    completion = body + turn_end(ex, tokenizer, system)
    think_end = completion.find(THINK_CLOSE) + len(THINK_CLOSE) if ex.reasoning is not None else 0
    return _Layout(ex.id, prompt, completion, think_end, len(completion.rstrip()))


def turn_end(ex: Example, tokenizer: Any, system: str | None = None) -> str:
    """The text the chat template writes after an assistant turn's content (`<|im_end|>\\n`,
    `<|eot_id|>`, …), found by rendering a sentinel answer after the record's conversation."""
    msgs = prompt_messages(ex, system) + [{"role": "assistant", "content": _SENTINEL}]
    text = tokenizer.apply_chat_template(msgs, tokenize=False)
    at = text.rfind(_SENTINEL)
    if at < 0:
        raise TemplateError(
            f"{ex.id}: the chat template of {_name(tokenizer)} does not render the assistant turn's content, so FunReason "
            "cannot tell where a turn ends; use `--chat-template FILE` with a template that renders it")
    return text[at + len(_SENTINEL):]


def _name(tokenizer: Any) -> str:
    return getattr(tokenizer, "name_or_path", "") or "the tokenizer"


def render(ex: Example, tokenizer: Any, *, system: str | None = None) -> Rendered:
    """Render one example; see `render_many` for batches."""
    return render_many([ex], tokenizer, system=system)[0]


def render_many(examples: Sequence[Example], tokenizer: Any, *, system: str | None = None) -> list[Rendered]:
    """Render and tokenize a batch. The prompt and the completion are tokenized apart and joined,
    so the prompt's tokens are exactly those `render_prompt` gives at inference (a token-level
    prefix of the training row, whatever the vocabulary merges across the boundary)."""
    layouts = [_layout(ex, tokenizer, system) for ex in examples]
    prompts = tokenizer([lay.prompt for lay in layouts], add_special_tokens=False)["input_ids"]
    comps = tokenizer([lay.completion for lay in layouts], add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for lay, p_ids, c_ids, offsets in zip(layouts, prompts, comps["input_ids"], comps["offset_mapping"]):
        bounds = [0, lay.think_end, lay.result_end]
        labels = (PROMPT, THINK, RESULT, PROMPT)
        segments = [PROMPT] * len(p_ids) + [labels[bisect_right(bounds, e - 1 if e > s else s)] for s, e in offsets]
        n = len(lay.prompt)
        out.append(Rendered(lay.id, lay.prompt + lay.completion, list(p_ids) + list(c_ids), segments,
                            (n, n + lay.think_end), (n + lay.think_end, n + lay.result_end)))
    return out


def render_prompt(ex: Example, tokenizer: Any, *, system: str | None = None) -> str:
    """The prompt text for generation (chat template with the generation prompt)."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError(f"{_name(tokenizer)} has no chat template; FunReason renders every example with one")
    return tokenizer.apply_chat_template(prompt_messages(ex, system), tokenize=False, add_generation_prompt=True)


_TOOLS_BEGIN = "{#- funreason: tools rendered as FunReason trains (chat.carry_tools_prompt) -#}\n"
_TOOLS_END = "{#- funreason: the model's own template follows -#}\n"


# The characters of the Basic Multilingual Plane that Python's `repr` escapes (control and format
# characters, separators other than the space: `str.isprintable` is false), each with its escape,
# as a Jinja list literal. Private-use and unassigned code points, and those beyond the BMP, are
# left out: Jinja engines other than Python's read no escape beyond `\uXXXX`.
_UNPRINTED = "[" + ", ".join(
    f"[{json.dumps(c)}, {json.dumps(repr(c)[1:-1])}]" for c in map(chr, range(0x10000))
    if not c.isprintable() and unicodedata.category(c) in ("Cc", "Cf", "Zs", "Zl", "Zp")) + "]"

# Jinja that rewrites `messages` as `prompt_messages` does: an assistant turn's calls appended to
# its content as `format_python_calls` writes them (repr-exact for values made of None, booleans,
# numbers, strings of the BMP's assigned characters, lists and objects), each message reduced to
# its role and content.
_HISTORY_CALLS = (
    "{%- macro fr_str(s) -%}"
    "{%- set ns = namespace(e=s | replace('\\\\', '\\\\\\\\')) -%}"
    "{%- for c, r in " + _UNPRINTED + " -%}{%- set ns.e = ns.e | replace(c, r) -%}{%- endfor -%}"
    "{%- set e = ns.e -%}"
    "{%- if \"'\" in s and '\"' not in s -%}\"{{ e }}\"{%- else -%}'{{ e | replace(\"'\", \"\\\\'\") }}'{%- endif -%}"
    "{%- endmacro -%}"
    "{%- macro fr_lit(v) -%}"
    "{%- if v is none -%}None{%- elif v is boolean -%}{{ 'True' if v else 'False' }}"
    "{%- elif v is string -%}{{ fr_str(v) }}{%- elif v is number -%}{{ v | tojson }}"
    "{%- elif v is mapping -%}{{ '{' }}{%- for k, x in v.items() -%}{{ fr_lit(k) }}: {{ fr_lit(x) }}{{ ', ' if not loop.last }}{%- endfor -%}{{ '}' }}"
    "{%- else -%}[{%- for x in v -%}{{ fr_lit(x) }}{{ ', ' if not loop.last }}{%- endfor -%}]{%- endif -%}"
    "{%- endmacro -%}"
    "{%- macro fr_call(f) -%}"
    "{%- if f.arguments is string -%}{{ raise_exception('tool call arguments must be an object, not a JSON string: "
    "parse them first (vLLM does before rendering)') }}{%- endif -%}"
    "{{ f.name }}({%- for k, x in (f.arguments or {}).items() -%}{{ k }}={{ fr_lit(x) }}{{ ', ' if not loop.last }}{%- endfor -%})"
    "{%- endmacro -%}"
    "{%- if messages is defined -%}"
    "{%- set hist = namespace(msgs=[]) -%}"
    "{%- for m in messages -%}"
    "{%- set text = m.content if m.content is string else '' -%}"
    "{%- if m.role == 'assistant' and '</think>' in text -%}{%- set text = text.split('</think>')[-1].lstrip() -%}{%- endif -%}"
    "{%- if m.role == 'assistant' and m.tool_calls is defined and m.tool_calls -%}"
    "{%- set calls = namespace(text='') -%}"
    "{%- for tc in m.tool_calls -%}{%- set f = tc.function if tc.function is defined else tc -%}"
    "{%- set calls.text = calls.text ~ (', ' if not loop.first else '') ~ fr_call(f) -%}"
    "{%- endfor -%}"
    "{%- set text = (text ~ '\\n\\n' if text else '') ~ '[' ~ calls.text ~ ']' -%}"
    "{%- endif -%}"
    "{%- set hist.msgs = hist.msgs + [{'role': m.role, 'content': text}] -%}"
    "{%- endfor -%}"
    "{%- set messages = hist.msgs -%}"
    "{%- endif -%}"
)


def carry_tools_prompt(template: str, system: str | None = None) -> str:
    """`template` extended so that `apply_chat_template(messages, tools=…)` renders the prompt
    FunReason trains with (`render_prompt`): BFCL's system prompt (or the `system` template) with
    the tools as JSON, before a system turn of the messages, and the tools hidden from the template
    itself (which would render them its own way, e.g. Qwen2.5's `<tool_call>` block). Without tools
    (none, or an empty list) it renders as `template` does, as `render_prompt` renders a record
    without tools (`prompt_messages` says why). Training saves it with the model, so any engine that reads the
    checkpoint's template (vLLM, TGI, `funreason serve`) prompts the model as it was trained.
    Earlier assistant turns' `tool_calls` (FunReason's `{name, arguments}` or OpenAI's
    `{type, function: {name, arguments}}`) are written into their content as `prompt_messages`
    writes them (`[f(a=1)]`, Python literals), and every message keeps only its role and content, so
    the template cannot drop the calls of a history or render them its own way. Arguments must be
    an object, as chat templates take them (vLLM parses OpenAI's JSON strings before rendering; a
    string left as it is stops the template with that message). Idempotent: a template extended
    before is extended once."""
    if template.startswith(_TOOLS_BEGIN):
        template = template.split(_TOOLS_END, 1)[1]
    head, tail = (system or prompt_template()).split("{functions}", 1)
    lit = json.dumps  # a JSON string is a Jinja string literal (ASCII, backslash escapes)
    wrapper = _HISTORY_CALLS + (
        "{%- if tools -%}"
        "{%- set ns = namespace(fns=[]) -%}"
        "{%- for t in tools -%}{%- set f = t.function if t.function is defined else t -%}"
        "{%- set ns.fns = ns.fns + [{'name': f.name, 'description': f.description if f.description is defined and f.description is not none else '', "
        "'parameters': f.parameters if f.parameters is defined and f.parameters is not none else {'type': 'object', 'properties': {}}}] -%}"
        "{%- endfor -%}"
        f"{{%- set sys = {lit(head)} + (ns.fns | tojson(ensure_ascii=True, indent=4)) + {lit(tail)} -%}}"
        "{%- if messages and messages[0].role == 'system' -%}"
        "{%- set messages = [{'role': 'system', 'content': sys + '\\n\\n' + messages[0].content}] + messages[1:] -%}"
        "{%- else -%}{%- set messages = [{'role': 'system', 'content': sys}] + messages -%}{%- endif -%}"
        "{%- set tools = none -%}"
        # an empty list is no tools: hidden too, or a template that tests `tools is not none` (Llama 3.1's)
        # would announce tool use that `render_prompt`, which passes no tools, never shows
        "{%- elif tools is defined and tools is not none -%}{%- set tools = none -%}"
        "{%- endif -%}\n"
    )
    return _TOOLS_BEGIN + wrapper + _TOOLS_END + template


def load_tokenizer(model: str, chat_template: str | None = None) -> Any:
    """The tokenizer of `model`, with the Jinja template in the file `chat_template` in place of its
    own when given. A model trained with one saves it (`tokenizer_config.json`), so every later verb
    (evaluation, self-refinement, `serve`) prompts it as it was trained without being told again."""
    from transformers import AutoTokenizer

    template = None
    if chat_template:
        try:
            template = Path(chat_template).read_text(encoding="utf-8")
        except OSError as e:
            raise ValueError(f"--chat-template {chat_template}: {e.strerror or e}") from None
    tokenizer = AutoTokenizer.from_pretrained(model)
    if template is not None:
        tokenizer.chat_template = template
    return tokenizer


def render_stream(examples: Iterable[Example], tokenizer: Any, *, system: str | None = None, batch_size: int = 256,
                  on_batch: Callable[[int], None] | None = None) -> Iterator[tuple[Example, Rendered]]:
    """Each example with its rendering, tokenized `batch_size` at a time (a fast tokenizer's batch
    call), reading `examples` lazily so a large file is never held whole; `on_batch(n)` after each batch."""
    batch: list[Example] = []
    for ex in itertools.chain(examples, [None]):
        if ex is not None:
            batch.append(ex)
        if batch and (ex is None or len(batch) >= batch_size):
            yield from zip(batch, render_many(batch, tokenizer, system=system))
            if on_batch:
                on_batch(len(batch))
            batch = []
