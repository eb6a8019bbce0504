"""Schema-guided decoding: a call list the model starts is kept to the functions it was given.

`call_grammar(tools)` writes a grammar (llguidance's Lark dialect) of the answers a FunReason model
writes: an optional `<think>…</think>`, then either a Python call list or prose. Inside a call list
every name is one of the tools', every keyword one of that tool's parameters, each at most once and
in declared order, every required one present, and every value a Python literal of the declared
type (an enum's values only; a float with its decimal point, as BFCL's checker wants floats inside
lists). Prose is never constrained: an answer that does not begin with `[` is the model's own, so a
model may still decline to call anything.

`Guide` turns such a grammar into one matcher per answer and masks, at each decode step, the tokens
that would leave it. Decoding stays the model's choice among what the grammar allows; nothing is
written for it except what the grammar forces.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from funreason.calls import THINK_CLOSE, THINK_OPEN
from funreason.schema import Tool

if TYPE_CHECKING:
    from funreason.llm import SamplingParams

MAX_DEPTH = 3  # nesting of typed lists / dicts spelled out; deeper values take the any-literal rule
_INT = r"/-?(0|[1-9][0-9]{0,17})/"
# a float literal: with a decimal point, an exponent or both ("2.5", "1e-05", "6.02e23")
_FLOAT = r"/-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,17}([eE][-+]?[0-9]{1,3})?|[eE][-+]?[0-9]{1,3})/"
_STRING = r"""/'([^'\\\n]|\\.){0,2000}'/ | /"([^"\\\n]|\\.){0,2000}"/"""
# a literal of no declared type: what `calls.format_value` writes, nested to any depth
_ANY_RULES = f"""
any_value: STRING | INT | FLOAT | "True" | "False" | "None" | any_list | any_dict
any_list: "[" (any_value (SEP any_value)*)? "]"
any_dict: "{{" (any_value ": " any_value (SEP any_value ": " any_value)*)? "}}"
STRING: {_STRING}
INT: {_INT}
FLOAT: {_FLOAT}
SEP: /, ?/
"""


@dataclass
class _Rules:
    """Grammar rules under construction, each named once."""

    lines: list[str]
    n: int = 0

    def add(self, body: str, hint: str = "r") -> str:
        self.n += 1
        name = f"{re.sub(r'[^a-z0-9_]', '_', hint.lower())[:24]}_{self.n}"
        self.lines.append(f"{name}: {body}")
        return name


def _quoted(s: str) -> str:
    return json.dumps(s)  # a Lark string literal is a JSON string


def _enum(values: list[Any]) -> str | None:
    """The literals of an enum's values, or None when a value has no plain literal form."""
    out = []
    for v in values:
        if isinstance(v, str):
            out += [_quoted(repr(v)), _quoted('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"')]
        elif v is None or isinstance(v, (bool, int, float)):
            out.append(_quoted(repr(v)))
        else:
            return None
    return " | ".join(dict.fromkeys(out)) if out else None


def _value(rules: _Rules, schema: Any, depth: int) -> str:
    """The grammar expression of one value of `schema` (BFCL or JSON Schema type names)."""
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return "any_value"
    if isinstance(schema.get("enum"), list) and (alts := _enum(schema["enum"])):
        return f"({alts})"
    typ = schema.get("type")
    if isinstance(typ, list):  # ["string", "null"]: any of them
        return "(" + " | ".join(_value(rules, {**schema, "type": t}, depth) for t in typ) + ")"
    if typ == "string":
        return "STRING"
    if typ == "integer":
        return "INT"
    if typ in ("float", "number"):
        return "FLOAT" if typ == "float" else "(FLOAT | INT)"
    if typ == "boolean":
        return '("True" | "False")'
    if typ == "null":
        return '"None"'
    if typ in ("array", "tuple"):
        item = _value(rules, schema.get("items"), depth + 1)
        body = f'"[" ({item} (SEP {item})*)? "]"'
        if typ == "tuple":
            body += f' | "(" ({item} (SEP {item})*)? ")"'
        return rules.add(body, "list")
    if typ in ("dict", "object"):
        props = schema.get("properties")
        if isinstance(props, dict) and props:  # its keys in declared order, each at most once
            required = set(schema.get("required") or [])
            keys = _chain(rules, [(f"{k!r}: ", _value(rules, v, depth + 1), k in required) for k, v in props.items()], "keys")
            return rules.add(f'"{{" {keys} "}}"', "dict")
        return "any_dict"
    return "any_value"


def _chain(rules: _Rules, entries: list[tuple[str, str, bool]], hint: str) -> str:
    """`entries` (literal key, value expression, required) in their order, separated by commas: the
    required ones always, the optional ones at will, none twice. "" when there are none."""
    # after[(i, first)]: the entries from the i-th on; `first` while none was written yet
    after: dict[tuple[int, bool], str] = {}
    for first in (True, False):
        after[(len(entries), first)] = ""
    for i in range(len(entries) - 1, -1, -1):
        key, value, required = entries[i]
        for first in (True, False):
            entry = f'{"" if first else "SEP "}{_quoted(key)} {value} {after[(i + 1, False)]}'.strip()
            if required:
                body = entry
            else:
                skip = after[(i + 1, first)]
                body = f"({entry}) | ({skip})" if skip else f"({entry})?"
            after[(i, first)] = rules.add(body, hint)
    return after[(0, True)]


