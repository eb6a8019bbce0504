"""FCDR end to end against real local teacher servers: stages, bookkeeping, chaos, resume, shards."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import funreason, file_size_limit
from teachers import TeacherServer

from funreason.llm.http import HTTPBackend
from funreason.fcdr.report import summarise, write_report
from funreason.llm.factory import BackendConfig
from funreason.fcdr.runner import OUTCOMES, RefineConfig, outcome_key, run_refine
from funreason.data.synth.kinds import generate

ROOT = Path(__file__).parent


def rows_with_every_path() -> list[dict]:
    rows = generate(60, seed=11)
    calls = [r for r in rows if r["answers"].startswith("[") and len(json.loads(r["answers"])) == 1]
    unsolvable, badcot, wrong, neverfix, missing = (dict(r) for r in calls[:5])
    unsolvable["query"] += " UNSOLVABLE"
    badcot["query"] += " BADCOT"
    for r in (wrong, neverfix):
        a = json.loads(r["answers"])
        key = next(iter(a[0]["arguments"]))
        a[0]["arguments"][key] = "wrong"
        r["answers"] = json.dumps(a)
        tools = json.loads(r["tools"])
        for t in tools:
            if t["name"] == a[0]["name"]:
                t["parameters"][key]["type"] = "str"  # 'wrong' must fail the judge, not the type check
        r["tools"] = json.dumps(tools)
    neverfix["query"] += " NEVERFIX"
    a = json.loads(missing["answers"])
    a[0]["arguments"] = {}
    missing["answers"] = json.dumps(a)
    return [r for r in rows if r not in calls[:5]] + [unsolvable, badcot, wrong, neverfix, missing]


def write_input(path: Path, rows: list[dict], bad_lines: bool = False) -> int:
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    if bad_lines:
        lines[3:3] = ['{"id": 1, "query": "broken', '{"id": 2, "query": "q", "tools": "[x", "answers": "[]"}', ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sum(1 for l in lines if l.strip())


def refine(inp: Path, out: Path, url: str, **kw) -> dict:
    async def go():
        async with HTTPBackend([url], "teacher", max_retries=kw.pop("retries", 4), backoff_base=0.01, timeout=kw.pop("timeout", 2.0)) as llm:
            teacher = kw.pop("teacher", None)
            backend = BackendConfig(endpoints=[url], served_model=teacher) if teacher else BackendConfig()
            report = await run_refine(RefineConfig(str(inp), str(out), teacher=backend, **kw), llm)
            return summarise(out, report, llm.usage)

    summary = asyncio.run(go())
    write_report(out, summary)
    return summary.to_dict()


def outputs(out: Path) -> dict[str, list[dict]]:
    return {name: [json.loads(l) for l in (out / f"{name}.jsonl").read_text().splitlines() if l.strip()]
            if (out / f"{name}.jsonl").exists() else [] for name in OUTCOMES}


def keys_of(out: Path) -> Counter:
    keys = Counter()
    for name, rows in outputs(out).items():
        for r in rows:
            keys[r.get("key") or r["meta"]["fcdr"]["key"]] += 1
    return keys


def input_keys(inp: Path) -> list[str]:
    from funreason.formats.jsonl import iter_json_rows
    from funreason.fcdr.runner import row_key

    seen: Counter = Counter()
    return [row_key(raw, seen) for _, raw in iter_json_rows(inp)]


def assert_conserved(inp: Path, out: Path, n_rows: int) -> None:
    keys = keys_of(out)
    assert sum(keys.values()) == n_rows, "every row in exactly one file"
    assert all(v == 1 for v in keys.values()), "no row twice"


def test_every_stage_decides_as_the_paper_says(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out"
    rows = rows_with_every_path()
    write_input(inp, rows)
    with TeacherServer() as t:
        summary = refine(inp, out, t.url)
    files = outputs(out)
    dropped = {d["stage"]: d for d in files["dropped"]}
    assert set(dropped) == {"query_tool", "cot"} and len(files["dropped"]) == 3
    missing = [d for d in files["dropped"] if d["kind"] == "calls:missing_required"]
    assert len(missing) == 1 and missing[0]["teacher"] is None and "required parameter" in missing[0]["why"]  # decided without the teacher
    assert any(d["stage"] == "query_tool" and d["kind"] == "teacher:fail" and d["teacher"] for d in files["dropped"])
    assert "VERDICT" not in dropped["cot"]["why"]
    (hard,) = files["hard"]
    assert "NEVERFIX" in hard["example"]["messages"][-1]["content"] and len(hard["attempts"]) == 4
    regenerated = [k for k in files["kept"] if k["meta"]["fcdr"]["regenerations"]]
    assert len(regenerated) == 1 and '"right"' in json.dumps(regenerated[0]["answer"])
    statements = [k for k in files["kept"] if k["meta"]["fcdr"]["passed"] == ["statement"]]
    assert statements and all(isinstance(k["answer"], str) for k in statements)
    assert all(k["reasoning"] for k in files["kept"] if k["meta"]["fcdr"]["passed"] != ["statement"])
    assert summary["funnel"][0] == ["input rows", len(rows)]
    # the report counts why rows failed by verdict kind, dropped and hard alike
    assert summary["failed_by_kind"] == dict(Counter(r["kind"] for r in files["dropped"] + files["hard"]))
    assert summary["failed_by_kind"]["calls:missing_required"] == 1 and "calls:missing_required" in (out / "report.md").read_text()
    assert summary["this_run"]["llm_calls"]["regenerate"] == 1 + 3
    assert (out / "funnel.png").read_bytes()[:4] == b"\x89PNG" and "FCDR report" in (out / "report.md").read_text()


def test_rows_without_an_answer_are_dropped_at_response_identification(tmp_path):
    inp, out = tmp_path / "chat.jsonl", tmp_path / "out"
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    inp.write_text(json.dumps({"id": "q", "messages": [{"role": "user", "content": "hi"}], "tools": tools}) + "\n")
    with TeacherServer() as t:
        refine(inp, out, t.url)
    (row,) = outputs(out)["dropped"]
    assert row["stage"] == "response" and row["kind"] == "response:no_answer" and "no reference answer" in row["why"]


def test_chaos_endpoint_and_malformed_input_lose_nothing(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out"
    n = write_input(inp, generate(120, seed=5), bad_lines=True)
    with TeacherServer(chaos=0.35, seed=3, stall=1.0) as t:
        first = refine(inp, out, t.url, retries=1, timeout=0.5, concurrency=16)
    assert_conserved(inp, out, n)
    assert first["files"]["rejected"] == 2 and first["files"]["errors"] > 0
    errors = outputs(out)["errors"]
    assert all(e["error"] for e in errors)
    # re-running retries exactly the error rows; with a calm teacher they all finish
    with TeacherServer() as calm:
        second = refine(inp, out, calm.url)
    assert_conserved(inp, out, n)
    assert second["files"]["errors"] == 0 and second["this_run"]["processed"] == len(errors)


def _cli(inp, out, url, *extra, model="teacher"):
    return [sys.executable, "-m", "funreason.cli", "refine", str(inp), "--out", str(out), "--endpoint", url,
            "--teacher-model", model, "--concurrency", "8", *extra]


def test_kill_9_at_any_moment_then_resume_equals_an_uninterrupted_run(tmp_path):
    inp = tmp_path / "in.jsonl"
    n = write_input(inp, rows_with_every_path() + generate(60, seed=12), bad_lines=True)
    with TeacherServer(latency=0.01) as t:
        subprocess.run(_cli(inp, tmp_path / "whole", t.url), check=True, capture_output=True, timeout=300)
        cut = tmp_path / "cut"
        for at_least in (10, 60):  # killed twice, mid-run
            proc = subprocess.Popen(_cli(inp, cut, t.url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.time() + 120
            while sum(keys_of(cut).values()) < at_least and proc.poll() is None and time.time() < deadline:
                time.sleep(0.05)
            assert proc.poll() is None, "the run finished before it could be killed"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        with open(cut / "kept.jsonl", "ab") as f:  # and a torn line, as a crash mid-write leaves
            f.write(b'{"id": "torn", "tools": [')
        done = subprocess.run(_cli(inp, cut, t.url), check=True, capture_output=True, text=True, timeout=300)
    assert "this run" in done.stdout
    assert_conserved(inp, cut, n)
    whole, resumed = outputs(tmp_path / "whole"), outputs(cut)
    # line for line: the teacher answered eight rows at a time, in another order in each of the
    # three runs, yet both folders hold their rows in input order
    for name in OUTCOMES:
        assert whole[name] == resumed[name], name
    place = {k: i for i, k in enumerate(input_keys(inp))}
    for name in OUTCOMES:
        places = [place[outcome_key(r)] for r in whole[name]]
        assert places == sorted(places), name


def test_shards_concatenate_to_the_whole(tmp_path):
    inp = tmp_path / "in.jsonl"
    n = write_input(inp, generate(40, seed=9), bad_lines=True)
    with TeacherServer() as t:
        refine(inp, tmp_path / "whole", t.url)
        for i in range(3):
            refine(inp, tmp_path / f"s{i}", t.url, shard=(i, 3))
    whole = outputs(tmp_path / "whole")
    parts = [outputs(tmp_path / f"s{i}") for i in range(3)]
    for name in OUTCOMES:
        assert sorted(map(json.dumps, whole[name])) == sorted(json.dumps(r) for p in parts for r in p[name]), name
    assert sum(sum(keys_of(tmp_path / f"s{i}").values()) for i in range(3)) == n
    # `refine-merge` joins them into one folder equal to the whole run, with one report
    merge = [sys.executable, "-m", "funreason.cli", "refine-merge", *(str(tmp_path / f"s{i}") for i in (2, 0, 1))]
    subprocess.run([*merge, "--out", str(tmp_path / "merged")], check=True, capture_output=True, text=True, timeout=300)
    merged = outputs(tmp_path / "merged")
    for name in OUTCOMES:
        assert sorted(map(json.dumps, whole[name])) == sorted(map(json.dumps, merged[name])), name
    one, joined = (json.loads((tmp_path / d / "report.json").read_text()) for d in ("whole", "merged"))
    assert joined["funnel"] == one["funnel"] and joined["files"] == one["files"]
    assert json.loads((tmp_path / "merged" / "run.json").read_text()) == json.loads((tmp_path / "whole" / "run.json").read_text())
    # the merge lays the shards end to end; the whole input's command over it asks nothing and
    # puts every file in input order, line for line the single run's
    assert merged != whole
    with TeacherServer() as t:
        again = refine(inp, tmp_path / "merged", t.url)
        assert again["this_run"]["processed"] == 0 and t.requests == 0
    assert outputs(tmp_path / "merged") == whole
    # a missing shard, or a shard of another run, is one error line
    for args, said in ((merge[:-1], "are not each of 0/3"), ([*merge[:-1], str(tmp_path / "whole")], "are not each of 0/3")):
        proc = subprocess.run([*args, "--out", str(tmp_path / "m2")], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and said in proc.stdout + proc.stderr and "Traceback" not in proc.stderr


def test_resume_belongs_to_the_run_that_made_the_folder(tmp_path):
    rows = generate(12, seed=5)
    inp, out = tmp_path / "in.jsonl", tmp_path / "out"
    write_input(inp, rows)
    with TeacherServer() as t:
        refine(inp, out, t.url, teacher="teacher")
        before = outputs(out)
        # the same input again: every row is recognised by its content and nothing is asked twice
        again = refine(inp, out, t.url, teacher="teacher")
        assert again["this_run"]["already_done"] == 12 and outputs(out) == before
        # an edited input, or another file of the same name, is refused: its rows would be mixed with stale ones
        edited = [dict(r) for r in rows]
        edited[0]["query"] += " (edited)"
        other = tmp_path / "elsewhere" / "in.jsonl"
        other.parent.mkdir()
        for path in (inp, other):
            write_input(path, edited)
            proc = subprocess.run(_cli(path, out, t.url), capture_output=True, text=True, timeout=300)
            assert proc.returncode == 2 and "holds results of another run of refine (input_sha256:" in proc.stdout + proc.stderr, proc.stderr
        # other settings are refused the same way
        write_input(inp, rows)
        proc = subprocess.run(_cli(inp, out, t.url, "--max-regenerations", "1"), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and "max_regenerations: 3 there, 1 now" in proc.stdout + proc.stderr
    assert outputs(out) == before


def test_rows_are_keyed_by_content_not_by_place(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b" / "a.jsonl"
    b.parent.mkdir()
    rows = generate(4, seed=1)
    write_input(a, rows)
    write_input(b, [rows[2], rows[0], rows[1], rows[3], rows[0]])
    ka, kb = input_keys(a), input_keys(b)
    assert kb[:4] == [ka[2], ka[0], ka[1], ka[3]] and kb[4] == ka[0] + "#2"  # a repeated row is its own row


def test_refine_against_the_tiny_model_served_over_http(tmp_path, tiny_model_dir):
    from funreason.llm.local import LocalEngine
    from funreason.serve.app import BackgroundServer, ServeConfig, create_app

    inp, out = tmp_path / "in.jsonl", tmp_path / "out"
    n = write_input(inp, generate(8, seed=2))
    engine = LocalEngine.from_pretrained(str(tiny_model_dir), max_batch=8)
    srv = BackgroundServer(create_app(engine, ServeConfig("tiny", max_tokens_cap=64)))
    try:
        proc = subprocess.run(_cli(inp, out, srv.url, "--max-tokens", "24", "--max-regenerations", "1", model="tiny"),
                              capture_output=True, text=True, timeout=600)
    finally:
        srv.stop()
        engine.close()
    # the random model's replies often have no reasoning: those rows wait in errors.jsonl, and the
    # exit status says the run is not finished
    assert proc.returncode == (1 if outputs(out)["errors"] else 0), proc.stderr[-2000:]
    assert_conserved(inp, out, n)
    report = json.loads((out / "report.json").read_text())
    assert report["total"] == n and report["this_run"]["http"]["requests"] > 0


def test_refine_refuses_bad_arguments(tmp_path):
    def run(*args):
        return funreason("refine", *args, check=False)

    inp = tmp_path / "in.jsonl"
    write_input(inp, generate(2))
    assert "either as --endpoint URL" in run(inp, "--out", tmp_path / "o").stderr
    assert "--teacher-model" in run(inp, "--out", tmp_path / "o", "--endpoint", "http://127.0.0.1:9").stderr
    assert "--shard must be" in run(inp, "--out", tmp_path / "o", "--teacher", "x", "--shard", "3/2").stderr
    assert "pip install vllm" in run(inp, "--out", tmp_path / "o", "--teacher", "x", "--teacher-backend", "vllm").stderr
    for bad in (("--concurrency", "0"), ("--max-regenerations", "-1")):
        proc = run(inp, "--out", tmp_path / "o", "--teacher", "x", *bad)
        assert proc.returncode == 2 and "--concurrency and --max-tokens must be 1 or more" in proc.stderr and not (tmp_path / "o").exists()


def test_a_local_teacher_is_recorded_by_its_weights_not_its_path(tmp_path, tiny_model_dir):
    """Probe: a local teacher was recorded by its path, so a folder refined by one checkpoint resumed
    with another saved at the same place, and its kept rows mixed two teachers' judgements."""
    import shutil

    from funreason.fcdr.runner import claim_run
    from funreason.runinfo import RunMismatch

    teacher = tmp_path / "teacher"
    shutil.copytree(tiny_model_dir, teacher)
    inp, out = tmp_path / "in.jsonl", tmp_path / "out"
    write_input(inp, generate(2, seed=1))
    cfg = RefineConfig(input=str(inp), out=str(out), teacher=BackendConfig(local=str(teacher)))
    claim_run(out, cfg)
    (out / "kept.jsonl").write_text("{}\n")
    claim_run(out, cfg)  # the same teacher: resumes
    config = json.loads((teacher / "config.json").read_text())
    (teacher / "config.json").write_text(json.dumps({**config, "rope_theta": 12345.0}))  # another checkpoint, the same path
    with pytest.raises(RunMismatch, match="teacher_fingerprint"):
        claim_run(out, cfg)


