"""`funreason self-refine` on the tiny model that memorised PARIS (a call) and JOKE (a statement),
judged by the rule teacher over real HTTP; one round, then a resumed second round."""

from __future__ import annotations

import json
from pathlib import Path
from dataclasses import replace
import subprocess
import sys

from conftest import JOKE, PARIS, TOOLS
from teachers import TeacherServer

from funreason.schema import Call, Example
from funreason.fcdr.judge import check_sample, parse_score


def rows():
    ask = lambda q: [{"role": "user", "content": q}]  # noqa: E731
    return [
        {"id": "paris", "tools": TOOLS, "messages": PARIS + [{"role": "assistant", "content": "[get_weather(city='Paris')]"}]},
        {"id": "joke", "tools": TOOLS, "messages": JOKE + [{"role": "assistant", "content": "I can only look up the weather."}]},
        {"id": "rome", "tools": TOOLS, "messages": ask("Weather in Rome?") + [{"role": "assistant", "content": "[get_weather(city='Rome')]"}]},
        {"id": "noanswer", "tools": TOOLS, "messages": ask("Weather in Oslo?")},
    ]


def run(args):
    proc = subprocess.run([sys.executable, "-m", "funreason.cli", "self-refine", *map(str, args)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_self_refine_one_round_then_resume_into_a_second(tmp_path, trained_tiny_model_dir):
    data = tmp_path / "raw.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows()))
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text(json.dumps(rows()[0]) + "\n")
    # a row FCDR left in hard.jsonl (its key differs from every data row): a hard query from the start
    hard = tmp_path / "hard.jsonl"
    hard_ex = {**rows()[0], "id": "paris-hard"}
    hard.write_text(json.dumps({"key": "fcdr.jsonl:7", "id": "paris-hard", "reason": "r", "example": hard_ex}) + "\n")
    out = tmp_path / "sr"
    with TeacherServer() as judge:
        common = ["--model", trained_tiny_model_dir, "--data", data, "--out", out, "--judge-endpoint", judge.url,
                  "--judge-model", "rule", "--samples", 2, "--hard-samples", 3, "--hard", hard, "--max-tokens", 40,
                  "--max-steps", 4, "--lr", 1e-4, "--eval-categories", "simple_python", "--eval-limit", 2,
                  "--eval-data", heldout, "--eval-max-tokens", 40]
        proc = run(common + ["--rounds", 1])
        rounds = json.loads((out / "rounds.json").read_text())
        assert [r["round"] for r in rounds] == [0, 1]
        r1 = rounds[1]["rollouts"]
        assert r1["queries"] == 4  # paris, joke, rome + the FCDR hard row; the row without an answer is skipped
        lines = [json.loads(l) for l in (out / "round-1" / "samples.jsonl").read_text().splitlines()]
        by_id = {l["id"]: l for l in lines}
        assert len(by_id["paris"]["samples"]) == 2 and len(by_id["paris-hard"]["samples"]) == 3
        assert r1["hard_in"] == 1
        # the memorised answers pass the checks and the judge; Rome is never answered right
        assert by_id["paris"]["example"]["answer"] == [{"name": "get_weather", "arguments": {"city": "Paris"}}]
        assert by_id["paris"]["example"]["reasoning"] and by_id["paris"]["example"]["meta"]["self_refine"]["round"] == 1
        assert by_id["rome"]["example"] is None
        assert any(k.endswith(":3") for k in r1["failed_queries"])  # raw.jsonl:3 is Rome
        assert r1["kept"] == len((out / "round-1" / "kept.jsonl").read_text().splitlines()) >= 2
        assert (out / "round-1" / "train" / "final" / "config.json").exists()
        assert rounds[1]["eval"]["heldout"]["total"] == 1 and rounds[1]["eval"]["bfcl"]["simple_python"]["total"] == 2
        assert (out / "rounds.png").read_bytes()[:4] == b"\x89PNG" and "self-refinement" in proc.stdout
        requests_after_one = judge.requests
        before = (out / "round-1" / "samples.jsonl").read_text()

        # resume with two rounds: round 1 is read back, round 2 gives Rome (failed) the hard sample count
        run(common + ["--rounds", 2])
        assert (out / "round-1" / "samples.jsonl").read_text() == before
        rounds = json.loads((out / "rounds.json").read_text())
        assert [r["round"] for r in rounds] == [0, 1, 2]
        r2 = rounds[2]["rollouts"]
        assert r2["hard_in"] == len(r1["failed_queries"]) >= 1
        rome2 = next(json.loads(l) for l in (out / "round-2" / "samples.jsonl").read_text().splitlines() if json.loads(l)["id"] == "rome")
        assert len(rome2["samples"]) == 3
        assert rounds[2]["train_rows"] == r1["kept"] + r2["kept"]  # earlier rounds' kept samples train again
        assert judge.requests > requests_after_one
        # other settings over these rounds: refused, and the rounds stay as they are
        other = subprocess.run([sys.executable, "-m", "funreason.cli", "self-refine", *map(str, common), "--rounds", "2",
                                "--samples", "3"], capture_output=True, text=True, timeout=300)
        assert other.returncode == 2 and "samples: 2 there, 3 now" in other.stderr and "Traceback" not in other.stderr
        assert json.loads((out / "config.json").read_text())["samples"] == 2


def test_sample_checks_and_judge_replies():
    ex = Example("x", [], [], answer=[Call("get_weather", {"city": "Paris"})])
    assert check_sample("<think>Paris.</think>[get_weather(city='Paris')]", ex).verdict is None
    assert check_sample("[get_weather(city='Paris')]", ex).verdict.kind == "format:no_reasoning"
    assert check_sample("<think>r</think>[get_weather(city='Rome')]", ex).verdict.kind == "calls:differs_from_reference"
    assert check_sample("<think>r</think>no call", ex).verdict.kind == "format:no_parse"
    st = Example("y", [], [], answer="No.")
    assert check_sample("<think>r</think>I cannot.", st).answer == "I cannot." and check_sample("<think>r</think>I cannot.", st).verdict is None
    assert check_sample("[get_weather(city='Paris')]", st).verdict.kind == "calls:differs_from_reference"
    assert parse_score("fine\nSCORE: 7\nVERDICT: PASS") == (7.0, True)
    assert parse_score("bad\nVERDICT: FAIL") == (0.0, False)
    assert parse_score("SCORE: 12\nVERDICT: PASS") == (10.0, True)
    assert parse_score("no verdict at all") is None


def test_local_judge_whose_replies_are_unreadable_fails_the_samples(tmp_path, trained_tiny_model_dir):
    """`--judge PATH`: a local transformers judge. The tiny model cannot write a verdict, so every
    judgement is unreadable: counted as failed, recorded, nothing kept, and the round still ends."""
    from funreason.selfrefine import SelfRefineConfig, round_training, run_self_refine

    data = tmp_path / "raw.jsonl"
    data.write_text(json.dumps(rows()[0]) + "\n" + "not json\n")
    rounds = run_self_refine(SelfRefineConfig(
        model=str(trained_tiny_model_dir), data=str(data), out=str(tmp_path / "sr"), judge=str(trained_tiny_model_dir),
        judge_max_tokens=16, samples=1, max_tokens=40, train=replace(round_training(), max_steps=2), eval_categories=["irrelevance"], eval_limit=1,
        eval_max_tokens=16), log=lambda *_: None)
    r1 = rounds[1].rollouts
    assert r1.queries == 1 and r1.passed_checks == 1 and r1.unreadable_judgements == 1 and r1.kept == 0
    sample = json.loads((tmp_path / "sr" / "round-1" / "samples.jsonl").read_text())["samples"][0]
    assert sample["judge"]["passed"] is False and "no readable SCORE/VERDICT" in sample["judge"]["unreadable"][0]
    assert rounds[1].train_rows == 0 and rounds[1].model == str(trained_tiny_model_dir)


def test_a_round_cut_short_by_judge_errors_resumes_with_only_the_missing_queries(tmp_path, trained_tiny_model_dir):
    """A real endpoint refuses every judgement (max_tokens over its cap: HTTP 400): queries that
    needed the judge are not recorded and the run stops with the cause; run again with a setting the
    server takes, and only those queries are judged, each recorded once."""
    import pytest

    from funreason.errors import BackendError
    from funreason.llm.local import LocalEngine
    from funreason.selfrefine import SelfRefineConfig, round_training, run_self_refine
    from funreason.serve.app import BackgroundServer, ServeConfig, create_app

    data = tmp_path / "raw.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows()[:3]))  # paris, joke, rome
    engine = LocalEngine.from_pretrained(str(trained_tiny_model_dir))
    server = BackgroundServer(create_app(engine, ServeConfig("judge", max_tokens_cap=32)))
    cfg = lambda n: SelfRefineConfig(  # noqa: E731
        model=str(trained_tiny_model_dir), data=str(data), out=str(tmp_path / "sr"), judge_endpoints=[server.url],
        judge_model="judge", judge_max_tokens=n, samples=2, max_tokens=40, temperature=0.0, train=replace(round_training(), max_steps=2),
        eval_categories=["irrelevance"], eval_limit=1, eval_max_tokens=16)
    try:
        with pytest.raises(BackendError, match="could not be judged"):
            run_self_refine(cfg(1024), log=lambda *_: None)
        first = [json.loads(l)["id"] for l in (tmp_path / "sr" / "round-1" / "samples.jsonl").read_text().splitlines()]
        assert first == ["rome"]  # its samples fail the checks: no judge needed
        rounds = run_self_refine(cfg(16), log=lambda *_: None)
    finally:
        server.stop()
        engine.close()
    ids = [json.loads(l)["id"] for l in (tmp_path / "sr" / "round-1" / "samples.jsonl").read_text().splitlines()]
    assert sorted(ids) == ["joke", "paris", "rome"] and ids[0] == "rome"
    assert rounds[1].rollouts.queries == 3 and rounds[1].rollouts.judge_errors == 0


def test_cli_errors_name_the_problem(tmp_path):
    base = [sys.executable, "-m", "funreason.cli", "self-refine", "--model", "m", "--out", tmp_path / "o"]
    no_judge = subprocess.run([*map(str, base), "--data", str(tmp_path / "missing.jsonl")], capture_output=True, text=True)
    assert no_judge.returncode == 2 and "give a judge" in no_judge.stderr
    no_file = subprocess.run([*map(str, base), "--data", str(tmp_path / "missing.jsonl"), "--judge", "j"], capture_output=True, text=True)
    assert no_file.returncode == 2 and "missing.jsonl: no such file" in no_file.stderr


def test_a_round_keeps_its_examples_in_query_order_whatever_order_the_samples_landed_in(tmp_path):
    """Queries retried after judge errors land last in samples.jsonl; kept.jsonl, the next
    training's data, still follows the queries' order."""
    from funreason.selfrefine import summarise_samples

    def row(key, kept):
        sample = {"verdict": None, "judge": {"passed": kept, "score": 8}}
        return {"key": key, "id": key, "hard": key == "b", "samples": [sample, {"verdict": {"kind": "calls:type"}}],
                "kept": 0 if kept else None, "example": {"id": key} if kept else None}

    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in (row("c", True), row("d", False), row("a", True), row("b", True))))
    stats = summarise_samples(samples, tmp_path, ["a", "b", "c", "d"], errors=1)
    assert [json.loads(l)["id"] for l in (tmp_path / "kept.jsonl").read_text().splitlines()] == ["a", "b", "c"]
    assert (stats.queries, stats.samples, stats.kept, stats.passed_checks, stats.passed_judge, stats.hard_kept) == (4, 8, 3, 4, 3, 1)
    assert stats.failed_checks == {"calls:type": 4} and stats.failed_queries == ["d"] and stats.judge_errors == 1


