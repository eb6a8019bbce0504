"""Readers and writers: xLAM, BFCL, OpenAI messages, datasets; bad rows located and kept."""

from __future__ import annotations

import json

import pytest

from funreason.errors import SchemaError
from funreason.formats import Reader, bfcl, read_examples, write_examples, xlam
from funreason.data.synth.kinds import generate
from funreason.schema import Call, Example, Message, Tool
from conftest import SAMPLE

XLAM_ROW = {
    "id": 0,
    "query": "Where can I find live giveaways for beta access and games?",
    "tools": json.dumps([{
        "name": "live_giveaways_by_type",
        "description": "Retrieve live giveaways from the GamerPower API based on the specified type.",
        "parameters": {
            "type": {"description": "The type of giveaways to retrieve (e.g., game, loot, beta).", "type": "str", "default": "game"},
            "platforms": {"description": "Platforms.", "type": "List[str], optional", "default": ["pc"]},
            "callback": {"description": "Odd xLAM type.", "type": "Callable[[int], int]"},
            "matrix": {"description": "Nested.", "type": "List[List[int]]", "items": {"custom": True}},
            "opts": {"description": "Options.", "type": "Dict[str, Any], optional", "enum": [1, 2]},
        },
    }]),
    "answers": json.dumps([
        {"name": "live_giveaways_by_type", "arguments": {"type": "beta"}},
        {"name": "live_giveaways_by_type", "arguments": {"type": "game", "platforms": ["pc", "ps5"]}},
    ]),
}


def _same_xlam(a: dict, b: dict) -> bool:
    return (
        a["id"] == b["id"] and a["query"] == b["query"] and a.get("reasoning") == b.get("reasoning")
        and json.loads(a["tools"]) == json.loads(b["tools"])
        and (a["answers"] == b["answers"] if not a["answers"].startswith("[") else json.loads(a["answers"]) == json.loads(b["answers"]))
    )


def test_xlam_parameters_become_json_schema():
    ex = xlam.from_row(XLAM_ROW, "x.jsonl:1")
    params = ex.tools[0].parameters
    assert params["type"] == "object"
    assert params["required"] == ["type", "callback", "matrix"]
    assert params["properties"]["type"] == {"type": "string", "description": XLAM_ROW and "The type of giveaways to retrieve (e.g., game, loot, beta).", "default": "game"}
    assert params["properties"]["platforms"]["type"] == "array"
    assert params["properties"]["platforms"]["items"] == {"type": "string"}
    assert ex.calls[1] == Call("live_giveaways_by_type", {"type": "game", "platforms": ["pc", "ps5"]})


def test_xlam_round_trip_is_lossless():
    assert _same_xlam(xlam.to_row(xlam.from_row(XLAM_ROW, "x:1")), XLAM_ROW)
    rows = generate(300, seed=7)
    for i, row in enumerate(rows):
        back = xlam.to_row(xlam.from_row(row, f"gen:{i}"))
        assert _same_xlam(back, row), i


def test_xlam_file_round_trip_through_writer(tmp_path):
    out = tmp_path / "back.jsonl"
    write_examples(read_examples(SAMPLE), out, "xlam")
    original = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    back = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(back) == len(original) == 300
    assert all(_same_xlam(a, b) for a, b in zip(back, original))


def test_xlam_json_array_file_like_the_60k_release(tmp_path):
    path = tmp_path / "xlam_function_calling_60k.json"
    path.write_text(json.dumps([XLAM_ROW, {**XLAM_ROW, "id": 1}]), encoding="utf-8")
    exs = read_examples(path)
    assert [e.id for e in exs] == ["0", "1"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([XLAM_ROW, {"id": 2, "query": "q", "tools": "[", "answers": "[]"}]), encoding="utf-8")
    with pytest.raises(SchemaError, match=r"bad\.json\[1\]: 'tools' is not valid JSON"):
        read_examples(bad)


