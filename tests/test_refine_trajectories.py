"""FCDR over trajectories (issue 53, point 4): a conversation with three assistant turns (reasoning
and calls, calls after a tool error, a final statement) refined step by step, with the rule teacher
in process and served over HTTP, and with a scripted endpoint teacher; then `stats` and `train`.

Every teacher here is real: the rule program (`fcdr.rule_teacher`) called in process and behind a
real OpenAI-compatible server, and `tests/teachers.TeacherServer`, a real HTTP server.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from teachers import TeacherServer

from funreason.fcdr.prompts import functions_json, stage_prompt
from funreason.fcdr.rule_teacher import RuleTeacher, rule_teacher_app
from funreason.fcdr.runner import OUTCOMES, RefineConfig, run_refine
from funreason.fcdr.trajectory import conversation_steps
from funreason.schema import Call, Example, Message, Tool
from funreason.serve.app import BackgroundServer

WEATHER = Tool("get_weather", "Weather for a city.", {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
USER_TEXT = "What is the weather in Pariss, and should I take an umbrella?"
TOOL_ERROR = '{"error": "unknown city Pariss; did you mean Paris-Orly?"}'
TOOL_RESULT = '{"temperature": 14, "rain": "likely"}'
FINAL = "Take an umbrella: rain is likely in Paris-Orly (14 °C)."


def trip(id: str = "trip", second_city: str = "Paris-Orly", user: str = USER_TEXT, first_reasoning: str | None = None) -> Example:
    """Three assistant turns, none with reasoning: a call; a call after a tool error, whose value
    ('Paris-Orly') is in no user turn, only in the tool's error; a final statement."""
    return Example(id, [WEATHER], [
        Message("user", user),
        Message("assistant", "", tool_calls=[Call("get_weather", {"city": "Pariss"})], reasoning=first_reasoning),
        Message("tool", TOOL_ERROR, name="get_weather"),
        Message("assistant", "", tool_calls=[Call("get_weather", {"city": second_city})]),
        Message("tool", TOOL_RESULT, name="get_weather"),
    ], None, FINAL)


def ending_in_a_call(id: str, first: str, last: str, user: str = USER_TEXT) -> Example:
    """Three assistant turns, the last one a call (so it can be regenerated)."""
    return Example(id, [WEATHER], [
        Message("user", user),
        Message("assistant", "", tool_calls=[Call("get_weather", {"city": first})]),
        Message("tool", TOOL_ERROR, name="get_weather"),
        Message("assistant", "", tool_calls=[Call("get_weather", {"city": "Paris-Orly"})]),
        Message("tool", TOOL_RESULT, name="get_weather"),
    ], None, [Call("get_weather", {"city": last})])


def single_turn(id: str, city: str) -> Example:
    return Example(id, [WEATHER], [Message("user", USER_TEXT)], None, [Call("get_weather", {"city": city})])


def write(path: Path, rows: list[Example]) -> Path:
    path.write_text("".join(json.dumps(ex.to_dict(), ensure_ascii=False) + "\n" for ex in rows), encoding="utf-8")
    return path


def outputs(out: Path) -> dict[str, list[dict]]:
    return {name: [json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines() if line.strip()] for name in OUTCOMES}


def by_id(out: Path) -> dict[str, tuple[str, dict]]:
    return {row.get("id"): (name, row) for name, rows in outputs(out).items() for row in rows}


def steps_of(file: str, row: dict) -> list[tuple[int, str, str | None]]:
    records = row["meta"]["fcdr"]["steps"] if file == "kept" else row["steps"]
    return [(r["step"], r["outcome"], r.get("stage")) for r in records]


def cli_refine(inp: Path, out: Path, url: str, model: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "funreason.cli", "refine", str(inp), "--out", str(out), "--endpoint", url,
                           "--teacher-model", model, "--concurrency", "4", *extra], capture_output=True, text=True, timeout=300)


