"""BFCL's multi-turn verdicts (multi_turn_base / miss_func / miss_param / long_context), equal to
bfcl-eval's `multi_turn_checker` after its runner's prompting decode, without running model text.

Invariant: nothing a model wrote is ever run as code. BFCL renders each decoded call back into a
source string and `eval`s it; here a decoded call is a `Call` with literal arguments, and it runs
only as a public method of one of the entry's environment instances (the classes come from the
installed bfcl-eval package, not copies). Any other name (a builtin, an unknown function, an
attribute chain, a dunder) and any call whose arguments are not literals gives the error result
BFCL gives an unknown function (`Error during execution: name 'x' is not defined`) and does
nothing else.

BFCL's rules, kept because the leaderboard has them:
- a step is decoded as the default prompting decode does (`bfcl_checker.decode_text`: the text
  as it stands, `<think>` included, positional arguments dropped, bare names as strings); a step
  that does not decode, or decodes to no call, is skipped;
- decoded values reach the method as BFCL's `repr` round trip gives them: a dict whose values are
  all dicts is a nested call (refused here; BFCL would run it), an empty one fails the decode,
  other dict keys become strings, `inf`/`nan` do not survive, and in every string a method name
  followed by `(` gets its instance's name prefixed (BFCL's text substitution reaches inside
  string literals);
- a result file whose turn count differs from the ground truth's fails as force-terminated; a turn
  with ground-truth calls and no decoded step fails as empty; after each turn with ground-truth
  calls, every environment's public attributes must equal the ground truth's, and the ground
  truth's results of that turn must all be among the model's results of every turn so far;
- a turn whose ground truth is empty is not judged (the calls made there still run, so they
  change the state the next turns are checked against);
- method names `kill`, `exit`, `quit`, `remove`, `unlink`, `popen`, `Popen`, `run` are refused as
  BFCL refuses them.
Known divergence: BFCL runs nested calls, builtins and arithmetic on names through `eval`; their
results here are the unknown-function error. They change no environment, so a verdict can differ
only where such a result would equal one of the ground truth's results.
"""

from __future__ import annotations

import ast
import copy
import functools
import importlib
import inspect
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from funreason.evaluate import MULTI_TURN
from funreason.evaluate.bfcl_checker import DecodeError, decode_text
from funreason.schema import Call

CATEGORIES = MULTI_TURN
# the names BFCL's executor refuses before its eval (checked on the called name, bare or second dotted part)
BLOCKED = frozenset({"kill", "exit", "quit", "remove", "unlink", "popen", "Popen", "run"})
# BFCL's `_process_method_calls` pattern: a name followed by "(", wherever it stands in the call's text
_CALL_NAME = re.compile(r"\b([a-zA-Z_]\w*)\s*(?=\()")
# the instances' names in BFCL's eval (only ever seen inside a string an argument carried)
MODEL_SIDE, TRUTH_SIDE = "funreason_eval", "funreason_ground_truth_eval"


def bfcl_version() -> str:
    """The installed bfcl-eval release the environments and ground truth come from."""
    import importlib.metadata

    try:
        return importlib.metadata.version("bfcl-eval")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


# --- decoding -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """A decoded call that will not run: its result is `error`, and nothing else happens."""

    name: str
    error: str


class _NotSent(Exception):
    """A value BFCL's rendering would turn into code that fails or runs something: refuse the call."""


def decode_step(text: Any) -> list[Call | Refused] | None:
    """One step's calls as BFCL's runner decodes them, or None where it skips the step."""
    if not isinstance(text, str):
        return None
    try:
        decoded = decode_text(text)
    except DecodeError:
        return None
    calls: list[Call | Refused] = []
    for item in decoded:
        (name, args), = item.items()
        try:
            calls.append(_as_sent(name, args))
        except _Skip:
            return None
    return calls or None


class _Skip(Exception):
    """BFCL's decode raises on this value (an empty dict read as a nested call): the step is skipped."""


