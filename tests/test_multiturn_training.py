"""Every assistant turn of a conversation is learned (issue 53): each in a row of its own, asked with
the history before it as every engine shows it (earlier reasoning dropped, earlier calls written as
the model writes them), think and result segments on that turn only, no loss on user or tool text.

Templates: tests/data/chat-templates (Qwen2.5, Qwen3, Llama 3.1, DeepSeek-R1-Distill) on their real
vocabularies, and SmolLM2-135M-Instruct's own.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from funreason.calls import format_answer
from funreason.chat import PROMPT, RESULT, THINK, TurnTally, assistant_turns, carry_tools_prompt, learned_turns, public_schema, render_prompt
from funreason.data.stats import compute_stats
from funreason.schema import Call, Example, Message, Tool
from funreason.train.data import build_features
from vocabularies import NAMES, template_tokenizer


WEATHER = Tool("get_weather", "Weather for a city.", {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
USER_TEXT = "What is the weather in Pariss, and should I take an umbrella?"
TOOL_ERROR = '{"error": "unknown city: Pariss"}'
TOOL_RESULT = '{"temperature": 14, "rain": "likely"}'
# three assistant turns: reasoning and calls; calls after a tool error; a final statement
CONVERSATION = Example("trip", [WEATHER], [
    Message("user", USER_TEXT),
    Message("assistant", "", tool_calls=[Call("get_weather", {"city": "Pariss"})], reasoning="The user names a city; look it up."),
    Message("tool", TOOL_ERROR),
    Message("assistant", "", tool_calls=[Call("get_weather", {"city": "Paris"})], reasoning="The tool did not know Pariss: Paris was meant."),
    Message("tool", TOOL_RESULT),
], "Rain is likely at 14 degrees.", "Take an umbrella: rain is likely in Paris (14 °C).")
TURNS = [("The user names a city; look it up.", "[get_weather(city='Pariss')]"),
         ("The tool did not know Pariss: Paris was meant.", "[get_weather(city='Paris')]"),
         ("Rain is likely at 14 degrees.", "Take an umbrella: rain is likely in Paris (14 °C).")]


@pytest.fixture(scope="module", params=NAMES)
def tok(request):
    return template_tokenizer(request)


def _labelled(tok, feature, segment) -> str:
    return tok.decode([i for i, s in zip(feature["input_ids"], feature["segments"]) if s == segment])


def test_three_assistant_turns_make_three_rows_each_learning_its_own_turn(tok):
    features, report = build_features([CONVERSATION], tok, 4096)
    assert report.rows == 1 and report.turns == 3 and report.kept == 3 and report.turns_left_out == 0
    turns = assistant_turns(CONVERSATION).examples
    for feature, ex, (reasoning, answer) in zip(features, turns, TURNS):
        prompt = tok(render_prompt(ex, tok), add_special_tokens=False)["input_ids"]
        # the prefix property: the prompt an engine asks this turn with is where the row starts, all of it without loss
        assert feature["input_ids"][: len(prompt)] == prompt and set(feature["segments"][: len(prompt)]) == {PROMPT}
        think, result = _labelled(tok, feature, THINK), _labelled(tok, feature, RESULT)
        assert reasoning in think and answer in result, (think, result)
        # no loss on what the user or the tools said, nor on another turn's reasoning
        learned = think + result
        assert USER_TEXT not in learned and TOOL_ERROR not in learned and TOOL_RESULT not in learned
        assert all(r not in learned for r, _ in TURNS if r != reasoning)
    # earlier reasoning is never shown back; earlier calls are, as the model wrote them
    last_prompt = render_prompt(turns[2], tok)
    assert TURNS[0][0] not in last_prompt and TURNS[1][0] not in last_prompt
    assert TURNS[0][1] in last_prompt and TURNS[1][1] in last_prompt
    # with last_turn_only, the old shape: one row, the last turn
    only, report = build_features([CONVERSATION], tok, 4096, last_turn_only=True)
    assert report.turns == 1 and len(only) == 1 and only[0] == features[2]


def _openai(turn: Example) -> tuple[list[dict], list[dict]]:
    """A turn's history and tools as an OpenAI client sends them: calls as `tool_calls`, reasoning as `reasoning_content`."""
    messages = [{"role": m.role, "content": m.content,
                 **({"tool_calls": [{"type": "function", "function": c.to_dict()} for c in m.tool_calls]} if m.tool_calls else {}),
                 **({"reasoning_content": m.reasoning} if m.reasoning else {})} for m in turn.messages]
    return messages, [{"type": "function", "function": public_schema(t)} for t in turn.tools]