def test_each_step_is_judged_with_the_conversation_before_it_by_the_rule_teacher_in_process_and_over_http(tmp_path):
    rows = [trip(), trip("invented", second_city="Zanzibar Quux"), single_turn("no-history", "Paris-Orly"), single_turn("plain", "Pariss")]
    inp = write(tmp_path / "in.jsonl", rows)

    # what the teacher is shown for step 2: the conversation before it, as the student sees it
    step2 = conversation_steps(trip(first_reasoning="I look Pariss up.")).steps[1].example
    prompt = stage_prompt("query_tool", step2, functions_json(step2))
    assert "Conversation so far" in prompt and TOOL_ERROR in prompt and "[get_weather(city='Pariss')]" in prompt
    assert "I look Pariss up." not in prompt  # earlier reasoning is never shown back (chat.HISTORY_REASONING)
    # self-refinement's judge scores a sampled step with the same conversation before it
    scored = stage_prompt("score", step2, functions_json(step2), reasoning="I retry with Paris-Orly.")
    assert scored.index("Conversation so far") < scored.index("Query:") and TOOL_ERROR in scored and "I look Pariss up." not in scored
    single = single_turn("s", "Pariss")
    assert "Conversation so far" not in stage_prompt("query_tool", single, functions_json(single))

    async def in_process():
        return await run_refine(RefineConfig(str(inp), str(tmp_path / "local"), concurrency=4), RuleTeacher())

    report = asyncio.run(in_process())
    with BackgroundServer(rule_teacher_app()) as teacher:
        proc = cli_refine(inp, tmp_path / "http", teacher.url, "rule-teacher")
    assert proc.returncode == 0, proc.stderr[-2000:]
    # the same teacher in process and behind HTTP: the same files, line for line
    assert outputs(tmp_path / "local") == outputs(tmp_path / "http")

    found = by_id(tmp_path / "http")
    file, kept = found["trip"]
    assert file == "kept" and steps_of(file, kept) == [(1, "passed", "kept"), (2, "passed", "kept"), (3, "passed", "statement")]
    # the teacher wrote each step's reasoning given the history: the second opens with the tool error
    first, second = (m for m in kept["messages"] if m["role"] == "assistant")
    assert "So I call get_weather(city='Pariss')" in first["reasoning"]
    assert second["reasoning"].startswith("The last call failed") and "Paris-Orly" in second["reasoning"]
    assert kept["reasoning"] and "tool results" in kept["reasoning"] and kept["answer"] == FINAL
    assert [m["tool_calls"] for m in kept["messages"] if m["role"] == "assistant"] == [
        [{"name": "get_weather", "arguments": {"city": "Pariss"}}], [{"name": "get_weather", "arguments": {"city": "Paris-Orly"}}]]
    # 'Paris-Orly' is grounded by the earlier tool result; the same call asked without that history is not
    file, no_history = found["no-history"]
    assert file == "dropped" and no_history["stage"] == "query_tool" and "'Paris-Orly'" in no_history["teacher"]
    # a value found nowhere in the conversation drops it at the step that uses it, the step named
    file, invented = found["invented"]
    assert file == "dropped" and invented["stage"] == "query_tool" and invented["step"] == 2 and invented["kind"] == "teacher:fail"
    assert invented["why"].startswith("assistant turn 2 of 3: ") and "nor in the conversation" in invented["teacher"]
    assert steps_of(file, invented) == [(1, "passed", "kept"), (2, "dropped", "query_tool"), (3, "not_reached", None)]
    assert found["plain"][0] == "kept" and "steps" not in found["plain"][1]["meta"]["fcdr"]  # single-turn rows as before

    summary = json.loads((tmp_path / "http" / "report.json").read_text())
    expected_steps = {"judged": 7, "passed": 5, "regenerated": 0, "dropped": 2, "hard": 0, "not_reached": 1, "left_out": 0,
                      "dropped_by_stage": {"query_tool": 2}}
    assert summary["steps"] == expected_steps
    assert summary["conversations"] == {"kept": 2, "dropped": 2, "hard": 0, "multi_step": 2, "dropped_at_step": {"2": 1, "1": 1}}
    # this run's report counts the same, and the CLI prints it
    assert report.steps.to_dict()["steps"] == expected_steps
    assert "steps: judged 7 · passed 5 (0 after regeneration) · dropped 2 (query_tool 2)" in proc.stdout
    assert "conversations: kept 2 · dropped 2 · hard 0 (2 of more than one step)" in proc.stdout
    assert "dropped at assistant turn 2" in (tmp_path / "http" / "report.md").read_text()