def test_a_round_reads_back_as_it_was_written(tmp_path):
    """`round.json` is a RoundResult's `to_dict`; a resumed run reads it back into the same result."""
    from funreason.evaluate.heldout import EvalMetrics, HeldoutScore
    from funreason.selfrefine import RolloutStats, RoundResult

    stats = RolloutStats(queries=3, samples=6, failed_checks={"calls:differs_from_reference": 2}, passed_checks=4, passed_judge=3,
                         unreadable_judgements=1, kept=2, hard_in=1, hard_kept=0, failed_queries=["raw.jsonl:3"], judge_errors=0)
    r = RoundResult(1, "m/final", EvalMetrics("m/final", {"simple_python": {"total": 4, "accuracy": 0.5}}, HeldoutScore(4, 3, 1)),
                    stats, 10, {"steps": 2, "train_loss": 1.5, "seconds": 3.0, "alpha": 0.5}, 12.0)
    d = json.loads(json.dumps(r.to_dict()))
    assert RoundResult.from_dict(d) == r
    assert d["eval"]["bfcl_mean"] == 0.5 and d["eval"]["heldout"]["accuracy"] == 0.75 and d["rollouts"]["failed_checks"] == stats.failed_checks
    # what the table prints: split, entries and 95% interval beside each accuracy
    assert d["eval"]["split"] == "dev" and r.eval.bfcl_line() == "50.0 [15.0, 85.0] (dev, 4)"
    assert r.eval.heldout.line() == "75.0 [30.1, 95.4] (held-out, 4)"


