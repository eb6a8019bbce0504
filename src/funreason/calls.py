"""Parse and format function calls. Never `eval`/`exec`: only literal values are accepted.

Three call syntaxes are understood:
- the BFCL / FunReason Python-call list: `[get_weather(city='Paris', days=3), math.factorial(n=5)]`
  (parsed with `ast.parse`, which builds a syntax tree and runs nothing); a name may have hyphens
  between its parts (`get-weather(city='Paris')`, as OpenAI's and MCP's tool names may), though
  each part must be an identifier that is not a Python keyword (`get-2fa`, `get-class` are not read);
- JSON: `[{"name": ..., "arguments": {...}}]`, arguments as an object or a JSON string
  (BFCL's `{"function": ..., "parameters": ...}` spelling too);
- Qwen / Hermes blocks: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`.
A leading `<think>…</think>` is split off first and returned as reasoning (`parse_output`).
Anything else, including hostile input, raises `ParseError`.
"""

from __future__ import annotations

import ast
import json
import math
import re
import warnings
from dataclasses import dataclass
from typing import Any

from funreason.errors import ParseError
from funreason.schema import Call

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
TOOL_CALL_OPEN, TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"

MAX_CHARS = 1_000_000  # longer "calls" are rejected before any parsing work
MAX_DEPTH = 64  # nesting of lists / dicts inside one argument value

_FENCE = re.compile(r"^```[A-Za-z0-9_+-]*[ \t]*\n?(.*?)\n?```$", re.DOTALL)
_JSON = json.JSONDecoder()
_SPACE = re.compile(r"\s*")


@dataclass
class Output:
    """A model output split into its parts. `calls` is None when the rest is not calls."""

    reasoning: str | None
    calls: list[Call] | None
    content: str
    error: str | None = None  # why `content` did not parse as calls


# --- reasoning ----------------------------------------------------------------------------------


def split_think(text: str) -> tuple[str | None, str]:
    """Split a leading `<think>…</think>` off `text`: (reasoning or None, the rest, stripped).

    An unclosed `<think>` (generation cut short) yields all of it as reasoning and no rest.
    A bare `</think>` with no opening tag (templates that put `<think>` in the prompt) counts too.
    """
    s = text.lstrip()
    if s.startswith(THINK_OPEN):
        end = s.find(THINK_CLOSE)
        if end < 0:
            return s[len(THINK_OPEN) :].strip(), ""
        return s[len(THINK_OPEN) : end].strip(), s[end + len(THINK_CLOSE) :].strip()
    end = s.find(THINK_CLOSE)
    if end >= 0 and THINK_OPEN not in s[:end]:
        return s[:end].strip(), s[end + len(THINK_CLOSE) :].strip()
    return None, s.strip()


def split_think_partial(text: str) -> tuple[str | None, str | None]:
    """`split_think` of an output still being generated (streaming): (reasoning so far, answer so
    far), None where it cannot be known yet. Text that could be the start of a tag is held back."""
    s = text.lstrip()
    if not s or (THINK_OPEN.startswith(s)):
        return None, None
    if not s.startswith(THINK_OPEN):
        return None, s
    body = s[len(THINK_OPEN):]
    end = body.find(THINK_CLOSE)
    if end >= 0:
        return body[:end].strip(), body[end + len(THINK_CLOSE):].lstrip()
    for k in range(len(THINK_CLOSE) - 1, 0, -1):  # hold back a partial closing tag
        if body.endswith(THINK_CLOSE[:k]):
            return body[:-k].lstrip(), None
    return body.lstrip(), None


# --- parsing ------------------------------------------------------------------------------------


def parse_output(text: str, *, max_chars: int = MAX_CHARS) -> Output:
    """Split reasoning off a model output and parse the rest as calls if it is calls.

    Never raises on model text: a rest that is not calls comes back as `content` with `error`.
    """
    if not isinstance(text, str):
        raise ParseError(f"expected text, got {type(text).__name__}")
    reasoning, rest = split_think(text)
    if not rest:
        return Output(reasoning, None, "", "no calls after the reasoning")
    try:
        calls = parse_calls(rest, max_chars=max_chars)
    except ParseError as e:
        return Output(reasoning, None, rest, e.reason)
    content = ""
    if TOOL_CALL_OPEN in rest:  # the text around the blocks (their calls parsed, so every block closes)
        kept, at = [], 0
        for start, end, _ in _tool_call_blocks(rest):
            kept.append(rest[at:start])
            at = end
        content = ("".join(kept) + rest[at:]).strip()
    return Output(reasoning, calls, content)