def _arguments(rules: _Rules, tool: Tool) -> str:
    """Keyword arguments in declared order: required ones always, optional ones at will."""
    params = tool.parameters if isinstance(tool.parameters, dict) else {}
    props = params.get("properties") or {}
    required = set(params.get("required") or [])
    return _chain(rules, [(f"{k}=", _value(rules, v, 1), k in required) for k, v in props.items()], "args")


def think_tokens(tokenizer: Any) -> bool:
    """Whether `tokenizer` writes `<think>` and `</think>` as tokens of their own (Qwen's do), which a
    grammar names as special tokens; elsewhere they are text."""
    added = tokenizer.get_added_vocab()
    return THINK_OPEN in added and THINK_CLOSE in added


def call_grammar(tools: list[Tool], *, prose: bool = True, think: bool = True, think_tokens: bool = False) -> str:
    """The Lark grammar of an answer that calls `tools` (see the module docstring). `prose`: an
    answer may be text that is not a call list; `think`: it may begin with a think block.
    `think_tokens`: the tokenizer has `<think>` and `</think>` as tokens of their own
    (`think_tokens(tokenizer)`)."""
    if not tools:
        raise ValueError("a call grammar needs at least one tool")
    rules = _Rules([])
    calls = []
    for t in tools:
        args = _arguments(rules, t)
        calls.append(rules.add(f'{_quoted(t.name + "(")} {args} ")"', f"call_{t.name}"))
    answer = "calls | PROSE" if prose else "calls"
    head = [
        "start: think? answer" if think else "start: answer",
        (f"think: {THINK_OPEN} /[\\s\\S]*/ {THINK_CLOSE}" if think_tokens else f'think[stop="{THINK_CLOSE}"]: "{THINK_OPEN}" /[\\s\\S]*/'),
        # a little space before the answer (the "\\n\\n" after a think block), not a run of it
        f"answer: /\\s{{0,3}}/ ({answer})",
        'calls: "[" call (SEP call)* "]"',
        "call: " + " | ".join(calls),
        # prose: anything that does not open a call list (or a think block)
        "PROSE: /[^\\[<\\s][\\s\\S]*/",
    ]
    return "\n".join(head + rules.lines) + "\n" + _ANY_RULES


def guided_params(params: SamplingParams, tools: list[Tool], tokenizer: Any, *, prose: bool = True) -> SamplingParams:
    """`params` with the call grammar of `tools` for `tokenizer`, unchanged when there are no tools
    to call."""
    if not tools:
        return params
    return dataclasses.replace(params, grammar=call_grammar(tools, prose=prose, think_tokens=think_tokens(tokenizer)))


class Guide:
    """Grammar matchers for one tokenizer, and the masking of a decode step's logits."""

    def __init__(self, tokenizer: Any, vocab_size: int):
        import llguidance
        import llguidance.hf

        self._ll = llguidance
        self.vocab_size = vocab_size
        self.tokenizer = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size)
        self._compiled: dict[str, str] = {}
        self._shifts = torch.arange(32, dtype=torch.int32)
        self._exec: Any = None

    def matcher(self, grammar: str) -> Any:
        """A fresh matcher for `grammar` (Lark); ValueError naming the fault when it is not valid."""
        compiled = self._compiled.get(grammar)
        if compiled is None:
            compiled = self._ll.LLMatcher.grammar_from_lark(grammar)
            error = self._ll.LLMatcher.validate_grammar(compiled, self.tokenizer)
            if error and not error.startswith("WARNING"):
                raise ValueError(f"invalid grammar: {error}")
            self._compiled[grammar] = compiled
        return self._ll.LLMatcher(self.tokenizer, compiled, log_level=0)

    def mask(self, rows: list[tuple[Any, int]], logits: torch.Tensor) -> None:
        """For each (matcher, j) of `rows`, set the logits of row j that the matcher does not allow
        now to -inf, in place; other rows are left as they are. The masks are computed together
        (in parallel, outside the GIL) and applied in one tensor operation."""
        if not rows:
            return
        n, vocab = logits.shape
        words = (self.vocab_size + 31) // 32
        bitmask = torch.full((n, words), -1, dtype=torch.int32)  # -1: every token allowed
        self._executor().unsafe_compute_mask_ptr(rows, bitmask.data_ptr(), words * 4, n)
        allowed = ((bitmask.unsqueeze(-1) >> self._shifts) & 1).view(n, words * 32)[:, :vocab]
        if allowed.shape[1] < vocab:  # logits past the tokenizer's vocabulary: never allowed
            allowed = torch.nn.functional.pad(allowed, (0, vocab - allowed.shape[1]))
        logits.masked_fill_(allowed.to(logits.device) == 0, float("-inf"))

    def _executor(self) -> Any:
        if self._exec is None:
            self._exec = self._ll.LLExecutor()
        return self._exec
