"""The HumanEval forgetting check: correct code passes, hostile code fails safely, runs resume."""

from __future__ import annotations

import json
import math
from collections import Counter
import os
import subprocess
import sys

import pytest
from conftest import funreason

from funreason.evaluate.humaneval import load_problems, program_from_chat, run_humaneval
from funreason.evaluate.sandbox import Limits

PROBLEMS = load_problems()


def test_the_package_data_is_the_164_problems_and_canonical_solutions_pass(tmp_path):
    assert len(PROBLEMS) == 164
    first = PROBLEMS[:6]
    summary = run_humaneval(first, lambda chunk: [p["canonical_solution"] for p in chunk], tmp_path, chat=False)
    held = summary.to_dict()
    assert {k: held[k] for k in ("total", "passed", "pass@1", "failures", "reference_logprob")} == {
        "total": 6, "passed": 6, "pass@1": 1.0, "failures": {}, "reference_logprob": None}
    assert held["interval"][1] > 0.999 and 0.5 < held["interval"][0] < 0.7  # Wilson, 6 of 6


HOSTILE = {
    "loop": "    while True:\n        pass\n",
    "fork bomb": "    import os\n    while True:\n        try:\n            os.fork()\n        except OSError:\n            pass\n",
    "10 GB": "    x = bytearray(10 * 1024 ** 3)\n    return x\n",
    "delete files": "    import os\n    for name in os.listdir('.'):\n        os.remove(name)\n    return None\n",
    "read secrets": "    import os\n    return os.environ['FUNREASON_CANARY']\n",
}
ESCAPE = "    open('{canary}', 'w').write('pwned')\n    return None\n"


def test_hostile_completions_fail_with_a_reason_and_the_host_is_unharmed(tmp_path, monkeypatch):
    monkeypatch.setenv("FUNREASON_CANARY", "s3cret")
    canary = tmp_path / "canary.txt"
    canary.write_text("intact")
    os.chmod(tmp_path, 0o700)  # the host's files: out of the sandbox's reach
    bodies = [b.replace("{canary}", str(canary)) for b in HOSTILE.values()]
    problems = PROBLEMS[: len(bodies)]
    out = tmp_path / "run"
    summary = run_humaneval(problems, lambda chunk: bodies[: len(chunk)], out, chat=False, limits=Limits(timeout_s=3), batch=len(bodies))
    rows = {r["task_id"]: r for r in map(json.loads, (out / "humaneval_samples.jsonl").read_text().splitlines())}
    reasons = dict(zip(HOSTILE, (rows[p["task_id"]]["reason"] for p in problems)))
    assert summary.passed == 0 and summary.failures == dict(Counter(r["kind"] for r in rows.values()))
    assert reasons["loop"].startswith("timed out") and reasons["fork bomb"].startswith(("timed out", "failed"))
    assert reasons["10 GB"] == "out of memory" and rows[problems[list(HOSTILE).index("10 GB")]["task_id"]]["kind"] == "oom"
    assert rows[problems[list(HOSTILE).index("loop")]["task_id"]]["kind"] == "timeout"
    assert reasons["delete files"].startswith("failed")
    assert "KeyError" in reasons["read secrets"]
    assert canary.read_text() == "intact" and (out / "humaneval_samples.jsonl").exists()
    procs = subprocess.run(["ps", "-u", "nobody", "-o", "stat="], capture_output=True, text=True).stdout.split()
    assert not [s for s in procs if not s.startswith("Z")], "nothing left running"


@pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox runs programs as `nobody` only when started as root (as CI is)")
def test_a_program_cannot_write_the_hosts_files_when_run_as_nobody(tmp_path):
    canary = tmp_path / "canary.txt"
    canary.write_text("intact")
    os.chmod(tmp_path, 0o700)  # the host's files: out of the sandbox's reach
    out = tmp_path / "run"
    run_humaneval(PROBLEMS[:1], lambda chunk: [ESCAPE.replace("{canary}", str(canary))], out, chat=False, limits=Limits(timeout_s=3))
    row = json.loads((out / "humaneval_samples.jsonl").read_text())
    assert not row["passed"] and "PermissionError" in row["reason"], row
    assert canary.read_text() == "intact"


def test_chat_replies_give_back_the_function():
    p = PROBLEMS[0]
    reply = f"Here you go:\n```python\n{p['prompt']}{p['canonical_solution']}```\nDone."
    program = program_from_chat(p, reply)
    assert program.startswith("from typing import List") and f"def {p['entry_point']}(" in program
    body_only = f"```python\n{p['canonical_solution']}```"
    assert program_from_chat(p, body_only).startswith(p["prompt"])


def test_an_interrupted_run_resumes(tmp_path):
    asked = []

    def generate(chunk):
        asked.extend(p["task_id"] for p in chunk)
        return [p["canonical_solution"] for p in chunk]

    run_humaneval(PROBLEMS[:3], generate, tmp_path, chat=False)
    with open(tmp_path / "humaneval_samples.jsonl", "a") as f:
        f.write('{"task_id": "HumanEval/3", "compl')  # torn by a crash
    summary = run_humaneval(PROBLEMS[:5], generate, tmp_path, chat=False)
    assert asked == [f"HumanEval/{i}" for i in (0, 1, 2, 3, 4)] and summary.total == 5