def test_judges_ask_again_until_a_verdict_reads_and_a_majority_passes():
    """Three judges (a real endpoint, one scripted model name each): unreadable then PASS 8; FAIL 2;
    PASS 6. Two of three pass, the score is the mean, and the unreadable reply was asked again."""
    import asyncio

    from funreason.formats import example_from_row
    from funreason.llm import SamplingParams
    from funreason.llm.factory import BackendConfig, open_chat
    from funreason.fcdr.judge import Judges
    from funreason.fcdr.prompts import functions_json

    row = example_from_row(rows()[0], "raw.jsonl:1", "auto")
    replies = {"a": ["I think it is fine.", "SCORE: 8\nVERDICT: PASS"], "b": ["SCORE: 2\nVERDICT: FAIL"], "c": ["SCORE: 6\nVERDICT: PASS"]}
    with TeacherServer(replies=replies) as srv:
        async def go():
            async with open_chat(BackendConfig([srv.url], "a")) as a, open_chat(BackendConfig([srv.url], "b")) as b, \
                    open_chat(BackendConfig([srv.url], "c")) as c:
                judges = Judges([a, b, c], SamplingParams(max_tokens=32), retries=2)
                return await judges.judge(row, functions_json(row), "Paris.", row.answer), judges.calls

        judgement, calls = asyncio.run(go())
    assert judgement.scores == [8.0, 2.0, 6.0] and judgement.passed and judgement.score == 16 / 3 and not judgement.unreadable
    assert calls == 4 and srv.requests == 4


