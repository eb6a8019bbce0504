"""Multi-turn BFCL scoring: verdicts equal to bfcl-eval's own checker's, and model text never run.

The official verdicts come from bfcl-eval's multi-turn runner and checker, imported from the
installed package in a separate process (bench/agreement/bfcl_reference/official_multi_turn.py);
the mutated results are those of bench/agreement/multi_turn_agreement.py, on a sample of entries
(the bench script runs all 800)."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from funreason.evaluate.multi_turn import CATEGORIES, Environments, decode_step, load_category, score_entry

_BENCH = Path(__file__).resolve().parents[1] / "bench" / "agreement" / "multi_turn_agreement.py"
_spec = importlib.util.spec_from_file_location("funreason_bench_multi_turn_agreement", _BENCH)
agreement = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(agreement)


def _sample(per_category: int, seed: int) -> list[dict]:
    """Mutated results of `per_category` entries of each category, spread over the category."""
    r = random.Random(seed)
    rows = []
    for c in CATEGORIES:
        questions, answers = load_category(c)
        for eid in r.sample(sorted(questions), per_category):
            rows += [{"category": c, "id": eid, "mutation": label, "result": result}
                     for label, result in agreement.mutations(questions[eid], answers[eid], r)]
    return rows


def test_verdicts_equal_the_official_checker_on_mutated_results():
    rows = _sample(per_category=4, seed=52)
    res = agreement.compare(rows)
    assert res["disagreements"] == [], res["disagreements"][:5]
    assert res["equal"] == res["outputs"] == len(rows) > 300
    # every verdict kind is exercised, valid and not, so equality is not the trivial kind
    ours = Counter(score_entry(*_entry(x), x["result"]).kind for x in rows)
    assert {None, "multi_turn:force_terminated", "multi_turn:empty_turn_model_response", "multi_turn:instance_state_mismatch",
            "multi_turn:execution_response_mismatch", "multi_turn:inference_error"} <= set(ours)


def _entry(row):
    questions, answers = load_category(row["category"])
    return questions[row["id"]], answers[row["id"]]


def test_eval_score_cli_gives_per_entry_verdicts(tmp_path):
    questions, answers = load_category("multi_turn_base")
    ids = sorted(questions)[:3]
    muts = [dict(agreement.mutations(questions[i], answers[i], random.Random(0))) for i in ids]
    res = tmp_path / "BFCL_v4_multi_turn_base_result.json"
    res.write_text(json.dumps({"id": ids[0], "result": muts[0]["ground_truth"]}) + "\n"
                   + json.dumps({"id": ids[1], "result": muts[1]["empty_turn"]}) + "\n"
                   + json.dumps({"id": ids[2], "result": muts[2]["last_turn_dropped"]}) + "\n")
    proc = subprocess.run([sys.executable, "-m", "funreason.cli", "eval", "score", "--category", "multi_turn_base", "--results", str(res), "--json"],
                          capture_output=True, text=True, check=True)
    report = json.loads(proc.stdout)
    assert (report["total"], report["correct"], report["category_entries"]) == (3, 1, 200)
    kinds = [(v["id"], v["valid"], v["error_type"]) for v in report["entries"]]
    assert kinds == [(ids[0], True, None), (ids[1], False, "multi_turn:empty_turn_model_response"),
                     (ids[2], False, "multi_turn:force_terminated")]
    assert report["entries"][1]["error"].startswith("Model response list is empty for turn ")
    # a result folder in BFCL's layout: several categories in one process
    other = tmp_path / "model" / "multi_turn" / "BFCL_v4_multi_turn_miss_param_result.json"
    other.parent.mkdir(parents=True)
    q2, a2 = load_category("multi_turn_miss_param")
    first = sorted(q2)[0]
    other.write_text(json.dumps({"id": first, "result": dict(agreement.mutations(q2[first], a2[first], random.Random(0)))["ground_truth"]}) + "\n")
    proc = subprocess.run([sys.executable, "-m", "funreason.cli", "eval", "score", "--category", "multi_turn_base,multi_turn_miss_param",
                           "--results", str(tmp_path), "--json"], capture_output=True, text=True, check=True)
    both = json.loads(proc.stdout)["categories"]
    assert [(r["category"], r["total"], r["correct"]) for r in both] == [("multi_turn_base", 3, 1), ("multi_turn_miss_param", 1, 1)]
    res.write_text(json.dumps({"id": "multi_turn_base_9999", "result": []}) + "\n")
    bad = subprocess.run([sys.executable, "-m", "funreason.cli", "eval", "score", "--category", "multi_turn_base", "--results", str(res)],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "not in category multi_turn_base" in bad.stderr


HOSTILE = [
    "__import__('os').system('touch PWNED')",
    "[open(file='PWNED', mode='w')]",
    "[exec(source=\"open('PWNED', 'w')\")]",
    "[eval(source=\"__import__('os').system('touch PWNED')\")]",
    "[os.system(command='touch PWNED')]",
    "[GorillaFileSystem.__init__(self=1)]",
    "[__init__()]",
    "[_load_scenario(scenario={}, long_context=True)]",
    "[touch.__globals__(x=1)]",
    "[cd.__func__.__globals__(x=1)]",
    "[mkdir(dir_name=touch(file_name='PWNED'))]",
    "[globals(), locals(), vars(), breakpoint()]",
    "[kill(pid=1), exit(code=0), quit(), remove(path='x'), run(cmd='touch PWNED')]",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_output_runs_nothing(text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    questions, answers = load_category("multi_turn_base")
    entry = questions["multi_turn_base_0"]
    env = Environments(entry, "model", long_context=False)
    before = {c: _state(i) for c, i in env.instances.items()}
    calls = decode_step(text) or []
    results = [env.run(c) for c in calls]
    assert all(r.startswith("Error during execution: ") for r in results), results
    assert {c: _state(i) for c, i in env.instances.items()} == before
    assert os.listdir(tmp_path) == []
    # a whole entry scored with it: no file appears, the verdict is an ordinary failure
    verdict = score_entry(entry, answers[entry["id"]], [[text]] * len(answers[entry["id"]]))
    assert not verdict.valid and os.listdir(tmp_path) == []


def test_a_public_method_does_run_and_changes_the_state():
    # the other side of the hostile test: what it refuses, a call of the environment does
    entry = load_category("multi_turn_base")[0]["multi_turn_base_0"]
    env = Environments(entry, "model", long_context=False)
    fs = env.instances["GorillaFileSystem"]
    before = _state(fs)
    [cd], [mkdir] = decode_step("[cd(folder='document')]"), decode_step("mkdir(dir_name='fresh')")
    assert env.run(cd) == json.dumps({"current_working_directory": "document"})
    assert env.run(mkdir) == "None" and _state(fs) != before
    assert env.run(decode_step("[mkdir(dir_name='fresh', bogus=1)]")[0]).startswith("Error during execution: ")


def test_code_in_an_argument_is_only_text(tmp_path, monkeypatch):
    # BFCL reads a call without keywords inside an argument as its source text: a file name here
    monkeypatch.chdir(tmp_path)
    entry = load_category("multi_turn_base")[0]["multi_turn_base_0"]
    env = Environments(entry, "model", long_context=False)
    [touch] = decode_step("[touch(file_name=__import__('os').system('touch PWNED'))]")
    assert touch.arguments == {"file_name": "__import__('os').system('touch PWNED')"}
    assert env.run(touch) == "None" and os.listdir(tmp_path) == []
    assert "__import__('os').system('touch PWNED')" in env.run(decode_step("ls()")[0])


def test_decoding_follows_bfcl():
    assert decode_step("I will look at the files first.") is None  # prose: the step is skipped
    assert decode_step("<think>ls</think>[ls()]") is None  # reasoning is not stripped by BFCL's runner
    assert decode_step("```python\n[ls()]\n```") is None
    assert decode_step("[]") is None and decode_step(["ls()"]) is None
    [call] = decode_step("sort('a.txt', file_name='b.txt')")  # positional arguments are dropped
    assert (call.name, call.arguments) == ("sort", {"file_name": "b.txt"})
    assert decode_step("[f(x={})]") is None  # an empty dict fails BFCL's rendering, and with it the step
    [refused] = decode_step("[f(x={'g': {'y': 1}})]")  # a dict of dicts is a nested call: refused
    assert refused.error == "Error during execution: name 'f' is not defined"


def _state(instance) -> str:
    return repr(sorted((k, repr(v)) for k, v in vars(instance).items() if not k.startswith("_")))
