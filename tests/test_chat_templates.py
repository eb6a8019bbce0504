"""Rendering on real chat templates and real vocabularies: no reasoning lost, one prompt for training
and inference, the documented boundary rule.

Templates: tests/data/chat-templates (Qwen2.5, Qwen3, Llama 3.1, DeepSeek-R1-Distill), each on its
model's vocabulary (tests/vocabularies.py), and SmolLM2-135M-Instruct's own template and vocabulary.
"""

from __future__ import annotations

import copy

import pytest

from funreason.calls import format_python_calls
from funreason.chat import PROMPT, RESULT, THINK, render_many, render_prompt
from funreason.schema import Call, Example, Message, Tool

from vocabularies import NAMES, PAIRS, template_tokenizer
from vocabularies import tokenizer as real_tokenizer



@pytest.fixture(scope="module", params=NAMES)
def tok(request):
    return template_tokenizer(request)


TOOL = Tool("get_weather", "Weather for a city.", {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
CALL = [Call("get_weather", {"city": "Paris"})]
CASES = {
    "reasoning and calls": Example("r", [TOOL], [Message("user", "Weather in Paris?")], "The user names Paris.", CALL),
    "a statement": Example("s", [TOOL], [Message("user", "Tell me a joke.")], "No function tells jokes.", "I can only look up the weather."),
    "no reasoning": Example("n", [TOOL], [Message("user", "Weather in Paris?")], None, CALL),
    "multi-turn with tool turns": Example("m", [TOOL], [
        Message("user", "Weather in Paris?"), Message("assistant", "", tool_calls=CALL),
        Message("tool", '{"temperature": 21}'), Message("user", "And in Rome?")],
        "Now the user names Rome.", [Call("get_weather", {"city": "Rome"})]),
}


def _text(tok, r, seg):
    return tok.decode([i for i, s in zip(r.input_ids, r.segments) if s == seg])


def _prompt_ids(tok, ex):
    return tok(render_prompt(ex, tok), add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("case", list(CASES))
def test_every_template_keeps_reasoning_and_answer_after_the_inference_prompt(tok, case):
    ex = CASES[case]
    r = render_many([ex], tok)[0]
    prompt = _prompt_ids(tok, ex)
    assert r.input_ids[: len(prompt)] == prompt and set(r.segments[: len(prompt)]) == {PROMPT}
    think, result = _text(tok, r, THINK), _text(tok, r, RESULT)
    answer = "[get_weather(city='Rome')]" if case.startswith("multi") else "[get_weather(city='Paris')]"
    if ex.reasoning is None:
        assert think == "" and answer in result
        return
    # the reasoning is trained whole under L_think, whatever the template does with assistant content
    assert ex.reasoning in think and think.rstrip(">").endswith("</think")
    assert (answer if ex.calls else ex.answer) in result
    assert tok.eos_token in result or "<|im_end|>" in result or "<|eot_id|>" in result


def test_prompt_is_a_token_prefix_of_training_on_all_300_sample_rows(tok, sample_examples):
    rendered = render_many(sample_examples, tok)
    for ex, r in zip(sample_examples, rendered):
        prompt = _prompt_ids(tok, ex)
        assert r.input_ids[: len(prompt)] == prompt, ex.id
        assert r.count(RESULT) > 0, ex.id
        assert (r.count(THINK) > 0) == (ex.reasoning is not None), ex.id
    reasoned = [r for ex, r in zip(sample_examples, rendered) if ex.reasoning]
    assert len(reasoned) == 142


def test_the_token_that_ends_think_belongs_to_the_segment_of_its_last_character(tok):
    """The boundary rule on real vocabularies: where `</think>` is an added token (Qwen3), or its `>` a
    token of its own (SmolLM2), it is wholly think; where `>` merges with the `\\n\\n` after it
    (Qwen2.5, Llama 3), that token ends in the result and is trained under L_result."""
    r = render_many([CASES["reasoning and calls"]], tok)[0]
    enc = tok(r.text[len(render_prompt(CASES["reasoning and calls"], tok)):], add_special_tokens=False)
    pieces = [tok.decode([i]) for i in r.input_ids[len(r.input_ids) - len(enc["input_ids"]):]]
    labels = r.segments[len(r.segments) - len(pieces):]
    close = next(i for i, p in enumerate(pieces) if ">" in p and "".join(pieces[: i + 1]).endswith(("</think>", "</think>\n\n", "</think>\n")))
    merged = pieces[close].startswith(">") and pieces[close].endswith("\n\n")
    assert merged == (tok.name_or_path.startswith(("qwen2.5", "llama3.1"))), pieces[close - 2: close + 2]
    assert labels[close] == (RESULT if merged else THINK) and labels[close - 1] == THINK
    if "</think>" in pieces:  # an added token
        assert pieces[close] == "</think>"


def test_a_trained_checkpoint_renders_tools_as_funreason_trained_it(trained_tiny_model_dir, sample_examples):
    """`apply_chat_template(messages, tools=…)` on the checkpoint `train` saved gives, on every sample
    row, exactly FunReason's `render_prompt`: an engine given `tools` prompts the model as trained."""
    from transformers import AutoTokenizer

    from funreason.chat import public_schema

    tok = AutoTokenizer.from_pretrained(trained_tiny_model_dir)
    for ex in sample_examples:
        tools = [{"type": "function", "function": public_schema(t)} for t in ex.tools]
        got = tok.apply_chat_template([m.to_dict() for m in ex.messages], tools=tools, tokenize=False, add_generation_prompt=True)
        assert got == render_prompt(ex, tok), ex.id
    # a system turn of the request follows the tools prompt, as render_prompt puts it
    ex = Example("sys", sample_examples[0].tools, [Message("system", "Be brief."), *sample_examples[0].messages])
    tools = [{"type": "function", "function": public_schema(t)} for t in ex.tools]
    assert tok.apply_chat_template([m.to_dict() for m in ex.messages], tools=tools, tokenize=False,
                                   add_generation_prompt=True) == render_prompt(ex, tok)


@pytest.mark.parametrize("pair", PAIRS, ids=[t for _, t in PAIRS])
def test_the_carried_template_equals_render_prompt_on_real_templates(pair, sample_examples):
    """The same on each real template, extended as `train` extends it (twice: extending is idempotent)."""
    from funreason.chat import carry_tools_prompt, public_schema

    tok = real_tokenizer(*pair)
    tok.chat_template = carry_tools_prompt(carry_tools_prompt(tok.chat_template))
    for ex in sample_examples:
        tools = [{"type": "function", "function": public_schema(t)} for t in ex.tools]
        got = tok.apply_chat_template([m.to_dict() for m in ex.messages], tools=tools, tokenize=False, add_generation_prompt=True)
        assert got == render_prompt(ex, tok), ex.id


def _history_rows() -> list[Example]:
    """Every bundled open-data row whose history holds an assistant turn with calls (glaive's among
    them), and a made-up one whose arguments need each literal form."""
    from funreason.data import bundled
    from funreason.formats import example_from_row
    from funreason.formats.jsonl import iter_json_rows

    rows = []
    for name in ("open_demo_train.jsonl", "open_demo_heldout.jsonl"):
        for where, raw in iter_json_rows(bundled(name)):
            ex = example_from_row(raw, where, "auto")
            if any(m.tool_calls for m in ex.messages):
                rows.append(ex)
    odd = {"s": "it's \"quoted\"\\ \n\t", "q": "it's", "n": None, "b": False, "i": -3, "f": 2.5e-07, "l": [1, "a", [True]],
           "d": {"k'": {"x": None}}}
    rows.append(Example("odd", [TOOL], [Message("user", "Go."), Message("assistant", "Calling.", tool_calls=[Call("get_weather", odd), *CALL]),
                                        Message("tool", "done"), Message("user", "Again.")], None, CALL))
    return rows


def test_the_carried_template_renders_earlier_calls_as_training_does(tok):
    """The checkpoint's template, given a history with `tool_calls` in FunReason's shape and in
    OpenAI's, renders exactly `render_prompt`'s prompt: an engine shows the model the calls it made."""
    from funreason.chat import carry_tools_prompt, public_schema

    tok = copy.copy(tok)
    tok.chat_template = carry_tools_prompt(tok.chat_template)
    rows = _history_rows()
    assert len(rows) > 1 and any(ex.id.startswith("glaive") for ex in rows)
    for ex in rows:
        tools = [{"type": "function", "function": public_schema(t)} for t in ex.tools]
        ours = [m.to_dict() for m in ex.messages]
        openai = [{**m, "tool_calls": [{"id": f"c{i}", "type": "function", "function": c} for i, c in enumerate(m["tool_calls"])]}
                  if m.get("tool_calls") else m for m in ours]
        want = render_prompt(ex, tok)
        # the calls of the history are in the prompt, written as the model writes them
        assert all(format_python_calls(m.tool_calls) in want for m in ex.messages if m.tool_calls), ex.id
        for shape in (ours, openai):
            assert tok.apply_chat_template(shape, tools=tools, tokenize=False, add_generation_prompt=True) == want, ex.id
    # OpenAI's arguments as a JSON string: the template says how to pass them instead of dropping them
    msgs = [{"role": "user", "content": "Go."}, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "content": "21"}]
    with pytest.raises(Exception, match="arguments must be an object"):
        tok.apply_chat_template(msgs, tools=[{"type": "function", "function": public_schema(TOOL)}], tokenize=False, add_generation_prompt=True)


def test_a_record_without_tools_is_asked_as_the_checkpoint_and_serve_ask_a_request_without_tools(tok):
    """No tools, no function-calling prompt, in training and serving alike: `render_prompt` of a
    tool-less record, the checkpoint's template given `tools=[]` or no tools, and the model's own
    template all render the same prompt, and it is a token prefix of the training row."""
    from funreason.chat import carry_tools_prompt, prompt_template, render

    own = copy.copy(tok)
    carried = copy.copy(tok)
    carried.chat_template = carry_tools_prompt(tok.chat_template)
    head = prompt_template().split("{functions}")[0]
    rows = [Example("chat", [], [Message("user", "Tell me a joke.")], "No tool is needed.", "Why did the chicken cross the road?"),
            Example("sys", [], [Message("system", "Be brief."), Message("user", "Hi."), Message("assistant", "Hello."),
                                Message("user", "How are you?")], None, "Well, thanks.")]
    for ex in rows:
        msgs = [m.to_dict() for m in ex.messages]
        want = render_prompt(ex, carried)
        assert head not in want and ex.messages[-1].content in want, ex.id
        assert want == own.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True), ex.id
        for tools in ([], None):
            assert carried.apply_chat_template(msgs, tools=tools, tokenize=False, add_generation_prompt=True) == want, (ex.id, tools)
        r = render(ex, carried)
        ids = _prompt_ids(carried, ex)
        assert r.input_ids[: len(ids)] == ids and str(ex.answer) in _text(carried, r, RESULT), ex.id