def parse_calls(text: str, *, max_chars: int = MAX_CHARS) -> list[Call]:
    """Parse calls in any of the three syntaxes (code fences allowed). Raises ParseError."""
    s = _prepare(text, max_chars)
    if TOOL_CALL_OPEN in s:
        return parse_tool_call_tags(s, max_chars=max_chars)
    if s.startswith("{") or re.match(r"\[\s*\{", s):
        return parse_json_calls(s, max_chars=max_chars)
    return parse_python_calls(s, max_chars=max_chars)


def parse_python_calls(text: str, *, max_chars: int = MAX_CHARS) -> list[Call]:
    """Parse `[f(a=1), pkg.g(b='x')]` (or a bare call, or calls separated by commas).

    Only keyword arguments with literal values: str, int, float, True/False/None, lists, tuples
    (returned as lists) and dicts, nested at most MAX_DEPTH deep, with unary +/- on numbers.
    """
    s = _prepare(text, max_chars)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. SyntaxWarning for "\d" in a string
            tree = ast.parse(s, mode="eval")
    except SyntaxError as e:
        raise ParseError(f"not a Python call list ({e.msg})", s) from None
    except (ValueError, MemoryError, RecursionError, OverflowError) as e:
        raise ParseError(f"not a Python call list ({type(e).__name__}: {e})", s) from None
    body = tree.body
    nodes = body.elts if isinstance(body, (ast.List, ast.Tuple)) else [body]
    try:
        return [_call_from_node(n) for n in nodes]
    except RecursionError:
        raise ParseError("value nested too deeply", s) from None


def parse_json_calls(text: str, *, max_chars: int = MAX_CHARS) -> list[Call]:
    """Parse `[{"name": "f", "arguments": {...}}]` or one such object."""
    s = _prepare(text, max_chars)
    try:
        data = json.loads(s)
    except (ValueError, RecursionError) as e:
        raise ParseError(f"not JSON ({type(e).__name__}: {str(e)[:80]})", s) from None
    items = data if isinstance(data, list) else [data]
    return [_call_from_json(item, s) for item in items]


def parse_tool_call_tags(text: str, *, max_chars: int = MAX_CHARS) -> list[Call]:
    """Parse one or more `<tool_call>{json}</tool_call>` blocks (text around them is ignored)."""
    s = _prepare(text, max_chars)
    blocks = _tool_call_blocks(s)
    if not blocks:
        raise ParseError("no <tool_call> block", s)
    calls: list[Call] = []
    for _, _, block in blocks:
        calls.extend(parse_json_calls(block.strip(), max_chars=max_chars))
    return calls


def _tool_call_blocks(s: str) -> list[tuple[int, int, str]]:
    """(start, end, inner text) of each `<tool_call>…</tool_call>` block of `s`.

    A block's JSON is read as JSON, so a string value holding a tag (an argument "<tool_call>" or
    "</tool_call>") stays inside its block: the block ends at the first closing tag after the value
    (text between the two fails later as JSON). JSON that does not read ends at the first closing
    tag and fails later with its own reason. An opening tag without a closing one raises ParseError."""
    blocks: list[tuple[int, int, str]] = []
    start = s.find(TOOL_CALL_OPEN)
    while start >= 0:
        body = start + len(TOOL_CALL_OPEN)
        try:  # the closing tag after the JSON value, not one inside it
            close = s.find(TOOL_CALL_CLOSE, _JSON.raw_decode(s, _SPACE.match(s, body).end())[1])
        except (ValueError, RecursionError):
            close = s.find(TOOL_CALL_CLOSE, body)
        if close < 0:
            raise ParseError("unclosed <tool_call> block", s)
        end = close + len(TOOL_CALL_CLOSE)
        blocks.append((start, end, s[body:close]))
        start = s.find(TOOL_CALL_OPEN, end)
    return blocks