BFCL_CATEGORIES = {
    "simple_python": 400, "simple_java": 100, "simple_javascript": 50, "multiple": 200,
    "parallel": 200, "parallel_multiple": 200, "irrelevance": 240, "live_simple": 258,
    "live_multiple": 1053, "live_parallel": 16, "live_parallel_multiple": 24,
    "live_irrelevance": 884, "live_relevance": 16,
}


def test_bfcl_every_single_turn_category_reads_with_its_answers():
    for category, count in BFCL_CATEGORIES.items():
        exs = read_examples(bfcl.question_file(category))
        assert len(exs) == count, category
        assert all(e.heldout and e.meta["category"] == category for e in exs)
        has_truth = bfcl.answer_file(bfcl.question_file(category)) is not None
        assert all((e.possible_answer is not None) == has_truth for e in exs), category


def test_bfcl_possible_answers_keep_every_acceptable_value():
    ex = read_examples(bfcl.question_file("simple_python"))[0]
    assert ex.id == "simple_python_0"
    assert ex.possible_answer == [{"calculate_triangle_area": {"base": [10], "height": [5], "unit": ["units", ""]}}]
    # canonical answer: optional 'unit' ("" acceptable) is left out
    assert ex.answer == [Call("calculate_triangle_area", {"base": 10, "height": 5})]
    nested = read_examples(bfcl.question_file("live_multiple"))[0]
    assert nested.answer[0].arguments["new_preferences"]["size"] == "large"


def test_bfcl_write_and_read_back(tmp_path):
    src = bfcl.question_file("parallel_multiple")
    exs = read_examples(src)[:20]
    out = tmp_path / "BFCL_v4_parallel_multiple.json"
    write_examples(exs, out, "bfcl")
    assert (tmp_path / "possible_answer" / out.name).exists()
    back = read_examples(out)
    assert [(e.id, e.tools, e.messages, e.possible_answer) for e in back] == [(e.id, e.tools, e.messages, e.possible_answer) for e in exs]
    # our own rows written as BFCL get a one-value-per-parameter ground truth
    ours = read_examples(SAMPLE)[:5]
    write_examples(ours, tmp_path / "ours.json", "bfcl")
    truth = [json.loads(l) for l in (tmp_path / "possible_answer" / "ours.json").read_text().splitlines()]
    assert truth[0]["ground_truth"] == [{c.name: {k: [v] for k, v in c.arguments.items()}} for c in ours[0].calls]


