"""Self-refinement on launched inference engines: a real `funreason serve` process started per
model by `--rollout-server` / `--judge-server`, used over HTTP, and stopped before training — also
when the run is interrupted (Ctrl-C, SIGTERM) or killed (no engine is left behind)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_selfrefine import rows

from funreason.llm.launch import check_template

SERVE = f"{shlex.quote(sys.executable)} -m funreason.cli serve --model {{model}} --port {{port}} --max-batch 8"
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead but unreaped (its parent, the test, did not start it): count it as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def started_pids(text: str) -> list[int]:
    return [int(p) for p in re.findall(r"engine: started .*?\s\(pid (\d+)\)", text, re.S)]


def command(tmp_path, model, *extra):
    data = tmp_path / "raw.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows()[:2]))  # paris (a call), joke (a statement)
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text(json.dumps(rows()[0]) + "\n")
    return [sys.executable, "-m", "funreason.cli", "self-refine", "--model", str(model), "--data", str(data),
            "--out", str(tmp_path / "sr"), "--judge", str(model), "--judge-server", SERVE, "--rollout-server", SERVE,
            "--judge-max-tokens", "16", "--samples", "2", "--temperature", "0", "--max-tokens", "40", "--max-steps", "2",
            "--base-data", str(data), "--eval-categories", "irrelevance", "--eval-limit", "1", "--eval-data", str(heldout),
            "--eval-max-tokens", "40", *extra]


def test_a_round_runs_its_rollouts_judge_and_evaluation_on_launched_engines(tmp_path, trained_tiny_model_dir):
    proc = subprocess.run(command(tmp_path, trained_tiny_model_dir), capture_output=True, text=True, timeout=600, env=ENV)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = tmp_path / "sr"
    rounds = json.loads((out / "rounds.json").read_text())
    r1 = rounds[1]["rollouts"]
    # rollouts through the engine decode the prompt as trained: the memorised answers pass the checks
    samples = {json.loads(l)["id"]: json.loads(l) for l in (out / "round-1" / "samples.jsonl").read_text().splitlines()}
    assert [s["verdict"] for s in samples["paris"]["samples"]] == [None, None]
    assert samples["paris"]["samples"][0]["answer"] == [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    # every sample that passed went to the launched judge (the tiny model writes no verdict: unreadable, failed)
    assert r1["passed_checks"] >= 2 and r1["unreadable_judgements"] == r1["passed_checks"]
    assert (rounds[0]["eval"]["heldout"]["total"], rounds[0]["eval"]["heldout"]["correct"]) == (1, 1)
    assert (out / "round-1" / "train" / "final" / "config.json").exists() and rounds[1]["eval"]["heldout"]["total"] == 1
    engine_log = (out / "engine.log").read_text()
    # one engine for the starting model (its evaluation and the round's rollouts), one for the trained model
    assert engine_log.count("$ ") == 2 and "round-1/train/final" in engine_log.split("$ ")[2]
    assert "POST /v1/completions" in engine_log and "POST /v1/chat/completions" in (out / "round-1" / "judge-engine.log").read_text()
    pids = started_pids(proc.stdout)
    assert len(pids) == 3 and not any(map(alive, pids)), proc.stdout
    assert proc.stdout.count("engine: stopped") == 3


IDLE = f"{shlex.quote(sys.executable)} {shlex.quote(str(Path(__file__).parent / 'idle_engine.py'))} {{model}} {{port}}"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_an_interrupted_run_leaves_no_engine_behind(tmp_path, trained_tiny_model_dir, sig):
    """Interrupted while it waits on its engine (one that holds every request open): Ctrl-C,
    SIGTERM, or SIGKILL (then the kernel's parent-death signal stops the engine)."""
    cmd = command(tmp_path, trained_tiny_model_dir)
    cmd[cmd.index("--rollout-server") + 1] = IDLE
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    seen = ""
    deadline = time.time() + 300
    try:
        while "engine: ready" not in seen and time.time() < deadline:  # the engine is up and in use
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
        pids = started_pids(seen)
        assert pids and alive(pids[0]), seen
        proc.send_signal(sig)
        # communicate, not wait: the run's output goes on after the signal, and an unread pipe
        # would block its writes (and its exit) once full
        seen += proc.communicate(timeout=300)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, seen[-3000:]
    gone = time.time() + 30  # after SIGKILL the engine is told by the kernel (parent-death signal), then exits
    while alive(pids[0]) and time.time() < gone:
        time.sleep(0.2)
    assert not alive(pids[0]), f"engine {pids[0]} outlived self-refine after signal {sig}"


def test_engine_commands_are_checked_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match=r"must contain \{model\} and \{port\}"):
        check_template("vllm serve {model}")
    with pytest.raises(ValueError, match="no other placeholder"):
        check_template("vllm serve {model} --port {port} --x {gpu}")
    # review L9: a format spec or conversion, or a path pasted inside a shell string, is refused before launch
    for template, said in [("vllm serve {model} --port {port:x}", "bare"), ("vllm serve {model!r} --port {port}", "bare"),
                           ("vllm serve {model:>99999999999} --port {port}", "bare"),
                           ("sh -c 'vllm serve {model} --port {port}'", "a word of its own")]:
        with pytest.raises(ValueError, match=said):
            check_template(template)
    assert check_template("bash -c 'exec vllm serve \"$1\" --port \"$2\"' wrapper {model} {port}")[-2:] == ["{model}", "{port}"]
    bad = subprocess.run([sys.executable, "-m", "funreason.cli", "self-refine", "--model", "m", "--data", __file__, "--out",
                          str(tmp_path / "o"), "--judge", "j", "--rollout-server", "vllm serve {model}"], capture_output=True, text=True)
    assert bad.returncode == 2 and "{port}" in bad.stderr and "Traceback" not in bad.stderr
    failing = subprocess.run([sys.executable, "-c", "from funreason.llm.launch import LaunchedEngine\n"
                              f"LaunchedEngine({sys.executable!r} + ' -c \"import sys; print(\\'no such model\\', sys.argv[1]); sys.exit(3)\" {{model}} {{port}}', "
                              f"'m', {str(tmp_path / 'e.log')!r}).__enter__()"], capture_output=True, text=True)
    assert "exited with code 3 before it answered" in failing.stderr and "no such model m" in failing.stderr