class CallsPrefix:
    """An answer read as it is generated: `dead` once no continuation of it can parse as JSON or
    Python calls (what `parse_calls` reads without `<tool_call>` blocks, fences included).

    Invariant: `dead` turns True only when no text that starts with what was fed parses as calls
    through those shapes; where unsure (a parenthesised start, a comment, a line continuation, an
    unclosed bracket) it stays False, which only holds text back longer. `<tool_call>` blocks are
    not its business: `parse_calls` finds them anywhere, so no prefix rules them out. Each
    character is read once (`feed` the new text as it comes)."""

    _LANG = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+-")  # _FENCE's language tag

    def __init__(self) -> None:
        self.text = ""  # everything fed
        self.dead = False
        self._at = 0  # next character of `text` to read
        self._state = "start"
        self._open = False  # unsure for good: never dead
        self._fenced = False  # inside a code fence: closing backticks may follow the calls
        self._ticks = 0
        self._depth = 0
        self._rule = ""  # what closed: "call" (a bare call: a comma may add calls) or "list"
        self._quote = ""  # the open string's quote ("'", '"' or a triple), "" outside strings
        self._comment = False

    def feed(self, more: str) -> bool:
        """Read `more` (the text that follows what was fed); returns `dead`."""
        self.text += more
        while not (self.dead or self._open) and self._at < len(self.text):
            if not self._step():
                break  # a quote or an escape needs the next characters
        return self.dead

    def _step(self) -> bool:
        s, i = self.text, self._at
        c, state = s[i], self._state
        self._at = i + 1
        if state == "start":
            if c.isspace():
                pass
            elif c == "`":
                self._state, self._ticks = "ticks", 1
            elif c in "[{":
                self._state, self._depth, self._rule = "struct", 1, "list"
            elif c in "(\\":  # a parenthesised call or tuple, a line continuation: not worth following
                self._open = True
            elif c.isidentifier():
                self._state = "name"
            elif c == "#":  # a comment line before the calls: Python's parser skips it, and so does this
                self._state = "comment"
            else:
                self.dead = True
        elif state == "comment":
            if c == "\n":
                self._state = "start"
        elif state == "ticks":
            self._ticks += 1
            if c != "`":
                self.dead = True
            elif self._ticks == 3:
                self._state = "lang"
        elif state == "lang":
            if c not in self._LANG:  # _FENCE: the tag, blanks, a newline, then the calls (stripped)
                self._state, self._fenced, self._at = "start", True, i
        elif state in ("name", "name_end", "dot"):
            self._name(c, state)
        elif state == "struct":
            return self._struct(s, i, c)
        elif state == "after":
            if c.isspace():
                pass
            elif c in "#\\" or (c == "," and self._rule == "call"):  # a comment, a continuation, more calls
                self._open = True
            elif c == "`" and self._fenced:
                self._state = "trail"
            else:  # `[f()] and …`, `f() I also …`, `{…}\n{…}`: no call list reads so
                self.dead = True
        elif state == "trail":
            self.dead = not (c == "`" or c.isspace())
        return True

    def _name(self, c: str, state: str) -> None:
        """A dotted (or hyphenated) function name, then its `(`: anything else ends the chance of a bare call."""
        if state == "name" and ("a" + c).isidentifier():
            return
        if state == "name" and c == "-":  # `get-weather(`: like a dot, a name part must follow
            self._state = "dot"
            return
        if state == "dot":
            if c.isidentifier():
                self._state = "name"
            elif not c.isspace():
                self.dead = c != "\\"
                self._open = c == "\\"
            return
        if c.isspace():
            self._state = "name_end"
        elif c == ".":
            self._state = "dot"
        elif c == "(":
            self._state, self._depth, self._rule = "struct", 1, "call"
        elif c == "\\":
            self._open = True
        else:
            self.dead = True

    def _struct(self, s: str, i: int, c: str) -> bool:
        """Inside brackets: strings, comments and nesting followed as Python's tokenizer does."""
        if self._comment:
            self._comment = c != "\n"
        elif self._quote:
            if c == "\\":
                if i + 1 >= len(s):
                    self._at = i
                    return False
                self._at = i + 2
            elif s.startswith(self._quote, i) or (c == self._quote[0] and len(s) - i < len(self._quote)):
                if len(s) - i < len(self._quote):  # perhaps the closing triple quote: wait for it
                    self._at = i
                    return False
                self._at, self._quote = i + len(self._quote), ""
        elif c in "'\"":
            if len(s) - i < 3:  # '' or the start of '\'\'\''? wait for the next characters
                self._at = i
                return False
            self._quote = c * 3 if s.startswith(c * 3, i) else c
            self._at = i + len(self._quote)
        elif c == "#":
            self._comment = True
        elif c in "([{":
            self._depth += 1
        elif c in ")]}":
            self._depth -= 1
            if self._depth == 0:
                self._state = "after"
        return True