def test_refine_with_a_local_transformers_teacher(tmp_path, tiny_model_dir):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out"
    n = write_input(inp, generate(4, seed=4))
    proc = subprocess.run([sys.executable, "-m", "funreason.cli", "refine", str(inp), "--out", str(out), "--teacher",
                           str(tiny_model_dir), "--max-tokens", "12", "--max-regenerations", "1"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == (1 if outputs(out)["errors"] else 0), proc.stderr[-2000:]  # 1: rows wait in errors.jsonl
    assert_conserved(inp, out, n)


def test_rule_teacher_refines_open_data_over_http(tmp_path):
    """The demo's stand-in teacher behind a real HTTP server: FCDR writes reasoning that ends in the
    call, keeps statements, and drops a row whose value is not in the query."""
    import asyncio
    import json

    from funreason.data import bundled
    from funreason.llm.http import HTTPBackend
    from funreason.fcdr.rule_teacher import rule_teacher_app
    from funreason.fcdr.runner import RefineConfig, run_refine
    from funreason.serve.app import BackgroundServer

    rows = bundled("open_demo_train.jsonl").read_text().splitlines()[:30]
    bad = json.loads(next(r for r in rows if '"answer": [' in r
                          and all(isinstance(v, str) for c in json.loads(r)["answer"] for v in c["arguments"].values())))
    bad["id"] = "invented"
    bad["answer"][0]["arguments"] = {k: "Zanzibar Quux" for k in bad["answer"][0]["arguments"]}
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(rows + [json.dumps(bad)]) + "\n")
    with BackgroundServer(rule_teacher_app()) as teacher:
        async def go():
            async with HTTPBackend([teacher.url], "rule-teacher", concurrency=4) as llm:
                return await run_refine(RefineConfig(str(src), str(tmp_path / "out"), concurrency=4), llm, lambda _o: None)
        asyncio.run(go())
    kept = [json.loads(line) for line in (tmp_path / "out" / "kept.jsonl").read_text().splitlines()]
    dropped = [json.loads(line) for line in (tmp_path / "out" / "dropped.jsonl").read_text().splitlines()]
    assert "invented" in {d["id"] for d in dropped} and "invented" not in {k["id"] for k in kept}
    calls = [k for k in kept if isinstance(k["answer"], list)]
    assert calls and all(f"So I call {c['answer'][0]['name']}(" in c["reasoning"] for c in calls)
    assert any(isinstance(k["answer"], str) for k in kept)



def test_a_disk_that_fills_up_ends_the_run_with_the_os_error_and_resume_finishes_it(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out"
    n = write_input(inp, generate(120, seed=3))
    with TeacherServer() as t:
        full = subprocess.run(_cli(inp, out, t.url), capture_output=True, text=True, timeout=300, preexec_fn=file_size_limit(20_000))
        assert full.returncode == 2  # ended by the error, not retried until the timeout (which would raise here)
        err = [l for l in full.stderr.splitlines() if l.strip()]
        assert err[-1].startswith("error:") and "File too large" in err[-1] and "run the same command again" in err[-1], full.stderr
        written = sum(keys_of_lenient(out).values())
        assert 0 < written < n
        done = subprocess.run(_cli(inp, out, t.url), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert_conserved(inp, out, n)


def keys_of_lenient(out: Path) -> Counter:
    """Keys of the complete lines (the last one may be torn by the failed write)."""
    keys = Counter()
    for name in OUTCOMES:
        path = out / f"{name}.jsonl"
        for line in path.read_text().splitlines() if path.exists() else []:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            keys[r.get("key") or r["meta"]["fcdr"]["key"]] += 1
    return keys


def test_a_run_that_could_refine_nothing_exits_non_zero_naming_the_cause(tmp_path):
    inp = tmp_path / "in.jsonl"
    write_input(inp, generate(3))
    proc = subprocess.run(_cli(inp, tmp_path / "out", "http://127.0.0.1:9", "--timeout", "0.5", "--retries", "0"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "3 rows hit backend errors" in proc.stderr and "127.0.0.1:9" in proc.stderr and "run the same command again" in proc.stderr


def test_the_teacher_sees_the_functions_as_the_student_does(sample_examples):
    """FunReason's `x-…` round-trip annotations (e.g. `x-xlam-type`) never reach a teacher or judge prompt."""
    from funreason.fcdr.runner import functions_json

    annotated = [ex for ex in sample_examples if "x-xlam-type" in json.dumps([t.to_dict() for t in ex.tools])]
    assert annotated, "the sample has rows with xLAM type strings kept for the round trip"
    for ex in annotated:
        shown = functions_json(ex)
        assert '"x-' not in shown and all(t.name in shown for t in ex.tools)


def test_a_tool_with_a_hyphenated_name_is_refined_and_kept(tmp_path):
    """OpenAI's and MCP's tool names may have hyphens (`get-weather`): the format check takes a name
    of identifiers joined by dots or hyphens, so such a row is kept, not sent to hard.jsonl after
    four regenerations that all write the same call; a part that is no identifier is still refused."""
    from funreason.fcdr.checks import BAD_NAME, format_problem
    from funreason.fcdr.rule_teacher import RuleTeacher
    from funreason.schema import Call

    assert format_problem([Call("get-weather", {"city": "Paris"}), Call("fs.list-files", {})]) is None
    assert format_problem([Call("get-2fa", {})]).kind == BAD_NAME and format_problem([Call("get-class", {})]).kind == BAD_NAME
    tool = {"type": "function", "function": {"name": "get-weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    row = {"id": "hy", "tools": [tool], "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get-weather", "arguments": '{"city": "Paris"}'}}]}]}
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps(row) + "\n")
    report = asyncio.run(run_refine(RefineConfig(str(inp), str(tmp_path / "out"), concurrency=1), RuleTeacher()))
    assert report.outcomes["kept"] == 1 and report.outcomes["hard"] == 0, report
    (kept,) = outputs(tmp_path / "out")["kept"]
    assert kept["answer"] == [{"name": "get-weather", "arguments": {"city": "Paris"}, "id": "c1"}]
