"""The official bfcl-eval multi-turn checker, run as its own process (it `eval`s model text, so it
never runs inside FunReason's): verdicts for JSONL on stdin, or a whole result folder scored.

    python official_multi_turn.py < entries.jsonl    # {"category", "id", "result", "model"} → {"valid", "error_type"} per line
    python official_multi_turn.py --result-dir D --score-dir S --model NAME --categories multi_turn_base,...

Both go through bfcl-eval's own runner code: `eval_runner._evaluate_single_multi_turn_entry` (the
decoding loop, turn count check, `multi_turn_checker`) per entry, and `eval_runner.evaluate_task`
for a folder (what `bfcl evaluate` runs per category file, score files included). The decoder is
the one BFCL's prompting handlers use (`default_decode_execute_prompting`). bfcl-eval is installed
without its dependencies (make install), so modules the multi-turn path imports but never uses are
replaced by empty stand-ins: the Java / JavaScript tree-sitter parsers (Python-only here), the model
registry (every API client), tenacity's retry decorator (API calls), `overrides.final`, dotenv.
"""

import argparse
import json
import sys
import time
import types
from pathlib import Path


def _stub(name, **attrs):
    if name in sys.modules:
        return
    try:  # a real module where it imports (a complete bfcl-eval environment)
        __import__(name)
        return
    except Exception:
        pass
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m


_identity_decorator = lambda *a, **k: (lambda f: f)  # noqa: E731
_stub("bfcl_eval.model_handler.parser.java_parser", parse_java_function_call=None)
_stub("bfcl_eval.model_handler.parser.js_parser", parse_javascript_function_call=None)
sys.modules.setdefault("bfcl_eval.constants.model_config", types.ModuleType("bfcl_eval.constants.model_config"))
sys.modules["bfcl_eval.constants.model_config"].__dict__.setdefault("MODEL_CONFIG_MAPPING", {})
_stub("tenacity", retry=_identity_decorator, retry_if_exception_message=_identity_decorator,
      retry_if_exception_type=_identity_decorator, wait_random_exponential=_identity_decorator)
_stub("overrides", final=lambda f: f)
_stub("dotenv", load_dotenv=lambda *a, **k: None)

from bfcl_eval.eval_checker import eval_runner  # noqa: E402
from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_utils  # noqa: E402
from bfcl_eval.model_handler.utils import default_decode_execute_prompting  # noqa: E402
from bfcl_eval.utils import load_dataset_entry, load_file, load_ground_truth_entry  # noqa: E402


class PromptingHandler:
    """What `bfcl evaluate` asks of a prompting model's handler here: its execute decoder."""

    def decode_execute(self, result, has_tool_call_tag):
        return default_decode_execute_prompting(result, has_tool_call_tag)


def _forget_instances():
    """The checker keeps each entry's instances in its module globals, keyed by model and entry;
    verdicts of different outputs for one entry must not share them (nor keep them in memory)."""
    g = vars(multi_turn_utils)
    for k in [k for k in g if k.endswith("_instance")]:
        del g[k]


def verdicts(lines):
    prompts, answers = {}, {}
    for line in lines:
        if not line.strip():
            continue
        e = json.loads(line)
        c = e["category"]
        if c not in prompts:
            prompts[c] = {x["id"]: x for x in load_dataset_entry(c, include_prereq=False, include_language_specific_hint=False)}
            answers[c] = {x["id"]: x["ground_truth"] for x in load_ground_truth_entry(c)}
        r = eval_runner._evaluate_single_multi_turn_entry(PromptingHandler(), e["id"], e["result"], answers[c][e["id"]],
                                                          dict(prompts[c][e["id"]]), e.get("model", "funreason"), c)
        _forget_instances()
        yield {"valid": r["valid"], "error_type": None if r["valid"] else r["error"]["error_type"]}


def score_folder(result_dir: Path, score_dir: Path, model: str, categories: list[str]) -> dict:
    table = {}
    for c in categories:
        path = result_dir / model / "multi_turn" / f"BFCL_v4_{c}_result.json"
        table = eval_runner.evaluate_task(c, result_dir, score_dir, load_file(path, sort_by_id=True), model, PromptingHandler(), table,
                                          allow_missing=True)  # `bfcl evaluate --partial-eval`: a subset may be scored
    return {c: table[model][c] for c in categories}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--result-dir", type=Path)
    ap.add_argument("--score-dir", type=Path)
    ap.add_argument("--model", default="funreason")
    ap.add_argument("--categories", default="")
    a = ap.parse_args()
    if a.result_dir:
        print(json.dumps(score_folder(a.result_dir, a.score_dir, a.model, a.categories.split(",")), default=str))
    else:
        t0 = time.perf_counter()
        for v in verdicts(sys.stdin):
            print(json.dumps(v))
        print(json.dumps({"seconds": time.perf_counter() - t0}))