def _prepare(text: str, max_chars: int) -> str:
    if not isinstance(text, str):
        raise ParseError(f"expected text, got {type(text).__name__}")
    if len(text) > max_chars:
        raise ParseError(f"{len(text):,} characters, over the {max_chars:,} limit for calls")
    s = text.strip()
    m = _FENCE.match(s)
    if m:
        s = m.group(1).strip()
    if not s:
        raise ParseError("empty text where calls were expected")
    return s


def _call_from_node(node: ast.AST) -> Call:
    prefix = ""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and isinstance(node.right, ast.Call):
        # `get-weather(…)` reads as `get - weather(…)`: a hyphenated name (OpenAI's and MCP's tool
        # names may have hyphens), taken only when the hyphens join the name's parts with no space
        prefix = _hyphened(node.left) + "-"
        if not _joined(node.left, node.right.func):
            raise ParseError(f"expected a function call, found {_describe(node)}", _unparse(node))
        node = node.right
    if not isinstance(node, ast.Call):
        raise ParseError(f"expected a function call, found {_describe(node)}", _unparse(node))
    name = prefix + _dotted_name(node.func)
    if node.args:
        raise ParseError(f"positional argument in call to {name}; write name=value", _unparse(node))
    args: dict[str, Any] = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise ParseError(f"**kwargs in call to {name}", _unparse(node))
        if kw.arg in args:
            raise ParseError(f"argument {kw.arg!r} given twice in call to {name}", _unparse(node))
        args[kw.arg] = _literal(kw.value, name, kw.arg, 0)
    return Call(name=name, arguments=args)