def _as_sent(name: str, args: dict) -> Call | Refused:
    try:
        if any(not isinstance(k, str) for k in args):  # `**kwargs` decodes to a None key: "None=..." does not compile
            raise _NotSent("invalid syntax")
        return Call(name, {k: _sent(v, True) for k, v in args.items()})
    except _NotSent:
        return Refused(name, _unknown(name))


def _sent(v: Any, nested_context: bool) -> Any:
    """`v` after BFCL's `parse_nested_value` + `repr` + `eval`, refusing what would not be a literal."""
    if isinstance(v, dict) and nested_context:
        if all(isinstance(x, dict) for x in v.values()):
            if not v:
                raise _Skip()
            raise _NotSent("nested call")
        out = {}
        for k, x in v.items():  # keys are written as '{k}' without repr: their text must read back as a string
            try:
                key = ast.literal_eval(f"'{k}'")
            except (SyntaxError, ValueError):
                raise _NotSent("key") from None
            out[key] = _sent(x, True)
        return out
    if isinstance(v, float) and not math.isfinite(v):
        raise _NotSent("inf or nan")  # repr gives `inf` / `nan`: names that are not defined
    if isinstance(v, (list, tuple)):
        items = [_sent(x, False) for x in v]
        return items if isinstance(v, list) else tuple(items)
    if isinstance(v, dict):
        return {_sent(k, False): _sent(x, False) for k, x in v.items()}
    return v


def _unknown(name: str) -> str:
    """BFCL's result for a call it cannot place: its eval's NameError on the first name, or its refusal."""
    head, _, rest = name.partition(".")
    called = rest.split(".")[0] if rest else head
    if called in BLOCKED:
        return f"Error during execution: Function call {called} is not allowed."
    return f"Error during execution: name '{head}' is not defined"


@functools.lru_cache(maxsize=65536)
def parse_ground_truth(text: str) -> tuple[Call, tuple]:
    """A ground-truth call (`"cd(folder='x')"`) and its positional arguments: literals only, never eval."""
    try:
        node = ast.parse(text, mode="eval").body
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or any(k.arg is None for k in node.keywords):
            raise ValueError("not a plain call")
        args = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
        positional = [ast.literal_eval(a) for a in node.args]
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError) as e:
        raise ValueError(f"ground-truth call {text[:80]!r} is not a call with literal arguments ({e})") from None
    return Call(node.func.id, args), tuple(positional)


# --- environments -------------------------------------------------------------------------------


@functools.cache
def environment_class(name: str) -> type:
    """One of bfcl-eval's environment classes (GorillaFileSystem, MathAPI, ...), by name."""
    from bfcl_eval.constants.executable_backend_config import CLASS_FILE_PATH_MAPPING

    return getattr(importlib.import_module(CLASS_FILE_PATH_MAPPING[name]), name)


@functools.cache
def _stateless() -> frozenset[str]:
    from bfcl_eval.constants.executable_backend_config import STATELESS_CLASSES

    return frozenset(STATELESS_CLASSES)


_PUBLIC: dict[type, tuple[str, ...]] = {}


def public_methods(instance: object) -> tuple[str, ...]:
    """The names BFCL maps to an instance: its bound methods not starting with `_` (cached per class)."""
    cls = type(instance)
    if cls not in _PUBLIC:
        _PUBLIC[cls] = tuple(n for n, _ in inspect.getmembers(instance, predicate=inspect.ismethod) if not n.startswith("_"))
    return _PUBLIC[cls]


def _copy(v: Any) -> Any:
    """A deep copy of JSON data (what an initial configuration is): `copy.deepcopy`'s result, several times faster."""
    if type(v) is dict:
        return {k: _copy(x) for k, x in v.items()}
    if type(v) is list:
        return [_copy(x) for x in v]
    return v if type(v) in (str, int, float, bool) or v is None else copy.deepcopy(v)


