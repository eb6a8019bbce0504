"""The README's "With a real model" walk-through, every step in order, with the tiny model in place
of Qwen2.5-Coder-7B, the project's rule teacher on a real local HTTP server in place of QwQ-32B
behind vLLM (teacher and judge), and the bundled xLAM-style sample in place of xLAM-60k. Settings
are the smallest that run each step for real; GPU-only parts (accelerate launchers, vLLM) aside,
the commands are the README's, with its folder layout, so a step that cannot follow the one before
(the old step 5, issue 55 H3) fails here."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import httpx
import pytest
from conftest import SAMPLE, funreason

from funreason.fcdr.rule_teacher import rule_teacher_app
from funreason.llm.launch import free_port
from funreason.serve.app import BackgroundServer

pytestmark = pytest.mark.integration


def test_the_readmes_real_model_recipe_runs_to_the_end_on_the_tiny_model(tmp_path, tiny_model_dir):
    data = tmp_path / "xlam.jsonl"
    data.write_text("".join(SAMPLE.read_text().splitlines(keepends=True)[:8]))
    base, run = str(tiny_model_dir), lambda *a: funreason(*a, cwd=tmp_path)
    with BackgroundServer(rule_teacher_app()) as teacher:  # 1. the teacher (and judge)
        url = teacher.url + "/v1"
        # 2. statistics, then FCDR
        run("stats", data, "--tokenizer", base)
        run("refine", data, "--out", "refined", "--endpoint", url, "--teacher-model", "rule-teacher", "--concurrency", "4")
        kept = (tmp_path / "refined" / "kept.jsonl").read_text().splitlines()
        assert kept, "refine kept nothing"
        # 3. SRML (LoRA as the README's DDP line; one process here), then its plot
        run("train", "--model", base, "--data", "refined/kept.jsonl", "--out", "srml", "--lora", "8", "--lr", "1e-4",
            "--max-steps", "2", "--batch-size", "2", "--logging-steps", "1",
            "--allow-benchmark-overlap")  # the bundled sample mirrors BFCL definitions (docs/data.md); xLAM-60k is audited the same way
        run("plot", "srml")
        # 4. self-refinement, two rounds, judged by the same teacher
        hard = ["--hard", "refined/hard.jsonl"] if (tmp_path / "refined" / "hard.jsonl").exists() else []
        run("self-refine", "--model", "srml/final", "--data", data, "--out", "selfrefine", "--judge-endpoint", url,
            "--judge-model", "rule-teacher", *hard, "--base-data", "refined/kept.jsonl", "--rounds", "2", "--lora", "8",
            "--lr", "1e-4", "--samples", "1", "--max-steps", "1", "--max-tokens", "16", "--eval-limit", "1",
            "--eval-categories", "simple_python", "--eval-max-tokens", "8", "--allow-benchmark-overlap")
    final = "selfrefine/round-2/train/final"
    assert (tmp_path / final / "config.json").exists()
    # 5. evaluation, base against trained, BFCL and HumanEval into one folder each, then the comparison
    small = ["--limit", "1", "--max-tokens", "8"]
    run("eval", "bfcl", "--model", base, "--out", "eval/base", "--split", "test", "--categories", "simple_python", *small)
    run("eval", "bfcl", "--model", final, "--out", "eval/funreason", "--split", "test", "--categories", "simple_python", *small)
    run("eval", "humaneval", "--model", base, "--out", "eval/base", *small)
    run("eval", "humaneval", "--model", final, "--out", "eval/funreason", *small)
    compared = run("eval", "compare", "eval/base", "eval/funreason")
    assert "humaneval" in compared.stdout.lower() and "simple_python" in compared.stdout, compared.stdout
    # 6. serve it, and ask it something
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "funreason.cli", "serve", "--model", final, "--port", str(port)],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and server.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=60,
                       json={"model": final, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
        assert r.status_code == 200 and r.json()["choices"][0]["finish_reason"] in ("length", "stop"), r.text
    finally:
        server.send_signal(signal.SIGINT)
        out = server.communicate(timeout=60)[0]
    assert server.returncode in (0, 130), out[-2000:]
    assert json.loads((tmp_path / "selfrefine" / "rounds.json").read_text())[-1]["round"] == 2