def _hyphened(node: ast.AST) -> str:
    """The part of a hyphenated name before its last hyphen: `get` of `get-weather`, `a-b` of `a-b-c`."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub):
        if not _joined(node.left, node.right):
            raise ParseError(f"function name must be a dotted identifier, found {_describe(node)}", _unparse(node))
        return _hyphened(node.left) + "-" + _dotted_name(node.right)
    return _dotted_name(node)


def _joined(left: ast.AST, right: ast.AST) -> bool:
    """True when one character (the `-`) stands between `left`'s end and the start of `right`'s
    first name part, on one line: no space, bracket or comment (positions, not text, so a long
    call list is read in linear time)."""
    while isinstance(right, ast.Attribute):
        right = right.value
    return left.end_lineno == right.lineno and left.end_col_offset + 1 == right.col_offset  # type: ignore[attr-defined, operator]


def _dotted_name(node: ast.AST) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise ParseError(f"function name must be a dotted identifier, found {_describe(node)}", _unparse(node))
    parts.append(node.id)
    return ".".join(reversed(parts))


def _literal(node: ast.AST, func: str, arg: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise ParseError(f"argument {arg!r} of {func} nests deeper than {MAX_DEPTH}")
    if isinstance(node, ast.Constant):
        v = node.value
        if v is None or isinstance(v, (str, bool, int, float)):
            return v
        raise ParseError(f"argument {arg!r} of {func} is a {type(v).__name__} literal, not allowed", _unparse(node))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = node.operand
        if isinstance(operand, ast.Constant) and type(operand.value) in (int, float):
            return -operand.value if isinstance(node.op, ast.USub) else operand.value
        raise ParseError(f"argument {arg!r} of {func}: sign applied to a non-number", _unparse(node))
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e, func, arg, depth + 1) for e in node.elts]
    if isinstance(node, ast.Dict):
        out: dict[Any, Any] = {}
        for k, v in zip(node.keys, node.values):
            if k is None:
                raise ParseError(f"argument {arg!r} of {func}: ** unpacking in a dict", _unparse(node))
            key = _literal(k, func, arg, depth + 1)
            if isinstance(key, list):
                raise ParseError(f"argument {arg!r} of {func}: a list cannot be a dict key", _unparse(node))
            out[key] = _literal(v, func, arg, depth + 1)
        return out
    raise ParseError(
        f"argument {arg!r} of {func} is {_describe(node)}, not a literal value", _unparse(node)
    )


def _describe(node: ast.AST) -> str:
    kinds = {
        ast.Call: "a call",
        ast.Name: "a bare name",
        ast.Attribute: "an attribute access",
        ast.BinOp: "an arithmetic expression",
        ast.Lambda: "a lambda",
        ast.Subscript: "a subscript",
        ast.JoinedStr: "an f-string",
        ast.Set: "a set",
        ast.Compare: "a comparison",
        ast.BoolOp: "a boolean expression",
    }
    return kinds.get(type(node), f"a {type(node).__name__} expression")


def _unparse(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # unparse of a pathological tree must not mask the real error
        return f"<{type(node).__name__}>"


def _call_from_json(item: Any, source: str) -> Call:
    if not isinstance(item, dict):
        raise ParseError(f"expected a call object, found {type(item).__name__}", source)
    name = item.get("name", item.get("function"))
    if isinstance(name, dict):  # {"function": {"name": ..., "arguments": ...}} (OpenAI tool_calls)
        return _call_from_json(name, source)
    if not isinstance(name, str) or not name:
        raise ParseError("call object has no 'name'", source)
    args = item.get("arguments", item.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except (ValueError, RecursionError):
            raise ParseError(f"arguments of {name} are a string that is not JSON", args) from None
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ParseError(f"arguments of {name} must be an object, found {type(args).__name__}", source)
    return Call(name=name, arguments=args, id=item.get("id") if isinstance(item.get("id"), str) else None)


# --- formatting ---------------------------------------------------------------------------------


def format_python_calls(calls: list[Call]) -> str:
    """`[f(a=1, b='x'), g()]`: the BFCL prompting format FunReason models write."""
    return "[" + ", ".join(format_python_call(c) for c in calls) + "]"


def format_python_call(call: Call) -> str:
    args = ", ".join(f"{k}={format_value(v)}" for k, v in call.arguments.items())
    return f"{call.name}({args})"


def format_value(v: Any) -> str:
    """A Python literal for a JSON-like value, parseable back by `parse_python_calls`."""
    if v is None or isinstance(v, (bool, int, str)):
        return repr(v)
    if isinstance(v, float):
        if math.isnan(v):
            raise ValueError("NaN has no literal form")
        if math.isinf(v):
            return "1e999" if v > 0 else "-1e999"
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(format_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{format_value(k)}: {format_value(x)}" for k, x in v.items()) + "}"
    raise ValueError(f"cannot write a {type(v).__name__} as a literal")


def format_json_calls(calls: list[Call]) -> str:
    """`[{"name": "f", "arguments": {...}}]`."""
    return json.dumps([{"name": c.name, "arguments": c.arguments} for c in calls], ensure_ascii=False)


def format_tool_call_tags(calls: list[Call]) -> str:
    """Qwen / Hermes style: one `<tool_call>{json}</tool_call>` block per call."""
    return "\n".join(
        f"{TOOL_CALL_OPEN}\n{json.dumps({'name': c.name, 'arguments': c.arguments}, ensure_ascii=False)}\n{TOOL_CALL_CLOSE}"
        for c in calls
    )


def format_answer(reasoning: str | None, answer: list[Call] | str | None) -> str:
    """The assistant turn a FunReason model is trained to write:
    `<think>{reasoning}</think>\\n\\n[calls]` (the think part only when there is reasoning)."""
    if isinstance(answer, list):
        result = format_python_calls(answer)
    else:
        result = answer or ""
    if reasoning is None:
        return result
    return f"{THINK_OPEN}{reasoning}{THINK_CLOSE}\n\n{result}"