class Environments:
    """The environment instances of one entry on one side (model or ground truth), loaded with
    the entry's initial configuration; `run` is the only way a call reaches them."""

    def __init__(self, entry: dict, side: str, long_context: bool):
        self.instances: dict[str, object] = {}
        self._owner: dict[str, tuple[object, str]] = {}  # method name → (instance, its name in BFCL's eval)
        config = entry.get("initial_config") or {}
        for class_name in entry["involved_classes"]:
            instance = environment_class(class_name)()
            if class_name not in _stateless():
                # bfcl-eval's own loading entry point (the one its checker calls), on a private copy
                instance._load_scenario(_copy(config.get(class_name, {})), long_context=long_context)
            self.instances[class_name] = instance
            label = re.sub(r"[-./:]", "_", f"{side}_{entry['id']}_{class_name}_instance")
            for method in public_methods(instance):  # a later class takes a shared name, as in BFCL's mapping
                self._owner[method] = (instance, label)

    def run(self, call: Call | Refused, positional: tuple = ()) -> str:
        """The result text BFCL records for `call`, after running it if it names a public method
        (`positional`: the ground truth's positional arguments; a model's are dropped at decoding)."""
        if isinstance(call, Refused):
            return call.error
        owner = self._owner.get(call.name)
        if owner is None or call.name in BLOCKED:
            return _unknown(call.name)
        keywords = {k: self._mangle(v) for k, v in call.arguments.items()}
        try:
            result = getattr(owner[0], call.name)(*map(self._mangle, positional), **keywords)
        except Exception as e:  # as BFCL records a failing call: its message, and the turn goes on
            return f"Error during execution: {e}"
        if type(result) is str:
            return result
        if type(result) is dict:
            try:
                return json.dumps(result)
            except (TypeError, ValueError):
                return str(result)
        return str(result)

    def _mangle(self, v: Any) -> Any:
        """BFCL's text substitution inside string values: `ls(` → `<instance>.ls(`."""
        if isinstance(v, str):
            if "(" not in v:
                return v
            text = repr(v)
            new = _CALL_NAME.sub(lambda m: f"{self._owner[m.group(1)][1]}.{m.group(1)}" if m.group(1) in self._owner else m.group(1), text)
            return v if new == text else ast.literal_eval(new)
        if isinstance(v, list):
            return [self._mangle(x) for x in v]
        if isinstance(v, tuple):
            return tuple(self._mangle(x) for x in v)
        if isinstance(v, dict):
            return {self._mangle(k): self._mangle(x) for k, x in v.items()}
        return v


# --- checking -----------------------------------------------------------------------------------


@dataclass
class Verdict:
    """One entry's verdict: `kind` is BFCL's error type (None when valid), `sentence` its message."""

    id: str
    valid: bool
    kind: str | None = None
    sentence: str = ""
    turn: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {"id": self.id, "valid": self.valid, "error_type": self.kind, "error": self.sentence}
        if self.turn is not None:
            d["turn"] = self.turn
        if self.details:
            d["details"] = self.details
        return d


def _public_state(instance: object) -> dict[str, Any]:
    return {k: v for k, v in vars(instance).items() if not k.startswith("_")}


def _missing(expected: list[str], got: list[str]) -> list[str]:
    """The items of `expected` not in `got`, each taken at most as often as `got` has it."""
    left = list(got)
    out = []
    for item in expected:
        try:
            left.remove(item)
        except ValueError:
            out.append(item)
    return out