@pytest.fixture(scope="module")
def open_conversations(fc_open):
    """Every multi-turn row of the open data: the bundled demo files' and all that the conversation
    readers make of the carried sources (glaive dialogues, ToolTalk, API-Bank), and the trip."""
    from funreason.data import bundled
    from funreason.data.open_sources import MULTI_TURN_SOURCES, read_source, source_folder
    from funreason.formats import example_from_row
    from funreason.formats.jsonl import iter_json_rows

    rows = [example_from_row(raw, where, "auto") for name in ("open_demo_train.jsonl", "open_demo_heldout.jsonl")
            for where, raw in iter_json_rows(bundled(name))]
    rows += [ex for s in MULTI_TURN_SOURCES for ex in read_source(s, source_folder(fc_open, s))[0]]
    return [ex for ex in rows if any(m.role == "assistant" for m in ex.messages)] + [CONVERSATION]


def test_every_template_asks_each_turn_of_the_open_data_with_a_prefix_of_its_row(tok, open_conversations):
    """All multi-turn rows of the open data: every turn's prompt is a token prefix of its row, and the
    checkpoint's template, given the history in OpenAI's shape, renders that prompt."""
    sources = {ex.meta.get("source") for ex in open_conversations}
    assert {"glaive-dialogues", "tooltalk", "api-bank"} <= sources and len(open_conversations) > 450
    turns = list(learned_turns(open_conversations, TurnTally()))  # the bundled glaive rows repeat their earlier turns
    features, report = build_features(open_conversations, tok, 1 << 16)
    # one row per turn, in order: none too long, none left out
    assert len(features) == len(turns) > 2500 and report.turns_left_out == 0, report.summary()
    prompts = [render_prompt(t, tok) for t in turns]
    carried = carry_tools_prompt(tok.chat_template)
    for turn, feature, prompt, ids in zip(turns, features, prompts, tok(prompts, add_special_tokens=False)["input_ids"]):
        assert feature["input_ids"][: len(ids)] == ids, turn.id
        messages, tools = _openai(turn)
        assert tok.apply_chat_template(messages, tools=tools, chat_template=carried, tokenize=False,
                                       add_generation_prompt=True) == prompt, turn.id


def test_the_checkpoint_template_writes_a_history_call_as_python_repr_does():
    """Found on ToolTalk's data: a zero-width joiner in a message (an emoji sequence) is written
    `\\u200d` by repr, and the carried template wrote it raw."""
    from vocabularies import PAIRS, tokenizer

    tok = tokenizer(*PAIRS[0])
    values = ["🧗\u200d♀", "a\xa0b\u2028c", "tab\there", "quote ' and \"", "é ü 中", "\x00\x7f\x9f\u00ad\ufeff"]
    ex = Example("reprs", [WEATHER], [Message("user", "Weather?"), Message("assistant", "", tool_calls=[Call("get_weather", {"city": v}) for v in values]),
                                      Message("tool", "{}")], None, "Done.")
    messages, tools = _openai(ex)
    shown = tok.apply_chat_template(messages, tools=tools, chat_template=carry_tools_prompt(tok.chat_template), tokenize=False,
                                    add_generation_prompt=True)
    assert shown == render_prompt(ex, tok) and "\\u200d" in shown and "\\xa0" in shown


def test_stats_count_the_segments_of_each_turn(tokenizer):
    st = compute_stats([CONVERSATION], tokenizer)
    assert st.rows == 1 and st.turns == 3
    assert {k: (c.turns, c.think_segments, c.result_segments) for k, c in st.per_turn.items()} == {1: (1, 1, 1), 2: (1, 1, 1), 3: (1, 1, 1)}
    assert all(c.think_tokens > 0 and c.result_tokens > 0 for c in st.per_turn.values())


def test_a_turn_with_text_and_calls_is_reported_not_dropped_silently():
    ex = Example("mixed", [WEATHER], [Message("user", "Weather?"), Message("assistant", "Let me look.", tool_calls=[Call("get_weather", {"city": "Rome"})]),
                                      Message("tool", "{}")], None, "Sunny.")
    turns = assistant_turns(ex)
    assert [t.id for t in turns.examples] == ["mixed"] and [str(x) for x in turns.left_out] == ["mixed assistant turn 1: text and calls in one turn"]


