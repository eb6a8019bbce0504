"""`funreason eval bfcl` on the multi-turn categories: BFCL's conversation loop against a real HTTP
endpoint that plays back the ground truth, judged by bfcl-eval's own checker; and the tiny model
run locally through the loop.

The playback endpoint is an OpenAI-compatible `/v1/chat/completions` server started here: it finds
the entry a request belongs to from its user turns, and answers the current turn's ground-truth
calls one step each, then a plain-text step that ends the turn. It also checks what the loop sends:
each step after a call carries the call's result as a tool message, and an entry is found only
where the functions are offered as BFCL offers them (a `miss_func` turn's from that turn on in
native mode, never in the system prompt in prompting mode)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import funreason

from funreason.calls import parse_python_calls
from funreason.evaluate import MULTI_TURN
from funreason.evaluate.conversation import Conversation, held_out_message, load_entries, step_limit
from funreason.evaluate.multi_turn import score_file
from funreason.llm import Generation

_BENCH = Path(__file__).resolve().parents[1] / "bench" / "agreement" / "multi_turn_agreement.py"
_spec = importlib.util.spec_from_file_location("funreason_bench_multi_turn_agreement", _BENCH)
agreement = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(agreement)

DONE = "All done."


def _same(call) -> str:
    """A played call compared as JSON (a tuple argument reads back as a list)."""
    return json.dumps(call, sort_keys=True)


class Playback:
    """The ground truth of `entries`, answered step by step to whoever asks (prompting or native)."""

    def __init__(self, entries, mode: str):
        self.mode = mode
        self.entries = entries
        self.problems: list[str] = []
        self.requests = 0
        self.lock = threading.Lock()

    def users(self, e) -> list[str]:
        """The user message of each turn, as the loop must send it."""
        return [held_out_message(self.mode, e.held_out[t]) if t in e.held_out else e.turns[t][0]["content"] for t in range(len(e.turns))]

    def reply(self, body: dict) -> dict:
        msgs = body["messages"]
        users = [m["content"] for m in msgs if m["role"] == "user"]
        turn = len(users) - 1
        last_user = max(i for i, m in enumerate(msgs) if m["role"] == "user")
        step = sum(m["role"] == "assistant" for m in msgs[last_user:])
        said = [_same(self.read(m)) for m in msgs if m["role"] == "assistant"]
        # the entry whose user turns these are and whose playback these assistant steps were
        candidates = [e for e in self.entries if self.users(e)[:len(users)] == users and self.played(e, turn, step) == said
                      and self.offers(e, body, turn)]
        answers = {json.dumps(self.answer(e, turn, step)) for e in candidates}
        if len(answers) != 1:
            raise AssertionError(f"{len(candidates)} entries match a request of turn {turn} (their user turns, the steps played "
                                 "and the functions offered): " + ("none" if not candidates else "the playback is ambiguous"))
        answer = json.loads(answers.pop())
        if step:  # the step before ran a call: its result must have come back as a tool message
            if msgs[-1]["role"] != "tool" or not msgs[-1]["content"]:
                self.problems.append(f"turn {turn} step {step}: no tool result after the call ({msgs[-1]['role']})")
            if self.mode == "native" and msgs[-1].get("tool_call_id") != msgs[-2]["tool_calls"][-1]["id"]:
                self.problems.append(f"turn {turn} step {step}: the tool result answers another call")
        with self.lock:
            self.requests += 1
        return self.completion(answer)

    def offers(self, e, body: dict, turn: int) -> bool:
        """Whether the request offers `e`'s functions as BFCL's handlers do at `turn`: prompting, the
        system prompt's functions (never the held-out ones); native, those and each held-out one from its turn on."""
        if self.mode == "native":
            offered = [t["function"]["name"] for t in body.get("tools", [])]
            due = [f["name"] for t, fs in sorted(e.held_out.items()) if t <= turn for f in fs]
        else:
            offered, due = re.findall(r'^ {8}"name": "(\w+)"', body["messages"][0]["content"], re.M), []
        return offered == [f["name"] for f in e.functions] + due

    def played(self, e, turn: int, step: int) -> list:
        """The steps this playback answered `e` with before step `step` of turn `turn`."""
        out = []
        for t in range(turn + 1):
            calls = agreement.keyword_calls(e.row, e.ground_truth[t])
            out += calls[:step] if t == turn else calls + [None]
        return [_same(x) for x in out]

    def read(self, m: dict):
        """An assistant message of the history as the call it plays back (None: the text step)."""
        if self.mode == "native":
            if not m.get("tool_calls"):
                return None
            (c,) = m["tool_calls"]
            return (c["function"]["name"], json.loads(c["function"]["arguments"]))
        if m["content"] == DONE:
            return None
        (c,) = parse_python_calls(m["content"])
        return (c.name, c.arguments)

    def answer(self, e, turn: int, step: int):
        calls = agreement.keyword_calls(e.row, e.ground_truth[turn])
        return calls[step] if step < len(calls) else None

    def completion(self, call) -> dict:
        if call is None:
            message = {"role": "assistant", "content": DONE}
        elif self.mode == "prompting":
            message = {"role": "assistant", "content": agreement.text([call])}
        else:
            name, args = call
            message = {"role": "assistant", "content": None,
                       "tool_calls": [{"id": f"x{self.requests}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}]}
        return {"id": "playback", "object": "chat.completion", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1}}


def serve(playback: Playback) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            try:
                data, status = json.dumps(playback.reply(body)).encode(), 200
            except Exception as e:  # said to the test through the problems list, and to the client as a 400
                playback.problems.append(f"{type(e).__name__}: {e}")
                data, status = json.dumps({"error": str(e)}).encode(), 400
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def official_verdicts(out: Path, categories: list[str]) -> dict[str, dict]:
    """bfcl-eval's own verdict per entry of the written result files (its checker, in its own process)."""
    rows = [{"category": c, "id": r["id"], "result": r["result"]} for c in categories
            for r in map(json.loads, (out / f"BFCL_v4_{c}_result.json").read_text().splitlines())]
    verdicts, _ = agreement.official(rows, sys.executable)
    return {r["id"]: v for r, v in zip(rows, verdicts)}


@pytest.mark.parametrize("mode, categories, limit", [("prompting", list(MULTI_TURN), 3),
                                                     ("native", ["multi_turn_base", "multi_turn_miss_func"], 2)])
def test_endpoint_playing_back_the_ground_truth_scores_as_the_official_checker(tmp_path, mode, categories, limit):
    entries = [e for c in categories for e in load_entries(c, "test", limit)]
    playback = Playback(entries, mode)
    server = serve(playback)
    out, ledger = tmp_path / "run", tmp_path / "ledger.jsonl"
    args = ("eval", "bfcl", "--endpoint", f"http://127.0.0.1:{server.server_address[1]}", "--served-model", "playback", "--mode", mode,
            "--split", "test", "--ledger", ledger, "--out", out, "--categories", ",".join(categories), "--limit", limit, "--concurrency", 8)
    try:
        proc = funreason(*args)
        asked = playback.requests
        funreason(*args)  # a second run finds every entry finished and asks nothing
    finally:
        server.shutdown()
    assert playback.requests == asked
    assert playback.problems == []
    assert asked >= sum(len(e.turns) for e in entries)
    report = json.loads((out / "report.json").read_text())
    official = official_verdicts(out, categories)
    assert len(official) == len(entries) and all(v["valid"] for v in official.values()), official
    for c in categories:  # our verdicts, entry by entry, are the official ones: all correct
        ours = score_file(c, out / f"BFCL_v4_{c}_result.json")
        assert {v["id"]: (v["valid"], v["error_type"]) for v in ours["entries"]} == {
            i: (v["valid"], v["error_type"]) for i, v in official.items() if i.startswith(c + "_")}
        assert report["categories"][c]["correct"] == report["categories"][c]["total"] == limit
        logs = [json.loads(line) for line in (out / f"BFCL_v4_{c}_conversations.jsonl").read_text().splitlines()]
        assert sorted(x["id"] for x in logs) == sorted(e.id for e in entries if e.id.startswith(c + "_"))
        for x in logs:  # the log holds each step's text, calls and results, and why each turn ended
            assert all(t["steps"][-1]["text"] == DONE and t["steps"][-1]["end"] == "no call" for t in x["turns"])
            assert all(len(s["calls"]) == len(s["results"]) == 1 for t in x["turns"] for s in t["steps"][:-1])
    assert report["summary"]["multi_turn_scored"] == 1.0 and report["bfcl_eval"]
    assert "Multi-turn overall" in proc.stdout and len(ledger.read_text().splitlines()) == 2  # each look at test entries, recorded
    # the folder is BFCL's result layout too: its own `bfcl evaluate` task reads the files
    layout = tmp_path / "bfcl" / "funreason" / "multi_turn"
    layout.mkdir(parents=True)
    for c in categories:
        (layout / f"BFCL_v4_{c}_result.json").write_text((out / f"BFCL_v4_{c}_result.json").read_text())
    import subprocess

    p = subprocess.run([sys.executable, str(agreement.OFFICIAL), "--result-dir", str(tmp_path / "bfcl"), "--score-dir", str(tmp_path / "score"),
                        "--categories", ",".join(categories)], capture_output=True, text=True, check=True)
    table = json.loads(p.stdout.splitlines()[-1])
    assert all(table[c]["accuracy"] == 1.0 and table[c]["total_count"] == limit for c in categories), table


def test_a_turn_past_the_step_limit_force_quits_the_entry():
    e = load_entries("multi_turn_base", "test", 1)[0]
    conv = Conversation(e, "prompting")
    for _ in range(step_limit() + 1):
        assert not conv.finished
        conv.answer(Generation("[pwd()]", "stop", 0, 0))
    # as BFCL's handler: the turn stops after MAXIMUM_STEP_LIMIT + 1 steps with calls and the later turns are never asked
    assert conv.finished and conv.force_quit and len(conv.result) == 1 < len(e.turns)
    assert len(conv.result[0]) == step_limit() + 1
    assert [m.role for m in conv.messages[-2:]] == ["assistant", "tool"]
    assert conv.record()["turns"][0]["steps"][-1]["end"].startswith("forced to quit")


def test_a_step_that_thinks_first_records_its_calls_and_keeps_the_reasoning_in_the_log():
    """A FunReason model writes `<think>…</think>` before its calls. As BFCL's handlers of reasoning
    models do, the result holds the step without its reasoning (the checker would not decode a step
    that opens with a think block), and the log keeps the reasoning."""
    e = load_entries("multi_turn_base", "test", 1)[0]
    conv = Conversation(e, "prompting")
    conv.answer(Generation("<think>The user wants the folder.</think>\n\n[pwd()]", "stop", 0, 0))
    assert conv.result[0] == ["[pwd()]"] and not conv.finished
    step = conv.record()["turns"][0]["steps"][0]
    assert step["reasoning"] == "The user wants the folder." and step["calls"] == [{"name": "pwd", "arguments": {}}]
    assert [m.role for m in conv.messages[-2:]] == ["assistant", "tool"] and "Error" not in conv.messages[-1].content


def test_a_held_out_function_is_offered_at_its_turn():
    e = next(x for x in load_entries("multi_turn_miss_func", "test", 5) if x.held_out)
    (turn, functions), = e.held_out.items()
    names = {f["name"] for f in functions}
    for mode in ("prompting", "native"):
        conv = Conversation(e, mode)
        assert not names & {t.name for t in conv.example().tools}
        while conv.turn < turn:
            conv.answer(Generation("nothing to call", "stop", 0, 0))
        assert conv.messages[-1].content == held_out_message(mode, functions)
        if mode == "native":
            assert names <= {t.name for t in conv.example().tools}
        else:  # prompting: the system prompt keeps its functions; the turn's message lists the new ones
            assert not names & {t.name for t in conv.example().tools} and all(n in conv.messages[-1].content for n in names)


def test_hostile_steps_run_nothing_and_come_back_as_unknown_functions(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    e = load_entries("multi_turn_base", "test", 1)[0]
    conv = Conversation(e, "prompting")
    conv.answer(Generation("[__import__('os').system('touch pwned')]", "stop", 0, 0))
    conv.answer(Generation("[open(file='pwned', mode='w')]", "stop", 0, 0))
    assert not (tmp_path / "pwned").exists()
    results = [r for t in conv.record()["turns"] for s in t["steps"] for r in s.get("results", [])]
    assert results == ["Error during execution: name 'system' is not defined", "Error during execution: name 'open' is not defined"]
    assert [m.role for m in conv.messages[-4:]] == ["assistant", "tool", "assistant", "tool"]  # each result went back to the model


def test_the_tiny_model_runs_through_the_loop_locally(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    proc = funreason("eval", "bfcl", "--model", tiny_model_dir, "--split", "test", "--ledger", tmp_path / "ledger.jsonl", "--out", out,
                     "--categories", "multi_turn_base,multi_turn_miss_func", "--limit", 1, "--max-tokens", 8, "--batch", 4)
    report = json.loads((out / "report.json").read_text())
    for c in ("multi_turn_base", "multi_turn_miss_func"):
        (row,) = [json.loads(line) for line in (out / f"BFCL_v4_{c}_result.json").read_text().splitlines()]
        entry = load_entries(c, "test", 1)[0]
        assert row["id"] == entry.id and isinstance(row["result"], list) and row["result"]
        assert all(isinstance(turn, list) and all(isinstance(step, str) for step in turn) and turn for turn in row["result"])
        # the log holds the same steps, turn by turn
        log = json.loads((out / f"BFCL_v4_{c}_conversations.jsonl").read_text())
        assert len(row["result"]) == len(log["turns"]) and [[s["text"] for s in t["steps"]] for t in log["turns"]] == row["result"]
        scored = score_file(c, out / f"BFCL_v4_{c}_result.json")
        assert scored["total"] == 1 and report["categories"][c]["total"] == 1
        assert report["categories"][c]["correct"] == scored["correct"]
    assert "multi_turn" in report["summary"] and "Multi-turn overall" in (out / "report.md").read_text()
    assert "split test" in proc.stdout


def test_report_and_compare_show_the_multi_turn_figures(tmp_path):
    import subprocess

    from funreason.evaluate.bfcl_run import aggregate, write_report

    def scores(correct):
        return {c: {"total": 5, "correct": k, "accuracy": k / 5, "entries": []} for c, k in zip(("simple_python", *MULTI_TURN[:3]), correct)}

    for name, correct in (("base", (3, 0, 0, 1)), ("trained", (4, 2, 1, 1))):
        (tmp_path / name).mkdir()
        write_report(tmp_path / name, scores(correct), {"model": name, "mode": "prompting", "split": "test", "bfcl_eval": "2026.3.23"})
    report = json.loads((tmp_path / "trained" / "report.json").read_text())
    # Multi-turn overall is the unweighted mean of the four, the one not run counting as 0, as on the leaderboard
    assert report["summary"]["multi_turn"] == (2 / 5 + 1 / 5 + 1 / 5 + 0) / 4
    assert report["summary"]["multi_turn_scored"] == (2 / 5 + 1 / 5 + 1 / 5) / 3
    assert report["summary"]["multi_turn_not_scored"] == ["multi_turn_long_context"]
    assert report["summary"] == aggregate(scores((4, 2, 1, 1))) and report["intervals"]["multi_turn_scored"]
    md = (tmp_path / "trained" / "report.md").read_text()
    assert "Multi-turn overall (mean of the four) | 20.00" in md and "bfcl-eval 2026.3.23" in md and "multi_turn_long_context" in md
    proc = subprocess.run([sys.executable, "-m", "funreason.cli", "eval", "compare", str(tmp_path / "base"), str(tmp_path / "trained"),
                           "--out", str(tmp_path / "cmp.png")], capture_output=True, text=True, check=True)
    assert "Multi-turn overall" in proc.stdout and "bfcl-eval" in proc.stdout and "multi_turn_miss_func" in proc.stdout
    # no multi-turn category, no multi-turn figures
    assert "multi_turn" not in aggregate({"simple_python": {"total": 5, "correct": 1, "accuracy": 0.2}})