def test_a_failing_step_is_regenerated_when_last_and_drops_the_conversation_when_later_turns_answer_it(tmp_path):
    """The scripted endpoint teacher fails any call with the value 'wrong' and regenerates it as
    'right' (never, when the query says NEVERFIX)."""
    rows = [trip(),
            ending_in_a_call("fix-last", "Pariss", "wrong"),  # the last step regenerated
            ending_in_a_call("bad-first", "wrong", "Paris-Orly"),  # a tool result answered the bad call: dropped
            ending_in_a_call("never", "Pariss", "wrong", user=USER_TEXT + " NEVERFIX"),  # still wrong after 3: hard
            single_turn("plain", "Pariss")]
    # the whole conversation in its messages, no answer apart: its last assistant message is the last step
    in_messages = ending_in_a_call("in-messages", "Pariss", "wrong")
    in_messages.messages.append(Message("assistant", "", tool_calls=in_messages.answer))
    in_messages.answer = None
    rows.append(in_messages)
    inp, out = write(tmp_path / "in.jsonl", rows), tmp_path / "out"
    with TeacherServer() as t:
        proc = cli_refine(inp, out, t.url, "teacher")
        assert proc.returncode == 0, proc.stderr[-2000:]
        asked = t.requests
        first_run = json.loads((out / "report.json").read_text())["this_run"]
        # resumed: every conversation is done, nothing is asked, the files stay as they are
        before = outputs(out)
        again = cli_refine(inp, out, t.url, "teacher")
        assert again.returncode == 0 and t.requests == asked and outputs(out) == before
        assert "this run 0 rows" in again.stdout
    found = by_id(out)
    keys = Counter(r.get("key") or r["meta"]["fcdr"]["key"] for rows in outputs(out).values() for r in rows)
    assert sum(keys.values()) == len(rows) and set(keys.values()) == {1}  # every row in exactly one file, once

    file, fixed = found["fix-last"]
    assert file == "kept" and fixed["answer"] == [{"name": "get_weather", "arguments": {"city": "right"}}]
    assert fixed["meta"]["fcdr"]["regenerations"] == 1
    assert [(s["step"], s["outcome"], s["regenerations"]) for s in fixed["meta"]["fcdr"]["steps"]] == [(1, "passed", 0), (2, "passed", 0), (3, "passed", 1)]

    file, bad = found["bad-first"]
    assert file == "dropped" and bad["step"] == 1 and bad["stage"] == "function_param" and bad["kind"] == "teacher:fail"
    assert bad["why"].startswith("assistant turn 1 of 3: the teacher judged the names or values wrong")
    assert steps_of(file, bad) == [(1, "dropped", "function_param"), (2, "not_reached", None), (3, "not_reached", None)]
    assert bad["example"]["messages"][1]["tool_calls"] == [{"name": "get_weather", "arguments": {"city": "wrong"}}]  # never rewritten

    file, never = found["never"]
    assert file == "hard" and never["step"] == 3 and len(never["attempts"]) == 4 and never["why"].startswith("assistant turn 3 of 3: ")
    assert steps_of(file, never) == [(1, "passed", "kept"), (2, "passed", "kept"), (3, "hard", "hard")]

    assert found["trip"][0] == "kept" and found["trip"][1]["reasoning"].startswith("The results so far answer")
    file, whole = found["in-messages"]
    assert file == "kept" and whole["answer"] is None and whole["messages"][-1]["tool_calls"] == [{"name": "get_weather", "arguments": {"city": "right"}}]
    assert [(s["step"], s["regenerations"]) for s in whole["meta"]["fcdr"]["steps"]] == [(1, 0), (2, 0), (3, 1)]
    summary = json.loads((out / "report.json").read_text())
    assert summary["steps"] == {"judged": 14, "passed": 12, "regenerated": 2, "dropped": 1, "hard": 1, "not_reached": 2, "left_out": 0,
                                "dropped_by_stage": {"function_param": 1}}
    assert summary["conversations"] == {"kept": 4, "dropped": 1, "hard": 1, "multi_step": 5, "dropped_at_step": {"1": 1}}
    assert first_run["llm_calls"]["write_reply_cot"] == 1  # the final statement's reasoning, written once
    assert "steps: judged 14 · passed 12 (2 after regeneration) · dropped 1 (function_param 1) · hard 1 · not reached 2" in proc.stdout
    assert dict(summary["funnel"])["kept calls (after stages 4–5)"] == summary["files"]["kept"]