def test_cli_with_the_tiny_model_and_with_an_endpoint(tmp_path, tiny_model_dir):
    from funreason.llm.local import LocalEngine
    from funreason.serve.app import BackgroundServer, ServeConfig, create_app

    def cli(*args):
        funreason("eval", "humaneval", *args)
        return json.loads((args[args.index("--out") + 1] / "humaneval.json").read_text())

    local = cli("--model", tiny_model_dir, "--out", tmp_path / "local", "--limit", 3, "--max-tokens", 16)
    assert local["total"] == 3 and local["pass@1"] == 0.0  # an untrained model writes no working code
    ref = local["reference_logprob"]  # the forgetting measure that is above its floor where pass@1 is not
    assert ref["problems"] == 3 and ref["tokens"] > 50 and ref["mean_logprob"] < 0 and abs(ref["perplexity"] - math.exp(-ref["mean_logprob"])) < 1e-2
    assert local["interval"][0] == 0.0 and 0 < local["interval"][1] < 1
    engine = LocalEngine.from_pretrained(str(tiny_model_dir))
    srv = BackgroundServer(create_app(engine, ServeConfig("tiny", api_key="s3cret")))
    try:
        remote = cli("--endpoint", srv.url, "--served-model", "tiny", "--api-key", "s3cret", "--out", tmp_path / "remote",
                     "--limit", 2, "--max-tokens", 16)
    finally:
        srv.stop()
        engine.close()
    assert remote["total"] == 2 and remote["reference_logprob"] is None  # an endpoint gives no log-probabilities here
    # another model's samples in the same folder are never scored as this model's
    proc = subprocess.run([sys.executable, "-m", "funreason.cli", "eval", "humaneval", "--model", str(tiny_model_dir), "--out",
                           str(tmp_path / "remote"), "--limit", "2", "--max-tokens", "16"], capture_output=True, text=True)
    assert proc.returncode == 2 and "holds results of another run" in proc.stdout + proc.stderr
    # verdicts made with another time limit per program are not this run's either
    proc = subprocess.run([sys.executable, "-m", "funreason.cli", "eval", "humaneval", "--model", str(tiny_model_dir), "--out",
                           str(tmp_path / "local"), "--limit", "3", "--max-tokens", "16", "--timeout", "1"], capture_output=True, text=True)
    assert proc.returncode == 2 and "timeout: None there, 1.0 now" in proc.stdout + proc.stderr


def test_chat_mode_asks_a_local_instruct_model_through_its_template(tmp_path, smollm2_dir):
    """SmolLM2-135M-Instruct given the raw prompt writes prose about the function (0 passed); asked
    through its chat template (`--chat`) it replies with the function in a code block, which passes.
    Samples of one mode are never resumed as the other's."""
    toy = [
        {"task_id": "Toy/0", "prompt": 'def add(a: int, b: int) -> int:\n    """Return the sum of a and b.\n    >>> add(2, 3)\n    5\n    """\n',
         "entry_point": "add", "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"},
        {"task_id": "Toy/1", "prompt": 'def is_even(n: int) -> bool:\n    """Return True when n is even, else False.\n    >>> is_even(4)\n    True\n    """\n',
         "entry_point": "is_even", "test": "def check(candidate):\n    assert candidate(4) is True\n    assert candidate(7) is False\n"},
    ]
    problems = tmp_path / "toy.jsonl"
    problems.write_text("".join(json.dumps(p) + "\n" for p in toy))

    def run(out, *flags):
        funreason("eval", "humaneval", "--model", smollm2_dir, "--problems", problems, "--out", tmp_path / out, "--max-tokens", 96, *flags)
        return json.loads((tmp_path / out / "humaneval.json").read_text())

    assert run("raw")["passed"] == 0
    chat = run("chat", "--chat")
    assert chat["passed"] == 2, (tmp_path / "chat" / "humaneval_samples.jsonl").read_text()
    replies = [json.loads(line)["completion"] for line in (tmp_path / "chat" / "humaneval_samples.jsonl").read_text().splitlines()]
    assert all("```python" in r for r in replies)  # the chat reply, not a raw completion cut at a stop string
    proc = funreason("eval", "humaneval", "--model", smollm2_dir, "--problems", problems, "--out", tmp_path / "raw", "--max-tokens", 96, "--chat",
                     check=False)
    assert proc.returncode == 2 and "holds results of another run" in proc.stdout + proc.stderr


def test_reference_likelihood_is_the_solution_tokens_log_probability_given_the_prompt(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from funreason.evaluate.humaneval import load_problems, reference_likelihood

    model, tok = AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)
    problems = load_problems()[:2]
    got = reference_likelihood(model, tok, problems)
    want, n = 0.0, 0
    for p in problems:  # by hand: every solution token's log-probability after the prompt and the tokens before it
        head, tail = tok(p["prompt"])["input_ids"], tok(p["canonical_solution"], add_special_tokens=False)["input_ids"]
        ids = head + tail
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0]
        for i in range(len(head), len(ids)):
            want += float(torch.log_softmax(logits[i - 1].float(), -1)[ids[i]])
            n += 1
    assert got.tokens == n and abs(got.logprob - want) < 1e-2 and got.problems == 2
    # a problem without a reference solution is left out, not counted as zero
    assert reference_likelihood(model, tok, [{**problems[0], "canonical_solution": ""}]).problems == 0


def test_a_problems_file_edited_between_run_and_resume_is_another_run(tmp_path, tiny_model_dir):
    """Probe: --problems was recorded by path, so edited problems were scored beside verdicts on the old ones."""
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS[:2]))
    args = ["eval", "humaneval", "--model", str(tiny_model_dir), "--problems", str(problems), "--out", str(tmp_path / "he"),
            "--max-tokens", "4"]
    funreason(*args)
    edited = [dict(PROBLEMS[0], test=PROBLEMS[0]["test"] + "\n"), PROBLEMS[1]]
    problems.write_text("".join(json.dumps(p) + "\n" for p in edited))
    proc = subprocess.run([sys.executable, "-m", "funreason.cli", *args], capture_output=True, text=True)
    assert proc.returncode == 2 and "problems_sha256" in proc.stdout + proc.stderr
