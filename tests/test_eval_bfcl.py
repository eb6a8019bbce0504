"""`funreason eval bfcl`: generation with a local model or an endpoint, scoring, report, resume."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import funreason

from funreason.evaluate.bfcl_run import aggregate


def cli(*args):
    return funreason("eval", "bfcl", *args, timeout=900)


def test_local_model_limit_20_end_to_end_and_resume(tmp_path, trained_tiny_model_dir):
    out = tmp_path / "run"
    cli("--model", trained_tiny_model_dir, "--out", out, "--categories", "simple_python,irrelevance", "--limit", 20, "--max-tokens", 24)
    report = json.loads((out / "report.json").read_text())
    assert report["categories"]["simple_python"]["total"] == 20 and report["categories"]["irrelevance"]["total"] == 20
    # the aggregates are the leaderboard's, recomputed from the categories the report wrote
    assert report["summary"] == aggregate({c: {**s, "entries": []} for c, s in report["categories"].items()})
    assert "simple_java" in report["summary"]["not_scored"]  # not run here
    assert (out / "report.md").exists() and (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    lines = (out / "BFCL_v4_simple_python_result.json").read_text().splitlines()
    assert len(lines) == 20 and all(json.loads(l)["id"].startswith("simple_python_") for l in lines)
    # a second run finds every entry done and generates nothing more
    cli("--model", trained_tiny_model_dir, "--out", out, "--categories", "simple_python,irrelevance", "--limit", 20, "--max-tokens", 24)
    assert (out / "BFCL_v4_simple_python_result.json").read_text().splitlines() == lines


def test_results_of_another_model_or_settings_are_never_reused(tmp_path, tiny_model_dir, trained_tiny_model_dir):
    out = tmp_path / "run"
    args = ("--out", out, "--categories", "simple_python", "--limit", 2, "--max-tokens", 8)
    cli("--model", tiny_model_dir, *args)
    lines = (out / "BFCL_v4_simple_python_result.json").read_text().splitlines()
    for other in (("--model", trained_tiny_model_dir, *args), ("--model", tiny_model_dir, *args[:-1], 16)):
        proc = subprocess.run([sys.executable, "-m", "funreason.cli", "eval", "bfcl", *map(str, other)], capture_output=True, text=True)
        assert proc.returncode == 2 and "holds results of another run" in proc.stdout + proc.stderr, proc.stderr[-2000:]
    assert "max_tokens: 8 there, 16 now" in proc.stdout + proc.stderr
    assert (out / "BFCL_v4_simple_python_result.json").read_text().splitlines() == lines  # untouched
    # results that do not say which model wrote them are refused too
    (out / "run.json").unlink()
    proc = subprocess.run([sys.executable, "-m", "funreason.cli", "eval", "bfcl", "--model", str(tiny_model_dir), *map(str, args)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "do not say which model made them" in proc.stdout + proc.stderr
    proc = subprocess.run([sys.executable, "-m", "funreason.cli", "eval", "bfcl", "--model", str(tiny_model_dir), "--out", str(tmp_path / "x"),
                           "--limit", "-2"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--limit must be 1 or more" in proc.stdout + proc.stderr


def test_skip_scores_the_entries_after_the_first_n_and_refuses_what_leaves_none(tmp_path, tiny_model_dir):
    # a subset studied for errors and then trained against is no longer a fair measure; --skip
    # scores the entries after it
    out = tmp_path / "run"
    cli("--model", tiny_model_dir, "--out", out, "--categories", "simple_python", "--skip", 5, "--limit", 2, "--max-tokens", 8)
    ids = [json.loads(line)["id"] for line in (out / "BFCL_v4_simple_python_result.json").read_text().splitlines()]
    assert sorted(ids) == ["simple_python_5", "simple_python_6"]  # written as they finish
    report = json.loads((out / "report.json").read_text())
    assert report["categories"]["simple_python"]["total"] == 2 and report["skip"] == 5
    for skip, says in (("-1", "--skip must be 0 or more"), ("100000", "no dev entries of simple_python after --skip 100000")):
        proc = subprocess.run([sys.executable, "-m", "funreason.cli", "eval", "bfcl", "--model", str(tiny_model_dir), "--out",
                               str(tmp_path / "x"), "--categories", "simple_python", "--skip", skip], capture_output=True, text=True)
        assert proc.returncode == 2 and says in proc.stdout + proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "x").exists()  # refused before anything was written


def test_endpoint_prompting_and_native_modes(tmp_path, trained_tiny_model_dir):
    from funreason.llm.local import LocalEngine
    from funreason.serve.app import BackgroundServer, ServeConfig, create_app

    engine = LocalEngine.from_pretrained(str(trained_tiny_model_dir))
    srv = BackgroundServer(create_app(engine, ServeConfig("tiny", max_tokens_cap=64, api_key="s3cret")))  # a hosted endpoint's key
    try:
        for mode in ("prompting", "native"):
            out = tmp_path / mode
            cli("--endpoint", srv.url, "--served-model", "tiny", "--api-key", "s3cret", "--mode", mode, "--out", out,
                "--categories", "live_simple", "--split", "test", "--limit", 4, "--max-tokens", 24)
            report = json.loads((out / "report.json").read_text())
            assert report["mode"] == mode and report["categories"]["live_simple"]["total"] == 4
    finally:
        srv.stop()
        engine.close()


def test_aggregates_follow_the_leaderboard():
    s = lambda acc, n: {"accuracy": acc, "total": n}
    scores = {"simple_python": s(0.9, 400), "simple_java": s(0.6, 100), "simple_javascript": s(0.3, 50),
              "multiple": s(0.8, 200), "parallel": s(0.7, 200), "parallel_multiple": s(0.6, 200),
              "live_simple": s(0.5, 258), "live_multiple": s(0.4, 1053), "live_parallel": s(1.0, 16), "live_parallel_multiple": s(0.0, 24)}
    a = aggregate(scores)
    assert abs(a["non_live_ast"] - (0.6 + 0.8 + 0.7 + 0.6) / 4) < 1e-12  # simple = mean(0.9, 0.6, 0.3)
    assert abs(a["live_ast"] - (0.5 * 258 + 0.4 * 1053 + 16) / (258 + 1053 + 16 + 24)) < 1e-12
    assert a["overall"] == (a["non_live_ast"] + a["live_ast"]) / 2 and a["not_scored"] == []


def test_compare_runs_side_by_side(tmp_path):
    for name, acc, he in (("base", 0.5, 0.8), ("srml", 0.7, 0.78)):
        d = tmp_path / name
        d.mkdir()
        cats = {"simple_python": {"accuracy": acc, "total": 10}, "live_simple": {"accuracy": acc - 0.1, "total": 10}}
        summary = {"non_live_ast": acc / 4, "live_ast": acc - 0.1, "overall": (acc / 4 + acc - 0.1) / 2}
        (d / "report.json").write_text(json.dumps({"summary": summary, "categories": cats}))
        (d / "humaneval.json").write_text(json.dumps({"pass@1": he}))
    png = tmp_path / "cmp.png"
    proc = subprocess.run([sys.executable, "-m", "funreason.cli", "eval", "compare", str(tmp_path / "base"), str(tmp_path / "srml"), "--out", str(png)],
                          capture_output=True, text=True, check=True)
    assert "HumanEval pass@1" in proc.stdout and "78.00" in proc.stdout and "70.00" in proc.stdout
    assert png.read_bytes()[:4] == b"\x89PNG"
    bad = subprocess.run([sys.executable, "-m", "funreason.cli", "eval", "compare", str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 2 and "no report.json" in bad.stderr


def test_compare_shows_an_older_report_with_the_intervals_a_report_gets_now(tmp_path):
    """A report written before aggregate intervals had their Wilson floor stored [0.0, 21.5] for 0 of
    4 one-entry multi-turn categories; compare recomputes from the counts and shows 0 of 4's."""
    from funreason.evaluate.compare import load_run

    cats = {c: {"correct": 0, "total": 1, "accuracy": 0.0, "interval": [0.0, 0.793]}
            for c in ("multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param", "multi_turn_long_context")}
    summary = {"non_live_ast": 0.0, "live_ast": 0.0, "overall": 0.0, "multi_turn": 0.0, "multi_turn_scored": 0.0}
    (tmp_path / "report.json").write_text(json.dumps({"summary": summary, "categories": cats, "split": "test", "entries": 4,
                                                      "intervals": {"multi_turn_scored": [0.0, 0.215]}}))
    run = load_run(tmp_path)
    lo, hi = run["intervals"]["Multi-turn, scored categories"]
    assert lo == 0.0 and round(100 * hi, 1) == 49.0


def test_a_line_torn_by_a_crash_is_cut_before_answers_are_appended(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    args = ("--model", tiny_model_dir, "--out", out, "--categories", "simple_python", "--limit", 3, "--max-tokens", 8)
    cli(*args)
    path = out / "BFCL_v4_simple_python_result.json"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2]) + "\n" + lines[2][:15])  # the third answer torn mid-write
    cli(*args)
    again = [json.loads(line) for line in path.read_text().splitlines()]  # every line whole JSON again
    assert [r["id"] for r in again] == [json.loads(line)["id"] for line in lines]
    cli(*args)  # and a third run finds all three done
    assert len(path.read_text().splitlines()) == 3