def test_a_runs_hard_rows_earlier_data_and_held_out_split_are_recorded_by_content(tmp_path, tiny_model_dir):
    """Probe: --base-data, --hard and --eval-data were recorded by path, so a resumed run trained on
    edited earlier data and reused round 0's held-out score of the old split."""
    import pytest

    from funreason.runinfo import RunMismatch
    from funreason.selfrefine import SelfRefineConfig, claim_run

    files = {name: tmp_path / f"{name}.jsonl" for name in ("data", "base", "hard", "held")}
    for path in files.values():
        path.write_text(json.dumps(rows()[0]) + "\n")
    out = tmp_path / "sr"
    cfg = SelfRefineConfig(model=str(tiny_model_dir), data=str(files["data"]), out=str(out), judge_endpoints=["http://127.0.0.1:9/v1"],
                           judge_model="j", hard=[str(files["hard"])], base_data=[str(files["base"])], eval_data=str(files["held"]))
    claim_run(out, cfg)
    (out / "rounds.json").write_text("[]")
    claim_run(out, cfg)  # the same files: resumes
    for name in ("base", "hard", "held"):
        before = files[name].read_text()
        files[name].write_text(json.dumps(rows()[1]) + "\n")
        with pytest.raises(RunMismatch, match="inputs_sha256"):
            claim_run(out, cfg)
        files[name].write_text(before)
    claim_run(out, cfg)
    claim_run(out, replace(cfg, judge_max_tokens=64))  # how the judge's server is reached: resumable (see the judge-errors test)
    claim_run(tmp_path / "sr-folder", replace(cfg, eval_data=str(tmp_path), out=str(tmp_path / "sr-folder")))  # a folder: by its name
    # a local judge by its weights: another checkpoint saved at the same place is another judge
    import shutil

    judge = tmp_path / "judge"
    shutil.copytree(tiny_model_dir, judge)
    local = replace(cfg, judge_endpoints=[], judge_model=None, judge=str(judge), out=str(tmp_path / "sr-local"))
    claim_run(Path(local.out), local)
    (Path(local.out) / "rounds.json").write_text("[]")
    config = json.loads((judge / "config.json").read_text())
    (judge / "config.json").write_text(json.dumps({**config, "rope_theta": 12345.0}))
    with pytest.raises(RunMismatch, match="judge_identity"):
        claim_run(Path(local.out), local)


def test_a_hard_file_whose_last_row_was_cut_off_by_a_stopped_refine_is_read_without_it(tmp_path):
    """Probe: the last line of refine's append-only hard.jsonl may be cut off; it is left out and named,
    while a bad line before the last stops the run, naming it."""
    import pytest

    from funreason.errors import SchemaError
    from funreason.selfrefine import SelfRefineConfig, load_queries

    data = tmp_path / "raw.jsonl"
    data.write_text(json.dumps(rows()[0]) + "\n")
    whole = json.dumps({"key": "fcdr.jsonl:1", "id": "h", "reason": "r", "example": {**rows()[0], "id": "h"}})
    hard = tmp_path / "hard.jsonl"
    hard.write_text(whole + "\n" + whole[:40])
    said: list[str] = []
    cfg = SelfRefineConfig(model="m", data=str(data), out=str(tmp_path / "o"), judge="j", hard=[str(hard)])
    queries, hard_keys = load_queries(cfg, said.append)
    assert hard_keys == {"fcdr.jsonl:1"} and any(f"{hard}:2: a row cut off" in s for s in said), said
    hard.write_text(whole[:40] + "\n" + whole + "\n")
    with pytest.raises(SchemaError, match=f"{hard}:1"):
        load_queries(cfg, said.append)