def test_reasoning_reads_from_openai_messages_and_never_shows_in_a_later_prompt(tokenizer):
    from funreason.formats.openai import from_row

    ex = from_row({"id": "o", "tools": [{"type": "function", "function": WEATHER.to_dict()}], "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "reasoning_content": "Look it up.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]},
        {"role": "tool", "content": "{}", "tool_call_id": "c1"},
        {"role": "assistant", "content": "<think>Nothing came back.</think>\n\nI could not find it."},
        {"role": "user", "content": "Try Milan."},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Milan"}'}}]},
    ]}, "rows.jsonl:1")
    assert [m.reasoning for m in ex.messages if m.role == "assistant"] == ["Look it up.", "Nothing came back."]
    prompt = render_prompt(ex, tokenizer)
    assert "Look it up." not in prompt and "Nothing came back." not in prompt and "I could not find it." in prompt
    first, second, last = assistant_turns(ex).examples
    assert format_answer(first.reasoning, first.answer) == "<think>Look it up.</think>\n\n[get_weather(city='Rome')]"
    assert format_answer(second.reasoning, second.answer) == "<think>Nothing came back.</think>\n\nI could not find it."
    assert last is ex
    # a native record whose history keeps a think block in its content shows only what follows it
    native = Example("n", [WEATHER], [Message("user", "Weather?"), Message("assistant", "<think>Hmm.</think>\n\nWhich city?"),
                                      Message("user", "Rome.")], None, [Call("get_weather", {"city": "Rome"})])
    shown = render_prompt(native, tokenizer)
    assert "Hmm." not in shown and "Which city?" in shown


@pytest.mark.integration
def test_train_learns_every_turn_of_a_conversation(tmp_path, tiny_model_dir):
    data = tmp_path / "trip.jsonl"
    data.write_text(json.dumps(CONVERSATION.to_dict()) + "\n")
    proc = subprocess.run([sys.executable, "-m", "funreason.cli", "train", "--model", str(tiny_model_dir), "--data", str(data),
                           "--out", str(tmp_path / "run"), "--max-steps", "1", "--batch-size", "3", "--report-to", "none"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "3 assistant turns from 1 records" in proc.stdout + proc.stderr


def test_a_turn_that_is_already_a_record_of_the_file_is_learned_once(tokenizer):
    """glaive's reader yields every target turn of a dialogue as its own record: the later record's
    earlier turn is that record again, and is learned once."""
    first = Example("d-1", [WEATHER], CONVERSATION.messages[:1], CONVERSATION.messages[1].reasoning, CONVERSATION.messages[1].tool_calls)
    features, report = build_features([first, CONVERSATION], tokenizer, 4096)
    assert report.rows == 2 and report.turns == 3 and report.turns_repeated == 1 and len(features) == 3
    assert "1 earlier turns repeat a record or turn seen before" in report.summary()


def test_an_earlier_turn_calling_a_function_not_on_offer_is_left_out_of_training_and_named():
    """Learned, such a turn teaches calling what is not on offer; it was learned without a word.
    (The record's own answer may not call one at all: `Example.validate` refuses it.) FCDR's view
    (`offered_only=False`) still has it, so that its query/tool stage judges the turn."""
    ex = Example("forecast", [WEATHER], [
        Message("user", USER_TEXT),
        Message("assistant", "", tool_calls=[Call("get_forecast", {"city": "Paris"})]),
        Message("tool", TOOL_RESULT),
    ], None, "Take an umbrella.")
    assert [t.id for t in assistant_turns(ex).examples] == ["forecast#turn1", "forecast"] and not assistant_turns(ex).left_out
    kept = assistant_turns(ex, offered_only=True)
    assert [t.id for t in kept.examples] == ["forecast"]
    assert [str(x) for x in kept.left_out] == ["forecast assistant turn 1: calls get_forecast, not among the tools"]
    count = TurnTally()
    assert [t.id for t in learned_turns([ex, CONVERSATION], count)] == ["forecast", "trip#turn1", "trip#turn2", "trip"]
    assert (count.turns, count.left_out, count.first_left_out) == (4, 1, ["forecast assistant turn 1: calls get_forecast, not among the tools"])
