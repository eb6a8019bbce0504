"""`funreason eval heldout`: exact-call accuracy on a split, written row by row, so a run stopped
midway resumes with the rows it finished; a folder made with other settings is refused."""

from __future__ import annotations

import json

from conftest import JOKE, PARIS, TOOLS, funreason

OSLO = [{"role": "user", "content": "Weather in Oslo?"}]
SPLIT = [
    {"id": "paris", "messages": PARIS + [{"role": "assistant", "content": "[get_weather(city='Paris')]"}], "tools": TOOLS},
    {"id": "joke", "messages": JOKE + [{"role": "assistant", "content": "I can only look up the weather."}], "tools": TOOLS},
    {"id": "oslo", "messages": OSLO + [{"role": "assistant", "content": "[get_weather(city='Oslo')]"}], "tools": TOOLS},
]


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_an_interrupted_run_resumes_with_the_rows_it_finished(tmp_path, trained_tiny_model_dir):
    split = tmp_path / "heldout.jsonl"
    split.write_text("".join(json.dumps(r) + "\n" for r in SPLIT))
    out = tmp_path / "eval"
    args = ["eval", "heldout", split, "--model", trained_tiny_model_dir, "--max-tokens", "24", "--batch", "2", "--out", out]
    proc = funreason(*args)
    first = rows(out / "heldout_results.jsonl")
    # the model learnt the Paris call and the joke's refusal, not Oslo (it says Paris there too)
    assert [(r["row"], r["id"], r["correct"]) for r in first] == [(0, "paris", True), (1, "joke", True), (2, "oslo", False)]
    assert "2/3" in proc.stdout and json.loads((out / "heldout.json").read_text())["correct"] == 2

    # a run killed after two answers: Oslo's answered as the reference (which this model never
    # writes), the joke not yet, and a line torn mid-write; a line at the joke's place that is
    # another row's answer (its id differs) is not the joke's and is never attached to it
    (out / "heldout.json").unlink()
    kept = [first[0], {**first[2], "output": "[get_weather(city='Oslo')]", "correct": False},
            {**first[1], "id": "another-row", "output": "[get_weather(city='Paris')]"}]
    (out / "heldout_results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept) + '{"row": 1, "id": "jo')
    proc = funreason(*args)
    again = rows(out / "heldout_results.jsonl")
    # the finished rows are kept (and scored again), only the joke is generated, the same as before
    assert [(r["row"], r["correct"], r["output"]) for r in again] == [
        (0, True, first[0]["output"]), (1, True, first[1]["output"]), (2, True, "[get_weather(city='Oslo')]")]
    assert "3/3" in proc.stdout


def test_a_folder_made_with_other_settings_is_refused(tmp_path, trained_tiny_model_dir):
    split = tmp_path / "heldout.jsonl"
    split.write_text("".join(json.dumps(r) + "\n" for r in SPLIT))
    out = tmp_path / "eval"
    args = ["eval", "heldout", split, "--model", trained_tiny_model_dir, "--batch", "2", "--out", out]
    funreason(*args, "--max-tokens", "24")
    before = (out / "heldout_results.jsonl").read_text()
    proc = funreason(*args, "--max-tokens", "8", check=False)  # its answers would be cut elsewhere: not reused
    assert proc.returncode != 0 and "max_tokens" in proc.stderr + proc.stdout
    assert (out / "heldout_results.jsonl").read_text() == before
    split.write_text("".join(json.dumps(r) + "\n" for r in SPLIT[:2]))  # another split into the same folder
    proc = funreason(*args, "--max-tokens", "24", check=False)
    assert proc.returncode != 0 and "data_sha256" in proc.stderr + proc.stdout


def test_a_conversation_is_asked_at_every_assistant_turn_with_the_gold_history(tmp_path, trained_tiny_model_dir):
    """issue 53: a whole conversation (as `data mix --multi-turn` writes it) is scored per assistant
    turn, each asked with the gold history before it; single-turn rows are asked once, as before."""
    trip = {"id": "trip", "tools": TOOLS, "meta": {"conversation": "whole"},
            "messages": PARIS + [{"role": "assistant", "content": "", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
                                 {"role": "tool", "content": '{"temperature": 14}'}] + JOKE,
            "answer": "I can only look up the weather."}
    # a turn with text and calls together has no one answer to compare: not asked, and named as such
    chatty = {**trip, "id": "chatty", "messages": [trip["messages"][0], {**trip["messages"][1], "content": "Let me look."}, *trip["messages"][2:]]}
    split = tmp_path / "heldout.jsonl"
    split.write_text("".join(json.dumps(r) + "\n" for r in [*SPLIT, trip, chatty]))
    out = tmp_path / "eval"
    proc = funreason("eval", "heldout", split, "--model", trained_tiny_model_dir, "--max-tokens", "24", "--batch", "2", "--out", out)
    got = rows(out / "heldout_results.jsonl")
    singles, turns, chatty_turns = got[:3], got[3:5], got[5:]
    assert [(r["id"], r["turn"]) for r in chatty_turns] == [("chatty", 2)]
    assert [(r["id"], r["correct"]) for r in singles] == [("paris", True), ("joke", True), ("oslo", False)]
    assert all("turn" not in r for r in singles)
    # turn 1 is asked exactly as the single-turn Paris row (same tools, same history): the same answer
    assert [(r["id"], r["turn"]) for r in turns] == [("trip#turn1", 1), ("trip", 2)]
    assert turns[0]["output"] == singles[0]["output"] and turns[0]["correct"]
    from funreason.evaluate.heldout import is_correct
    from funreason.schema import Example

    last = Example.from_dict(trip)
    assert turns[1]["correct"] == is_correct(turns[1]["output"], last)
    score = json.loads((out / "heldout.json").read_text())
    right2 = int(turns[1]["correct"])
    right3 = int(chatty_turns[0]["correct"])
    assert score["total"] == 6 and score["correct"] == 3 + right2 + right3
    assert {k: (v["correct"], v["total"]) for k, v in score["per_turn"].items()} == {"1": (1, 1), "2": (right2 + right3, 2)}
    assert score["left_out"] == ["chatty assistant turn 1: text and calls in one turn"]
    assert "1 turns not asked (text and calls in one turn: 1)" in proc.stdout and "heldout.json names them" in proc.stdout
    lo, hi = score["per_turn"]["1"]["interval"]
    assert 0.2 < lo < 0.21 and hi == 1.0  # Wilson's 95% interval of 1/1
    assert "exact calls per assistant turn" in proc.stdout and "1/1" in proc.stdout


def test_per_turn_asks_a_conversation_a_user_brings_at_each_of_its_turns(tmp_path, trained_tiny_model_dir):
    """`--per-turn`: a conversation without the `data mix` mark (three assistant turns: a call, a call
    after a tool error, a final statement) is asked at each turn with the gold history before it;
    single-turn rows are asked once and stay out of the per-turn table. Without it, once."""
    from test_refine_trajectories import trip

    from funreason.evaluate.heldout import is_correct
    from funreason.schema import Example

    conversation = trip().to_dict()
    assert "conversation" not in conversation.get("meta", {})
    split = tmp_path / "heldout.jsonl"
    split.write_text("".join(json.dumps(r) + "\n" for r in [*SPLIT, conversation]))
    once = funreason("eval", "heldout", split, "--model", trained_tiny_model_dir, "--max-tokens", "24", "--batch", "4", "--out", tmp_path / "once")
    assert [r["id"] for r in rows(tmp_path / "once" / "heldout_results.jsonl")] == ["paris", "joke", "oslo", "trip"]
    assert "per_turn" not in json.loads((tmp_path / "once" / "heldout.json").read_text()) and "per assistant turn" not in once.stdout

    out = tmp_path / "per-turn"
    proc = funreason("eval", "heldout", split, "--model", trained_tiny_model_dir, "--max-tokens", "24", "--batch", "4", "--out", out, "--per-turn")
    got = rows(out / "heldout_results.jsonl")
    assert [(r["id"], r.get("turn")) for r in got] == [("paris", None), ("joke", None), ("oslo", None),
                                                       ("trip#turn1", 1), ("trip#turn2", 2), ("trip", 3)]
    # each turn is scored against its own gold answer: the calls of turns 1 and 2, the statement of turn 3
    turns = {1: Example("t1", [], [], None, trip().messages[1].tool_calls), 2: Example("t2", [], [], None, trip().messages[3].tool_calls),
             3: trip()}
    assert [r["correct"] for r in got[3:]] == [is_correct(r["output"], turns[r["turn"]]) for r in got[3:]]
    score = json.loads((out / "heldout.json").read_text())
    assert {k: (v["correct"], v["total"]) for k, v in score["per_turn"].items()} == {str(r["turn"]): (int(r["correct"]), 1) for r in got[3:]}
    assert score["total"] == 6
    assert "exact calls per assistant turn" in proc.stdout
    assert f"held-out exact calls {score['correct']}/6 = " in proc.stdout and "(95% interval [" in proc.stdout, proc.stdout
    table = [line for line in proc.stdout.splitlines() if "/1" in line]
    assert [line.split()[1] for line in table] == ["1", "2", "3"], proc.stdout


def test_a_row_without_a_reference_answer_is_named_and_its_earlier_turns_are_asked(tmp_path):
    """A conversation that ends on a user turn has no gold answer for the model's next turn: that
    turn is named in `left_out` ("no reference answer"), its earlier assistant turns are still asked
    (with `--per-turn`, as training learns them), and the row takes its place under `--limit`. They
    were all skipped without a word, and the row did not count toward `--limit`."""
    from funreason.evaluate.heldout import heldout_examples

    open_end = {"id": "open-end", "tools": TOOLS, "messages": [
        *PARIS, {"role": "assistant", "content": "[get_weather(city='Paris')]"}, {"role": "tool", "content": "12"},
        {"role": "assistant", "content": "It is 12 degrees."}, {"role": "user", "content": "Thanks!"}]}
    lone = {"id": "lone", "tools": TOOLS, "messages": OSLO}  # no assistant turn at all, nothing to ask
    split = tmp_path / "split.jsonl"
    split.write_text("".join(json.dumps(r) + "\n" for r in [open_end, lone, *SPLIT]))

    got = heldout_examples(split, None, tmp_path / "rejected.jsonl", per_turn=True)
    assert sorted((ex.id, ex.meta.get("turn")) for _, ex in got.rows) == [
        ("joke", None), ("open-end#turn1", 1), ("open-end#turn2", 2), ("oslo", None), ("paris", None)]
    assert got.left_out == ["open-end assistant turn 3: no reference answer", "lone assistant turn 1: no reference answer"]
    # without --per-turn the unmarked conversation is asked once, at its answer: it has none, and says so
    once = heldout_examples(split, 3, tmp_path / "rejected.jsonl")
    assert [ex.id for _, ex in sorted(once.rows)] == ["paris"]
    assert once.left_out == ["open-end assistant turn 3: no reference answer", "lone assistant turn 1: no reference answer"]


def test_a_turn_calling_a_function_not_on_offer_is_named_not_asked(tmp_path):
    """No answer under the row's tools could match such a reference turn (guided decoding cannot
    even write it): it is named in `left_out`, as training leaves it out, and the turns around it
    are asked."""
    from funreason.evaluate.heldout import heldout_examples

    call = {"id": "c1", "type": "function", "function": {"name": "get_forecast", "arguments": '{"city": "Paris"}'}}
    row = {"id": "forecast", "tools": TOOLS, "messages": [
        *PARIS, {"role": "assistant", "content": None, "tool_calls": [call]}, {"role": "tool", "content": "12", "tool_call_id": "c1"},
        {"role": "assistant", "content": "It is 12 degrees."}]}
    split = tmp_path / "split.jsonl"
    split.write_text(json.dumps(row) + "\n")
    got = heldout_examples(split, None, tmp_path / "rejected.jsonl", per_turn=True)
    assert [(ex.id, ex.meta.get("turn")) for _, ex in got.rows] == [("forecast", 2)]
    assert got.left_out == ["forecast assistant turn 1: calls get_forecast, not among the tools"]