def test_a_turn_training_cannot_learn_is_a_step_left_out_and_named(tmp_path):
    ex = trip("mixed")
    ex.messages[1].content = "Let me look that up."  # text and calls in one turn
    inp = write(tmp_path / "in.jsonl", [ex])

    async def go():
        return await run_refine(RefineConfig(str(inp), str(tmp_path / "out")), RuleTeacher())

    report = asyncio.run(go())
    file, row = by_id(tmp_path / "out")["mixed"]
    assert file == "kept" and steps_of(file, row) == [(1, "left_out", None), (2, "passed", "kept"), (3, "passed", "statement")]
    assert row["meta"]["fcdr"]["steps"][0]["why"] == "text and calls in one turn"
    assert report.steps.to_dict()["steps"]["left_out"] == 1


def test_an_earlier_turn_calling_a_function_not_on_offer_is_judged_and_drops_the_conversation(tmp_path):
    """Training leaves such a turn out, but its call would stay in the history of the turns after
    it: FCDR judges it (it is no step left out), and its failure drops the conversation."""
    ex = trip("forecast")
    ex.messages[1].tool_calls = [Call("get_forecast", {"city": "Pariss"})]
    inp = write(tmp_path / "in.jsonl", [ex])

    async def go():
        return await run_refine(RefineConfig(str(inp), str(tmp_path / "out")), RuleTeacher())

    asyncio.run(go())
    file, row = by_id(tmp_path / "out")["forecast"]
    assert file == "dropped" and row["step"] == 1 and "get_forecast" in row["why"], row
    assert (row["stage"], row["kind"]) == ("query_tool", "calls:unknown_function")
    assert steps_of(file, row)[1:] == [(2, "not_reached", None), (3, "not_reached", None)]


@pytest.mark.integration
def test_a_refined_conversation_goes_through_stats_and_train(tmp_path, tiny_model_dir, tokenizer):
    from funreason.chat import PROMPT, RESULT, THINK
    from funreason.train.data import build_features

    inp = write(tmp_path / "in.jsonl", [trip()])

    async def go():
        return await run_refine(RefineConfig(str(inp), str(tmp_path / "out")), RuleTeacher())

    asyncio.run(go())
    kept = tmp_path / "out" / "kept.jsonl"
    stats = subprocess.run([sys.executable, "-m", "funreason.cli", "stats", str(kept), "--tokenizer", str(tiny_model_dir), "--json"],
                           capture_output=True, text=True, timeout=300)
    assert stats.returncode == 0, stats.stderr[-2000:]
    per_turn = json.loads(stats.stdout)["per_turn"]
    assert {k: (c["think_segments"], c["result_segments"]) for k, c in per_turn.items()} == {"1": (1, 1), "2": (1, 1), "3": (1, 1)}

    # loss on none of the user's or the tools' tokens: they all lie in each row's prompt, the prefix an
    # engine asks the turn with, and every token of it is labelled prompt (no loss)
    from funreason.chat import assistant_turns, render_prompt

    ex = Example.from_dict(json.loads(kept.read_text()))
    features, report = build_features([ex], tokenizer, 4096)
    turns = assistant_turns(ex).examples
    assert report.turns == 3 and len(features) == len(turns) == 3
    for k, (feature, turn) in enumerate(zip(features, turns)):
        prompt = render_prompt(turn, tokenizer)
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        assert feature["input_ids"][: len(ids)] == ids and set(feature["segments"][: len(ids)]) == {PROMPT}
        assert USER_TEXT in prompt and (k == 0 or TOOL_ERROR in prompt) and (k < 2 or TOOL_RESULT in prompt)
        segments = feature["segments"][len(ids):]
        assert THINK in segments and RESULT in segments and PROMPT not in segments[: segments.index(RESULT)]
        learned = tokenizer.decode([i for i, s in zip(feature["input_ids"], feature["segments"]) if s in (THINK, RESULT)])
        assert learned.startswith("<think>") and (turn.reasoning or "") in learned
    train = subprocess.run([sys.executable, "-m", "funreason.cli", "train", "--model", str(tiny_model_dir), "--data", str(kept),
                            "--out", str(tmp_path / "run"), "--max-steps", "1", "--batch-size", "3", "--report-to", "none"],
                           capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr[-2000:]
    assert "3 assistant turns from 1 records" in train.stdout + train.stderr
