"""`funreason stats`: the paper's Table 1 (think / result segment tokens) for any dataset."""

from __future__ import annotations

import json

from conftest import SAMPLE, funreason as run

from funreason.data.synth import generate


def test_stats_json_on_the_bundled_sample(tiny_model_dir):
    st = json.loads(run("stats", "--tokenizer", tiny_model_dir, "--json").stdout)
    rows = generate(300, seed=0)
    assert st["rows"] == 300 and st["rejected"] == 0
    assert st["no_reasoning"] == sum("reasoning" not in r for r in rows)
    assert st["no_call"] == sum(not r["answers"].startswith("[") or r["answers"] == "[]" for r in rows)
    assert st["think"]["count"] == 300 - st["no_reasoning"] and st["result"]["count"] == 300
    assert st["think"]["mean"] > st["result"]["mean"] > 0
    assert st["think"]["median"] <= st["think"]["p90"] <= st["think"]["max"]
    table = run("stats", SAMPLE, "--tokenizer", tiny_model_dir).stdout
    assert "think" in table and "result" in table and "could not be parsed 0" in table


def test_a_turn_learned_once_because_another_conversation_opens_alike_is_counted(tmp_path, tiny_model_dir):
    """Two conversations that open with the same question and call: their first turn is one training
    row (`chat.learned_turns`), and `stats` says so. It counted one turn fewer without a word."""
    tools = [{"name": "get_weather", "description": "Weather of a city.",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
    opening = [{"role": "user", "content": "Weather in Paris?"},
               {"role": "assistant", "content": "", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
               {"role": "tool", "content": "12"}]
    rows = [{"id": f"c{i}", "tools": tools, "messages": opening, "answer": reply} for i, reply in enumerate(["12 degrees.", "It is 12."])]
    data = tmp_path / "conversations.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    st = json.loads(run("stats", data, "--tokenizer", tiny_model_dir, "--json").stdout)
    assert (st["rows"], st["turns"], st["turns_repeated"]) == (2, 3, 1)
    line = run("stats", data, "--tokenizer", tiny_model_dir).stdout
    assert "rows 2 · 3 assistant turns (1 more repeating one seen before, learned once)" in line, line