def group_members(pgid: int) -> list[int]:
    """The live processes (zombies aside) of process group `pgid`, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


TINY_SERVE = f"{shlex.quote(sys.executable)} -m funreason.cli serve --model {{model}} --port {{port}} --max-batch 2"


def test_a_launched_engine_that_wants_an_api_key_gets_one_or_says_so_at_once(tmp_path, tiny_model_dir, monkeypatch):
    """Review M3: the launched `funreason serve` inherits FUNREASON_API_KEY (eval bfcl's variable),
    so it answers 401 to a client without the key. The key is passed through; an engine whose
    command names a key of its own is reported at the first 401, not after the start timeout."""
    from funreason.errors import BackendError
    from funreason.llm import SamplingParams
    from funreason.llm.launch import ModelEngines

    monkeypatch.setenv("FUNREASON_API_KEY", "the-users-eval-key")
    with ModelEngines(TINY_SERVE, log_dir=tmp_path / "a", log=lambda _: None, start_timeout=90) as engines:
        gen = engines.get(str(tiny_model_dir)).generate(["hello"], SamplingParams(max_tokens=2))[0]
    assert gen.completion_tokens >= 1
    t0 = time.monotonic()
    with pytest.raises(BackendError) as e:
        with ModelEngines(TINY_SERVE + " --api-key its-own", log_dir=tmp_path / "b", log=lambda _: None, start_timeout=90) as engines:
            engines.get(str(tiny_model_dir))
    assert "API key" in str(e.value) and "--engine-api-key" in str(e.value) and "\n" not in str(e.value), str(e.value)
    waited = time.monotonic() - t0
    # and with that key given, it serves
    with ModelEngines(TINY_SERVE + " --api-key its-own", api_key="its-own", log_dir=tmp_path / "c", log=lambda _: None,
                      start_timeout=90) as engines:
        assert engines.get(str(tiny_model_dir)).generate(["hi"], SamplingParams(max_tokens=2))[0].completion_tokens >= 1
    print(f"refused after {waited:.1f}s")


# a wrapper that forks (the engine is its child), given the model and port as its own arguments (never pasted into the script)
FORKING_IDLE = ("bash -c " + shlex.quote(f"{shlex.quote(sys.executable)} {shlex.quote(str(Path(__file__).parent / 'idle_engine.py'))} "
                                         '"$1" "$2"; echo engine exited') + " wrapper {model} {port}")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_the_engine_group_ends_when_its_launcher_is_killed_even_behind_a_forking_wrapper(tmp_path, sig):
    """Review M4: the kernel's parent-death signal reached only the direct child (`bash`); the engine
    that bash forked outlived a `kill -9` of its launcher. Every process of the engine's group goes."""
    launcher = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom funreason.llm.launch import LaunchedEngine\n"
                                 f"e = LaunchedEngine({FORKING_IDLE!r}, 'm', {str(tmp_path / 'e.log')!r}, stop_timeout=5, log=lambda m: None).__enter__()\n"
                                 "print('ready', e.proc.pid, flush=True)\ntime.sleep(600)"],
                                stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        line = launcher.stdout.readline()
        assert line.startswith("ready"), line
        group = int(line.split()[1])
        assert wait_until(lambda: len(group_members(group)) >= 2, 30), group_members(group)  # bash and the engine it forked
        launcher.send_signal(sig)
        launcher.wait(30)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert wait_until(lambda: not group_members(group), 30), f"engine group {group} outlived its launcher: {group_members(group)}"


def wait_until(cond, timeout):
    end = time.time() + timeout
    while not cond() and time.time() < end:
        time.sleep(0.1)
    return cond()
