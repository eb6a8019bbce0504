"""Runs INSIDE the reference environment (bench/agreement/bfcl_reference/make_env.sh): official bfcl-eval
verdicts for JSONL entries {category, result, function, ground_truth} on stdin → JSONL on stdout.

The glue mirrors bfcl-eval's eval_runner (`_evaluate_single_relevance_entry`,
`_evaluate_single_ast_entry`); the decoding and checking are the official functions. Only
`constants.model_config` is replaced: it imports every API client, and the checker reads one flag
from it (underscore_to_dot), which is False for prompting models.
"""

import json
import sys
import time
import types

stub = types.ModuleType("bfcl_eval.constants.model_config")


class _Config:
    underscore_to_dot = False


class _Mapping(dict):
    def __missing__(self, key):
        return _Config()


stub.MODEL_CONFIG_MAPPING = _Mapping()
sys.modules["bfcl_eval.constants.model_config"] = stub

from bfcl_eval.constants.enums import Language, ReturnFormat  # noqa: E402
from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker  # noqa: E402
from bfcl_eval.model_handler.utils import default_decode_ast_prompting  # noqa: E402
from bfcl_eval.utils import is_empty_output, is_function_calling_format_output  # noqa: E402


def verdict(e):
    category, raw = e["category"], e["result"]
    if "relevance" in category:
        try:
            decoded = default_decode_ast_prompting(raw, ReturnFormat.PYTHON, False)
            contains = not is_empty_output(decoded)
        except Exception:
            contains = False
        ok = (not contains) if "irrelevance" in category else contains
        return {"valid": ok, "error_type": None if ok else ("irrelevance_error:decoder_success" if "irrelevance" in category else "relevance_error:decoder_failed")}
    language, fmt = {"simple_java": (Language.JAVA, ReturnFormat.JAVA),
                     "simple_javascript": (Language.JAVASCRIPT, ReturnFormat.JAVASCRIPT)}.get(
        category, (Language.PYTHON, ReturnFormat.PYTHON))
    try:
        decoded = default_decode_ast_prompting(raw, fmt, False)
    except Exception:
        return {"valid": False, "error_type": "ast_decoder:decoder_failed"}
    if not is_function_calling_format_output(decoded):
        return {"valid": False, "error_type": "ast_decoder:decoder_wrong_output_format"}
    r = ast_checker(e["function"], decoded, e["ground_truth"], language, category, "funreason")
    return {"valid": r["valid"], "error_type": r.get("error_type") if not r["valid"] else None}


entries = [json.loads(line) for line in sys.stdin if line.strip()]
t0 = time.perf_counter()
out = [verdict(e) for e in entries]
seconds = time.perf_counter() - t0
for v in out:
    print(json.dumps(v))
print(json.dumps({"seconds": seconds}))
