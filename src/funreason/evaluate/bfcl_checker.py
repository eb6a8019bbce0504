"""BFCL's AST verdicts, reimplemented to agree with the official checker (bfcl-eval's
`ast_checker` after its default prompting decode) entry by entry, all 13 single-turn categories.

Quirks kept on purpose, because the leaderboard has them:
- decoding keeps only keyword arguments (positional ones vanish), turns bare names into strings,
  a call without keywords into its source text, a call with keywords into a nested call dict, any
  unary operator on a constant into its negation, and a subscript into its source text;
- arithmetic (`BinOp`) is computed, which the official code does with `eval`; here only on
  literal numbers, strings and lists, with size limits, never by `eval` (an expression it would
  evaluate on names fails to decode both ways: NameError there, not a literal here);
- strings compare after removing spaces and `,./-_*^`, lowercasing and `'`→`"`;
- an int is accepted for a float parameter; tuples compare as lists;
- a value whose type matches the possible answers' type rather than the schema's is a
  "variable" and compared as is; dicts and lists of dicts are matched key by key;
- "" among the possible values marks an optional parameter;
- parallel categories match calls in any order, greedily; multiple categories check the first call.
Java and JavaScript (simple_java, simple_javascript) decode with tree-sitter and convert values by
type as bfcl-eval does: see `bfcl_langs`.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from funreason.calls import split_think
from funreason.schema import Example
from funreason.evaluate.bfcl_langs import (JAVA_TYPES, JS_TYPES, NESTED_CONVERSION, LanguageDecodeError, decode_java,
                                           decode_js, java_convert, js_convert)

PYTHON_TYPES = {"string": str, "integer": int, "float": float, "boolean": bool, "array": list, "tuple": list, "dict": dict, "any": str}
NESTED = ("array", "tuple")
SUPPORTED = {"simple_python", "simple_java", "simple_javascript", "multiple", "parallel", "parallel_multiple",
             "irrelevance", "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple",
             "live_irrelevance", "live_relevance"}


def language_of(category: str) -> str:
    return {"simple_java": "java", "simple_javascript": "javascript"}.get(category, "python")


class DecodeError(ValueError):
    pass


# --- decoding -----------------------------------------------------------------------------------


def decode_prompting(raw: str, language: str = "python") -> Any:
    """The official default prompting decode of a model output, reasoning removed."""
    _, text = split_think(raw) if isinstance(raw, str) else (None, raw)
    return decode_text(text, language)


def decode_text(text: Any, language: str = "python") -> Any:
    """bfcl-eval's `default_decode_ast_prompting` of `text` as it stands (reasoning kept: its
    multi-turn runner decodes each step so, and a `<think>` prefix fails to decode there)."""
    if not isinstance(text, str):
        raise DecodeError("model result is not text")
    text = text.strip("`\n ")
    if not text.startswith("["):
        text = "[" + text
    if not text.endswith("]"):
        text = text + "]"
    if language != "python":  # the official decoders get the text without its outer brackets
        try:
            return (decode_java if language == "java" else decode_js)(text[1:-1])
        except LanguageDecodeError as e:
            raise DecodeError(str(e)) from None
    cleaned = text.strip().strip("'")
    try:
        tree = ast.parse(cleaned, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        raise DecodeError(f"not Python: {e}") from None
    body = tree.body
    try:
        if isinstance(body, ast.Call):
            return [_call(body)]
        if not hasattr(body, "elts"):
            raise DecodeError(f"{type(body).__name__} is not a call list")
        out = []
        for elem in body.elts:
            if not isinstance(elem, ast.Call):
                raise DecodeError("an element is not a call")
            out.append(_call(elem))
        return out
    except RecursionError:
        raise DecodeError("nested too deeply") from None


def _call(node: ast.Call) -> dict[str, dict[str, Any]]:
    parts = []
    f = node.func
    while isinstance(f, ast.Attribute):
        parts.append(f.attr)
        f = f.value
    if isinstance(f, ast.Name):
        parts.append(f.id)
    args: dict[Any, Any] = {}
    for kw in node.keywords:
        args[kw.arg] = _value(kw.value)
    return {".".join(reversed(parts)): args}


def _value(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        return "..." if node.value is Ellipsis else node.value
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.operand, ast.Constant):
            raise DecodeError("unary operator on a non-constant")
        try:
            return -node.operand.value
        except TypeError as e:
            raise DecodeError(str(e)) from None
    if isinstance(node, ast.List):
        return [_value(v) for v in node.elts]
    if isinstance(node, ast.Dict):
        out = {}
        for k, v in zip(node.keys, node.values):
            if k is None:
                raise DecodeError("** in a dict")
            key = _value(k)
            try:
                out[key] = _value(v)
            except TypeError:
                raise DecodeError("unhashable dict key") from None
        return out
    if isinstance(node, ast.BinOp):
        return _arith(node, 0)
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call):
        return ast.unparse(node) if not node.keywords else _call(node)
    if isinstance(node, ast.Tuple):
        return tuple(_value(v) for v in node.elts)
    if isinstance(node, ast.Subscript):
        return ast.unparse(node.value) + "[" + ast.unparse(node.slice) + "]"
    raise DecodeError(f"unsupported value {type(node).__name__}")


_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b,
        ast.Pow: lambda a, b: a ** b, ast.BitAnd: lambda a, b: a & b, ast.BitOr: lambda a, b: a | b,
        ast.BitXor: lambda a, b: a ^ b, ast.LShift: lambda a, b: a << b, ast.RShift: lambda a, b: a >> b,
        ast.MatMult: lambda a, b: a @ b}


def _arith(node: ast.AST, depth: int) -> Any:
    """Literal arithmetic, as Python would compute it, without eval and with size limits."""
    if depth > 50:
        raise DecodeError("expression too deep")
    if isinstance(node, ast.BinOp):
        op = _OPS.get(type(node.op))
        if op is None:
            raise DecodeError(f"operator {type(node.op).__name__} not computed")
        a, b = _arith(node.left, depth + 1), _arith(node.right, depth + 1)
        if isinstance(node.op, (ast.Pow, ast.LShift)) and isinstance(b, (int, float)) and abs(b) > 1000:
            raise DecodeError("exponent too large")
        if isinstance(node.op, ast.Mult) and (isinstance(a, (str, list)) or isinstance(b, (str, list))):
            n = b if isinstance(a, (str, list)) else a
            if isinstance(n, int) and n * len(a if isinstance(a, (str, list)) else b) > 1_000_000:
                raise DecodeError("result too large")
        try:
            return op(a, b)
        except Exception as e:  # ZeroDivisionError, TypeError...: decoding fails, as eval's would
            raise DecodeError(f"{type(e).__name__}: {e}") from None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _arith(node.operand, depth + 1)
        try:
            return -v if isinstance(node.op, ast.USub) else +v
        except TypeError as e:
            raise DecodeError(str(e)) from None
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, complex, str, bytes)):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        vals = [_arith(e, depth + 1) for e in node.elts]
        return vals if isinstance(node, ast.List) else tuple(vals)
    raise DecodeError(f"{type(node).__name__} in an arithmetic expression")


def is_call_format(decoded: Any) -> bool:
    return isinstance(decoded, list) and all(
        type(item) is dict and len(item) == 1 and type(next(iter(item.values()))) is dict for item in decoded
    )


def is_empty(decoded: Any) -> bool:
    return not is_call_format(decoded) or len(decoded) == 0 or (len(decoded) == 1 and len(decoded[0]) == 0)


# --- checking -----------------------------------------------------------------------------------


def _bad(error_type: str, message: str) -> dict[str, Any]:
    return {"valid": False, "error": [message], "error_type": error_type}


def _ok() -> dict[str, Any]:
    """A fresh passing verdict (a shared dict could be changed by one caller under the others)."""
    return {"valid": True, "error": []}


def score_entry(category: str, raw: str, functions: list[dict], ground_truth: list | None) -> dict[str, Any]:
    """The verdict for one entry: {"valid", "error_type", "error"}."""
    if category not in SUPPORTED:
        raise ValueError(f"unknown single-turn category {category!r}")
    if "relevance" in category:  # irrelevance, live_irrelevance, live_relevance
        try:
            decoded = decode_prompting(raw)
            contains = not is_empty(decoded)
            error = None
        except DecodeError as e:
            contains, error = False, str(e)
        if "irrelevance" in category:
            return _ok() if not contains else _bad("irrelevance_error:decoder_success", "Valid syntax. Successfully decode AST when it should not.")
        return _ok() if contains else _bad("relevance_error:decoder_failed", f"Invalid syntax. Failed to decode AST when it should have. {error}")
    language = language_of(category)
    try:
        decoded = decode_prompting(raw, language)
    except DecodeError as e:
        return _bad("ast_decoder:decoder_failed", f"Invalid syntax. Failed to decode AST. {e}")
    if not is_call_format(decoded):
        return _bad("ast_decoder:decoder_wrong_output_format", "Did not output in the specified format.")
    return check(functions, decoded, ground_truth or [], category, language)


def check(functions: list[dict], output: list[dict], truth: list[dict], category: str,
          language: str = "python") -> dict[str, Any]:
    if "parallel" in category:
        return _parallel(functions, output, truth)
    if "multiple" in category:
        if len(output) != len(truth):
            return _bad("multiple_function_checker:wrong_count", "Wrong number of functions.")
        return _simple(_find(functions, next(iter(truth[0]))), output[0], truth[0])
    if len(output) != 1:
        return _bad("simple_function_checker:wrong_count", "Wrong number of functions.")
    return _simple(functions[0], output[0], truth[0], language)


def _find(functions: list[dict] | dict, name: str) -> dict | None:
    if isinstance(functions, list):
        return next((f for f in functions if f["name"] == name), None)
    return functions


def _parallel(functions, output, truth) -> dict[str, Any]:
    if len(output) != len(truth):
        return _bad("parallel_function_checker_no_order:wrong_count", "Wrong number of functions.")
    matched: list[int] = []
    for i, expected in enumerate(truth):
        desc = _find(functions, next(iter(expected)))
        result = _ok()
        for j, item in enumerate(output):
            if j in matched:
                continue
            result = _simple(desc, item, expected)
            if result["valid"]:
                matched.append(j)
                break
        if not result["valid"]:
            return _bad("parallel_function_checker_no_order:cannot_find_match",
                        f"Could not find a matching function for index {i} of possible answers.")
    return _ok()


def _simple(desc: dict, output: dict, truth: dict, language: str = "python") -> dict[str, Any]:
    answers = next(iter(truth.values()))
    name = desc["name"]
    props = desc["parameters"]["properties"]
    required = desc["parameters"]["required"]
    if name not in output:
        return _bad("simple_function_checker:wrong_func_name", f"Function name {name!r} not found in model output.")
    params = output[name]
    for p in required:
        if p not in params:
            return _bad("simple_function_checker:missing_required", f"Missing required parameter: {p!r}.")
    for p, value in params.items():
        if p not in props or p not in answers:
            return _bad("simple_function_checker:unexpected_param", f"Unexpected parameter: {p!r}.")
        type_name = props[p]["type"]
        if language == "python":
            expected = PYTHON_TYPES[type_name]
            nested = PYTHON_TYPES[props[p]["items"]["type"]] if type_name in NESTED else None
            if type_name == "float" and type(value) is int:
                value = float(value)
        else:  # Java / JavaScript: the value is source text, converted by the declared type
            types, convert = (JAVA_TYPES, java_convert) if language == "java" else (JS_TYPES, js_convert)
            expected, nested = types[type_name], None
            if type(value) is not str:
                return _bad(f"type_error:{'java' if language == 'java' else 'js'}",
                            f"Incorrect type for parameter {p!r}. Expected type String, got {type(value).__name__}.")
            if type_name in NESTED_CONVERSION:
                nested_name = props[p]["items"]["type"]
                nested = types[nested_name]
                value = convert(value, type_name, nested_name)
            else:
                value = convert(value, type_name)
        if type_name == "tuple" and type(value) is tuple:
            value = list(value)
        typed = _type_check(p, value, answers[p], type_name, expected, nested)
        if not typed["valid"]:
            return typed
        if not typed["is_variable"]:
            if expected is dict:
                r = _dict_check(p, value, answers[p])
            elif expected is list and nested is dict:
                r = _list_dict_check(p, value, answers[p])
            elif expected is str:
                r = _string_check(p, value, answers[p])
            elif expected is list:
                r = _list_check(p, value, answers[p])
            else:
                r = None
            if r is not None:
                if not r["valid"]:
                    return r
                continue
        if value not in answers[p]:
            return _bad("value_error:others", f"Invalid value for parameter {p!r}: {value!r}. Expected one of {answers[p]}.")
    for p, options in answers.items():
        if p not in params and "" not in options:
            return _bad("simple_function_checker:missing_optional", f"Optional parameter {p!r} not provided and not marked as optional.")
    return _ok()


def _answer_type(options: list) -> type | None:
    for o in options:
        if o != "":
            return type(o)
    return None


def _type_check(p, value, options, type_name, expected, nested) -> dict[str, Any]:
    answer_type = _answer_type(options)
    is_variable = answer_type is not None and answer_type != expected
    if type(value) == expected:
        if nested is None:
            return {"valid": True, "is_variable": is_variable, "error": []}
        for option in options:
            ok = True
            if type(option) == list:
                for item in value:
                    if not _type_check(p, item, option, str(nested), nested, None)["valid"]:
                        ok = False
                        break
            if ok:
                return {"valid": True, "is_variable": is_variable, "error": []}
        failure = {"valid": False, "is_variable": False, "error_type": "type_error:nested",
                   "error": [f"Nested type checking failed for parameter {p!r}."]}
    else:
        failure = None
    if answer_type is not None and type(value) == answer_type:
        # a "variable"; after a failed nested check the official code returns that failure here
        return {**failure, "is_variable": True} if failure else {"valid": True, "is_variable": True, "error": []}
    return {"valid": False, "is_variable": False, "error_type": "type_error:simple",
            "error": [f"Incorrect type for parameter {p!r}. Expected type {type_name}, got {type(value).__name__}. Parameter value: {value!r}."]}


_STANDARDIZE = re.compile(r"[ \,\.\/\-\_\*\^]")


def standardize(s: str) -> str:
    return _STANDARDIZE.sub("", s).lower().replace("'", '"')


def _string_check(p, value, options) -> dict[str, Any]:
    if standardize(value) not in [standardize(o) for o in options if type(o) == str]:
        return _bad("value_error:string", f"Invalid value for parameter {p!r}: {value!r}. Expected one of {options}. Case insensitive.")
    return _ok()


def _list_check(p, value, options) -> dict[str, Any]:
    std = [standardize(v) if type(v) == str else v for v in value]
    std_options = [[standardize(x) if type(x) == str else x for x in o] for o in options]
    if std not in std_options:
        return _bad("value_error:list/tuple", f"Invalid value for parameter {p!r}: {value!r}. Expected one of {options}.")
    return _ok()


def _dict_check(p, value, options) -> dict[str, Any]:
    result = _bad("dict_checker:unclear", "")
    result["error"] = []
    for option in options:
        if option == "":
            continue
        result = {"valid": False, "error": [], "error_type": "dict_checker:unclear"}
        ok = True
        for key, v in value.items():
            if key not in option:
                result = _bad("value_error:dict_key", f"Unexpected dict key parameter: {key!r}.")
                ok = False
                break
            std_v = standardize(v) if type(v) == str else v
            std_options = [standardize(x) if type(x) == str else x for x in option[key]]
            if std_v not in std_options:
                result = _bad("value_error:dict_value", f"Invalid value for parameter {key!r}: {v!r}.")
                ok = False
                break
        for key, vals in option.items():
            if key not in value and "" not in vals:
                result = _bad("value_error:dict_key", f"Missing dict key parameter: {key!r}.")
                ok = False
                break
        if ok:
            return _ok()
    return result


def _list_dict_check(p, value, options) -> dict[str, Any]:
    result = _bad("list_dict_checker:unclear", "")
    result["error"] = []
    for option in options:
        ok = True
        if len(value) != len(option):
            result = _bad("value_error:list_dict_count", "Wrong number of dictionaries in the list.")
            continue
        for i in range(len(value)):
            result = _dict_check(p, value[i], [option[i]])
            if not result["valid"]:
                ok = False
                break
        if ok:
            return _ok()
    return result


def score_category(category: str, examples: list[Example], results: dict[str, str]) -> dict[str, Any]:
    """Every answered entry of `examples` judged: the category's accuracy and each entry's verdict (unanswered ones are not counted)."""
    entries = []
    for ex in examples:
        if ex.id not in results:
            continue
        v = score_entry(category, results[ex.id], [t.to_dict() for t in ex.tools], ex.possible_answer)
        entries.append({"id": ex.id, "valid": v["valid"], "error_type": v.get("error_type")})
    correct = sum(e["valid"] for e in entries)
    return {"total": len(entries), "correct": correct, "accuracy": correct / len(entries) if entries else 0.0, "entries": entries}