def score_entry(entry: dict, ground_truth: list[list[str]], result: Any) -> Verdict:
    """The verdict BFCL's multi-turn runner gives `result` (a list of turns, each a list of step
    texts) on `entry` (its question row: id, involved_classes, initial_config)."""
    eid = entry["id"]
    if type(result) is not list:
        return Verdict(eid, False, "multi_turn:inference_error",
                       "Error during inference phase. Model did not output a list of model responses.")
    if len(result) != len(ground_truth):
        return Verdict(eid, False, "multi_turn:force_terminated",
                       f"Model was force-terminated during inference phase. The length of the model result turns ({len(result)}) "
                       f"does not match the length of the ground truth turns ({len(ground_truth)}).")
    turns = []
    for turn in result:
        if not isinstance(turn, (list, tuple, str, dict)):
            return Verdict(eid, False, "multi_turn:inference_error", f"A turn is a {type(turn).__name__}, not a list of step outputs.")
        turns.append([calls for step in turn if (calls := decode_step(step)) is not None])
    long_context = "long_context" in eid.rsplit("_", 1)[0] or "composite" in eid.rsplit("_", 1)[0]
    model = Environments(entry, MODEL_SIDE, long_context)
    truth = Environments(entry, TRUTH_SIDE, long_context)
    model_results: list[str] = []
    for i, (steps, expected_calls) in enumerate(zip(turns, ground_truth)):
        for calls in steps:
            model_results.extend(model.run(c) for c in calls)
        expected = [truth.run(*parse_ground_truth(c)) for c in expected_calls]
        if not expected_calls:
            continue  # a turn where nothing fits is not judged; what the model ran there stays in the state
        if not steps:
            return Verdict(eid, False, "multi_turn:empty_turn_model_response", f"Model response list is empty for turn {i}", i)
        for class_name, gt_instance in truth.instances.items():
            mine, theirs = _public_state(model.instances[class_name]), _public_state(gt_instance)
            differences = [k for k, v in theirs.items() if mine.get(k, _ABSENT) != v]
            if differences:
                return Verdict(eid, False, "multi_turn:instance_state_mismatch",
                               f"Model instance for {class_name} does not match the state with ground truth instance.", i,
                               {"differences": sorted(differences)})
        missing = _missing(expected, model_results)
        if missing:
            return Verdict(eid, False, "multi_turn:execution_response_mismatch",
                           f"Model response execution results so far does not contain all the ground truth response execution results for turn {i}.",
                           i, {"missing_items": missing})
    return Verdict(eid, True)


_ABSENT = object()


# --- files --------------------------------------------------------------------------------------


def load_category(category: str, data_dir: str | Path | None = None) -> tuple[dict[str, dict], dict[str, list]]:
    """(questions by id, ground truth by id) of a multi-turn category from bfcl-eval's data."""
    from funreason.formats import bfcl

    if category not in CATEGORIES:
        raise ValueError(f"{category!r} is not a multi-turn category ({', '.join(CATEGORIES)})")
    qpath = bfcl.question_file(category, data_dir)
    apath = bfcl.answer_file(qpath)
    if apath is None:
        raise FileNotFoundError(f"no ground truth beside {qpath}")
    questions = {row["id"]: row for row in _json_lines(qpath)}
    answers = {row["id"]: row["ground_truth"] for row in _json_lines(apath)}
    return questions, answers


def _json_lines(path: Path) -> Iterable[dict]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def score_file(category: str, results: Path, data_dir: str | Path | None = None) -> dict[str, Any]:
    """`funreason eval score` on a multi-turn result file (any subset of the category, one
    `{"id", "result": [[step, ...], ...]}` per line): per-entry verdicts and the accuracy.
    ValueError naming the line of a bad, unknown or repeated entry."""
    from funreason.formats.bfcl import result_rows

    questions, answers = load_category(category, data_dir)
    verdicts = [score_entry(questions[id_], answers[id_], result).to_dict()
                for id_, result in result_rows(results, questions, category, max_line_bytes=64 << 20)]
    if not verdicts:
        raise ValueError(f"{results}: no results to score")
    correct = sum(v["valid"] for v in verdicts)
    return {"category": category, "total": len(verdicts), "correct": correct, "category_entries": len(questions),
            "accuracy": correct / len(verdicts), "bfcl_eval": bfcl_version(), "entries": verdicts}