OPENAI_ROW = {
    "id": "conv-1",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Oslo and 5! please"},
        {"role": "assistant", "content": None, "reasoning_content": "Two calls.",
         "tool_calls": [
             {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}},
             {"id": "call_b", "type": "function", "function": {"name": "math.factorial", "arguments": "{\"n\": 5}"}},
         ]},
    ],
    "tools": [
        {"type": "function", "function": {"name": "get_weather", "description": "Weather.", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "math.factorial", "description": "n!", "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}},
    ],
}


def test_openai_both_directions(tmp_path):
    path = tmp_path / "chat.jsonl"
    path.write_text(json.dumps(OPENAI_ROW) + "\n", encoding="utf-8")
    (ex,) = read_examples(path)
    assert ex.reasoning == "Two calls."
    assert ex.answer == [Call("get_weather", {"city": "Oslo"}), Call("math.factorial", {"n": 5})]
    assert [m.role for m in ex.messages] == ["system", "user"]
    out = tmp_path / "back.jsonl"
    write_examples([ex], out, "openai")
    back = json.loads(out.read_text())
    assert back["messages"] == OPENAI_ROW["messages"]
    assert back["tools"] == OPENAI_ROW["tools"]
    # xLAM → OpenAI → record keeps the calls and reasoning
    sample = [e for e in read_examples(SAMPLE) if e.reasoning and e.calls][:10]
    write_examples(sample, tmp_path / "s.jsonl", "openai")
    again = read_examples(tmp_path / "s.jsonl")
    assert [(e.answer, e.reasoning, e.query) for e in again] == [(e.answer, e.reasoning, e.query) for e in sample]


def test_openai_prompting_style_content_becomes_calls_and_prose_a_statement(tmp_path):
    tools = OPENAI_ROW["tools"]
    rows = [
        {"messages": [{"role": "user", "content": "5!"}, {"role": "assistant", "content": "<think>easy</think>\n\n[math.factorial(n=5)]"}], "tools": tools},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello! No tool needed."}], "tools": tools},
    ]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    calls, statement = read_examples(path)
    assert calls.answer == [Call("math.factorial", {"n": 5})] and calls.reasoning == "easy"
    assert statement.answer == "Hello! No tool needed." and statement.is_statement


def test_native_round_trip_and_datasets_parquet(tmp_path):
    exs = read_examples(SAMPLE)[:30]
    native = tmp_path / "n.jsonl"
    write_examples(exs, native, "native")
    assert read_examples(native) == exs
    import datasets

    pq = tmp_path / "xlam.parquet"
    datasets.Dataset.from_list(generate(25, seed=3)).to_parquet(str(pq))
    from_pq = read_examples(pq)
    assert [e.to_dict() for e in from_pq] == [xlam.from_row(r, "r").to_dict() for r in generate(25, seed=3)]


def _mixed_file(tmp_path):
    good = json.loads(SAMPLE.read_text(encoding="utf-8").splitlines()[0])
    unknown_fn = {**XLAM_ROW, "id": 99, "answers": json.dumps([{"name": "no_such_tool", "arguments": {}}])}
    lines = [
        json.dumps(good).encode(),                                   # 1 valid
        b'{"id": 1, "query": "broken",',                             # 2 invalid JSON
        json.dumps({**XLAM_ROW, "id": 2, "tools": "not json"}).encode(),  # 3 tools not JSON
        json.dumps(unknown_fn).encode(),                             # 4 answer names unknown function
        b'{"id": 4, "query": "caf\xe9", "tools": "[]", "answers": "[]"}',  # 5 not UTF-8
        b"",                                                         # 6 empty line
        json.dumps({**XLAM_ROW, "id": 5, "query": "x" * (5 << 20)}).encode(),  # 7 a 5 MB line
        json.dumps({**XLAM_ROW, "id": 6}).encode(),                  # 8 valid
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_bad_rows_stop_the_read_with_file_line_and_reason(tmp_path):
    path = _mixed_file(tmp_path)
    with pytest.raises(SchemaError) as err:
        read_examples(path)
    assert err.value.where == f"{path}:2" and "invalid JSON" in err.value.reason


def test_skip_invalid_sets_every_bad_row_aside_and_loses_nothing(tmp_path):
    path = _mixed_file(tmp_path)
    rejected = tmp_path / "out" / "rejected.jsonl"
    reader = Reader(path, skip_invalid=True, rejected=rejected)
    kept = list(reader)
    assert [e.id for e in kept] == ["0", "6"]
    rows = [json.loads(l) for l in rejected.read_text(encoding="utf-8").splitlines()]
    by_line = {int(r["where"].rsplit(":", 1)[1]): r for r in rows}
    assert sorted(by_line) == [2, 3, 4, 5, 7]  # line 6 is blank: no row to lose
    assert "invalid JSON" in by_line[2]["reason"]
    assert "'tools' is not valid JSON" in by_line[3]["reason"]
    assert "no_such_tool" in by_line[4]["reason"] and "not among the tools" in by_line[4]["reason"]
    assert "UTF-8" in by_line[5]["reason"] and "caf\\xe9" in by_line[5]["raw"]
    assert "MiB" in by_line[7]["reason"] and "limit" in by_line[7]["reason"]
    assert reader.read_count + reader.rejected_count == 7 and reader.rejected_count == 5
    # the 5 MB row is fine when the limit allows it
    assert [e.id for e in Reader(path, skip_invalid=True, max_line_bytes=8 << 20)] == ["0", "5", "6"]


def test_record_validation_errors():
    tool = Tool("f", "", {"type": "object", "properties": {}})
    with pytest.raises(SchemaError, match="duplicate tool names: f"):
        Example("1", [tool, tool], [Message("user", "q")]).validate()
    with pytest.raises(SchemaError, match="no user turn"):
        Example("1", [tool], [Message("system", "s")]).validate()
    with pytest.raises(SchemaError, match="role must be one of"):
        Message.from_dict({"role": "robot", "content": "x"})


def test_the_documented_example_line_is_a_valid_record():
    from pathlib import Path

    page = (Path(__file__).parent.parent / "docs" / "data.md").read_text(encoding="utf-8")
    line = page.split("```json\n", 1)[1].split("\n```", 1)[0]
    ex = Example.from_dict(json.loads(line))
    assert ex.calls == [Call("get_weather", {"city": "Paris"})] and ex.tools[0].required == ["city"]


def _write_many(path: str, text: str, times: int) -> None:
    from funreason.formats.jsonl import write_text_atomic

    for _ in range(times):
        write_text_atomic(path, text)


def test_two_processes_writing_one_file_atomically_do_not_collide(tmp_path):
    # the ranks of one torchrun job record the same run.json at once; a shared temporary name let
    # one rename the other's file away (FileNotFoundError in CI)
    import multiprocessing

    path = tmp_path / "run.json"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(str(path), '{"rank": "same"}\n', 400)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert path.read_text() == '{"rank": "same"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]  # no temporary left behind


def test_a_tool_message_must_answer_a_call_before_it(tmp_path):
    """OpenAI's API refuses a tool message that follows no assistant turn, or whose tool_call_id is
    none of that turn's calls'. Read, such a conversation was learned with a result nobody asked
    for, without a word; now the row is refused with its line and the message. A prompting-style
    turn (its calls in its text) may be answered."""
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    call = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}
    ask, reply = {"role": "user", "content": "Weather in Paris?"}, {"role": "assistant", "content": "12 degrees."}
    rows = [
        {"id": "ok", "tools": tools, "messages": [ask, call, {"role": "tool", "tool_call_id": "c1", "content": "12"}, reply]},
        {"id": "no-id", "tools": tools, "messages": [ask, call, {"role": "tool", "content": "12"}, reply]},
        {"id": "prompting", "tools": tools, "messages": [ask, {"role": "assistant", "content": "[get_weather(city='Paris')]"},
                                                          {"role": "tool", "content": "12"}, reply]},
        {"id": "orphan", "tools": tools, "messages": [ask, {"role": "tool", "tool_call_id": "c1", "content": "12"}, reply]},
        {"id": "after-user", "tools": tools, "messages": [ask, call, {"role": "user", "content": "hm"}, {"role": "tool", "content": "12"}, reply]},
        {"id": "wrong-id", "tools": tools, "messages": [ask, call, {"role": "tool", "tool_call_id": "c9", "content": "12"}, reply]},
    ]
    path = tmp_path / "chats.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    reader = Reader(path, skip_invalid=True, rejected=tmp_path / "rejected.jsonl")
    assert [ex.id for ex in reader] == ["ok", "no-id", "prompting"]
    assert reader.first_errors == [
        f"{path}:4: message 1 (tool) answers no call: it does not follow an assistant turn",
        f"{path}:5: message 3 (tool) answers no call: it does not follow an assistant turn",
        f"{path}:6: message 2 (tool) has tool_call_id 'c9', which is none of the calls before it (c1)",
    ]


def test_a_native_record_whose_tool_message_answers_no_call_is_refused_too(tmp_path):
    """The rule is the record's (`Example.validate`), not only the OpenAI reader's: FunReason's own
    JSONL rows took such a conversation without a word."""
    tools = [{"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    call = {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "name": "get_weather", "arguments": {"city": "Paris"}}]}
    ask = {"role": "user", "content": "Weather in Paris?"}
    rows = [
        {"id": "ok", "tools": tools, "messages": [ask, call, {"role": "tool", "tool_call_id": "c1", "content": "12"}], "answer": "12 degrees."},
        {"id": "orphan", "tools": tools, "messages": [ask, {"role": "tool", "content": "12"}], "answer": "12 degrees."},
        {"id": "wrong-id", "tools": tools, "messages": [ask, call, {"role": "tool", "tool_call_id": "c9", "content": "12"}], "answer": "12 degrees."},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    reader = Reader(path, skip_invalid=True, rejected=tmp_path / "rejected.jsonl")
    assert [ex.id for ex in reader] == ["ok"]
    assert reader.first_errors == [
        f"{path}:2: message 1 (tool) answers no call: it does not follow an assistant turn",
        f"{path}:3: message 2 (tool) has tool_call_id 'c9', which is none of the calls before it (c1)",
    ]


def test_a_record_with_ids_on_one_side_is_written_as_a_row_openai_accepts(tmp_path):
    """Native records may give call ids only on the calls or only on the results. Written as OpenAI
    rows, each tool message is paired with its call (the k-th result after a turn answers its k-th
    call) and the side without an id takes the other's, so the row reads back; before, a result's
    own id beside a filled-in `call_0` made a row this reader refuses."""
    from funreason.formats import write_examples
    from funreason.schema import Example

    tools = [{"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    paris, oslo = {"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_weather", "arguments": {"city": "Oslo"}}
    ask = {"role": "user", "content": "Weather in Paris and Oslo?"}
    records = [
        {"id": "ids-on-results", "tools": tools, "answer": "12 and 3 degrees.", "messages": [
            ask, {"role": "assistant", "content": "", "tool_calls": [paris, oslo]},
            {"role": "tool", "tool_call_id": "abc", "content": "12"}, {"role": "tool", "tool_call_id": "def", "content": "3"}]},
        {"id": "ids-on-calls", "tools": tools, "answer": "12 and 3 degrees.", "messages": [
            ask, {"role": "assistant", "content": "", "tool_calls": [{**paris, "id": "p"}, {**oslo, "id": "o"}]},
            {"role": "tool", "content": "12"}, {"role": "tool", "content": "3"}]},
    ]
    out = tmp_path / "chats.jsonl"
    write_examples([Example.from_dict(r) for r in records], out, "openai")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # messages: the question, the turn with two calls, the two results (then the answer)
    pairs = [([c["id"] for c in r["messages"][1]["tool_calls"]], [m["tool_call_id"] for m in r["messages"][2:4]]) for r in rows]
    assert pairs == [(["abc", "def"], ["abc", "def"]), (["p", "o"], ["p", "o"])]
    assert [ex.id for ex in Reader(out)] == ["ids-on-results", "ids-on-calls"]  # read back: none refused
    assert all("_id_filled" not in json.dumps(r) for r in rows)


def test_a_clean_read_leaves_no_earlier_reads_rejects_behind(tmp_path):
    """Probe: the rejected file was opened only at the first reject, so after the input was mended
    an earlier read's rejected.jsonl stayed beside the new output, looking current."""
    good = {"id": "a", "query": "q", "tools": "[]", "answers": "[]"}
    data, rejected = tmp_path / "in.jsonl", tmp_path / "out" / "rejected.jsonl"
    data.write_text(json.dumps(good) + "\n" + '{"id": "b", "query": \n')
    reader = Reader(data, skip_invalid=True, rejected=rejected)
    assert len(list(reader)) == 1 and reader.rejected_count == 1 and len(rejected.read_text().splitlines()) == 1
    data.write_text(json.dumps(good) + "\n")
    reader = Reader(data, skip_invalid=True, rejected=rejected)
    assert len(list(reader)) == 1 and reader.rejected_count == 0 and not rejected.exists()
