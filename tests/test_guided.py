"""Schema-guided decoding: the grammar allows the answers the BFCL checker takes, refuses the ones
it fails on form (an unknown name or keyword, a missing required argument, a value of another
type), leaves prose free, and the engine that follows it writes only what the grammar allows."""

from __future__ import annotations

import asyncio

import pytest

from funreason.calls import format_python_calls, parse_output
from funreason.llm.guided import Guide, call_grammar, think_tokens
from funreason.llm import SamplingParams
from funreason.llm.local import LocalEngine
from funreason.schema import Call, Tool

WEATHER = Tool("get_weather", "Weather for a city.", {
    "type": "dict", "required": ["city"], "properties": {
        "city": {"type": "string"}, "days": {"type": "integer"}, "unit": {"type": "string", "enum": ["C", "F"]},
        "hours": {"type": "array", "items": {"type": "float"}},
        "where": {"type": "dict", "properties": {"lat": {"type": "float"}, "lon": {"type": "float"}}, "required": ["lat"]}}})
ADD = Tool("math.add", "Add two numbers.", {"type": "dict", "required": ["a", "b"],
                                            "properties": {"a": {"type": "float"}, "b": {"type": "number"}, "exact": {"type": "boolean"}}})


def accepts(tokenizer, grammar: str, text: str) -> bool:
    m = Guide(tokenizer, len(tokenizer)).matcher(grammar)
    return m.consume_tokens(tokenizer(text, add_special_tokens=False)["input_ids"]) and m.is_accepting()


@pytest.mark.parametrize("text, ok", [
    ("[get_weather(city='Paris')]", True),
    ("[get_weather(city='Paris', days=3, unit='F', hours=[1.5, 2.0])]", True),
    ("[get_weather(city='Paris', where={'lat': 48.85, 'lon': 2.35})]", True),
    ("[get_weather(city='Paris'), math.add(a=1.0, b=2)]", True),
    ('[math.add(a=1e-05, b=-3, exact=True)]', True),
    ("<think>Paris is named.</think>\n\n[get_weather(city='Paris')]", True),
    ("I cannot help with that.", True),  # prose is the model's own
    ("[get_forecast(city='Paris')]", False),  # not a given function
    ("[get_weather(town='Paris')]", False),  # not one of its parameters
    ("[get_weather(days=3)]", False),  # the required city missing
    ("[get_weather(city='Paris', city='Rome')]", False),  # twice
    ("[get_weather(city='Paris', days=3.5)]", False),  # a float for an integer
    ("[get_weather(city='Paris', unit='K')]", False),  # not in the enum
    ("[get_weather(city='Paris', hours=[1, 2])]", False),  # ints in a list of floats (the checker's nested type check)
    ("[get_weather(city='Paris', where={'lat': 1.0, 'lat': 2.0})]", False),  # a dict key twice
    ("[math.add(a=1.0)]", False),
    ("[get_weather(city=Paris)]", False),  # not a literal
])
def test_the_call_grammar_takes_calls_that_fit_their_tools_and_refuses_the_rest(tokenizer, text, ok):
    assert accepts(tokenizer, call_grammar([WEATHER, ADD], think_tokens=think_tokens(tokenizer)), text) is ok


def test_without_prose_only_a_call_list_is_an_answer(tokenizer):
    assert not accepts(tokenizer, call_grammar([WEATHER], prose=False), "I cannot help with that.")
    assert accepts(tokenizer, call_grammar([WEATHER], prose=False), "[get_weather(city='Paris')]")
    assert not accepts(tokenizer, call_grammar([WEATHER], think=False), "<think>Paris.</think>\n\n[get_weather(city='Paris')]")
    with pytest.raises(ValueError, match="at least one tool"):
        call_grammar([])


def test_every_bfcl_reference_answer_written_in_declared_order_is_allowed(tokenizer):
    # the grammar must never keep a model from the right answer: every Python category's reference
    # calls (the first acceptable value of each argument, floats written as floats, arguments in
    # declared order) are taken by their entry's grammar, and the checker passes them; but for the
    # references whose value is not of its declared type (a variable's name for an array, strings
    # in a list of integers), which the checker takes and the grammar, keeping to the types, does not
    from funreason.evaluate.bfcl_checker import score_entry
    from funreason.evaluate.runner import load_category, prompt_tools

    guide = Guide(tokenizer, len(tokenizer))
    refused, off_type, checked = [], [], 0
    for category in ("simple_python", "multiple", "parallel", "parallel_multiple"):
        for ex in load_category(category, None):
            tools = {t.name: t for t in ex.tools}
            calls = []
            for c in ex.calls:
                props = tools[c.name].parameters["properties"]
                calls.append(Call(c.name, {k: _typed(c.arguments[k], props[k]) for k in props if k in c.arguments}))
            if not all(_fits(v, tools[c.name].parameters["properties"][k]) for c in calls for k, v in c.arguments.items()):
                off_type.append(ex.id)
            text = format_python_calls(calls)
            assert score_entry(category, text, [t.to_dict() for t in ex.tools], ex.possible_answer)["valid"], (ex.id, text)
            m = guide.matcher(call_grammar(prompt_tools(ex)))
            if not (m.consume_tokens(tokenizer(text, add_special_tokens=False)["input_ids"]) and m.is_accepting()):
                refused.append(ex.id)
            checked += 1
    assert checked == 1000 and len(off_type) < 5 and refused == off_type


def _fits(value, schema) -> bool:
    """Whether `value` is of the type `schema` declares (an int counts as a float)."""
    typ = schema.get("type")
    simple = {"string": str, "integer": int, "boolean": bool, "dict": dict}
    if typ in simple:
        return type(value) is simple[typ]
    if typ == "float":
        return type(value) in (int, float)
    if typ in ("array", "tuple"):
        return isinstance(value, list) and all(_fits(v, schema.get("items", {})) for v in value)
    return True


def _typed(value, schema):
    """`value` with its ints written as floats where `schema` declares a float (the checker takes
    either there; the grammar has floats written as floats), dict keys in declared order."""
    typ = schema.get("type") if isinstance(schema, dict) else None
    if typ == "float" and type(value) is int:
        return float(value)
    if typ in ("array", "tuple") and isinstance(value, list):
        return [_typed(v, schema.get("items", {})) for v in value]
    if typ == "dict" and isinstance(value, dict) and schema.get("properties"):
        props = schema["properties"]
        return {k: _typed(value[k], props[k]) for k in props if k in value} | {k: v for k, v in value.items() if k not in props}
    return value


def test_a_guided_engine_writes_only_calls_that_fit_even_from_a_random_model(tiny_model_dir):
    from funreason.fit import check_calls

    engine = LocalEngine.from_pretrained(str(tiny_model_dir), max_batch=4)
    grammar = call_grammar([WEATHER, ADD], prose=False, think=False)
    try:
        outs = engine.generate(["Weather in Paris?", "Add 2 and 3", "Hello", "Weather in Oslo?"],
                               SamplingParams(max_tokens=200, grammar=grammar))
    finally:
        engine.close()
    stopped = [g for g in outs if g.finish_reason == "stop"]
    assert stopped  # a random model left free never closes a call list; guided, it does
    for g in stopped:
        calls = parse_output(g.text).calls
        assert calls and check_calls(calls, [WEATHER, ADD]) is None, g.text
    for g in outs:  # an answer cut by the token budget is a beginning the grammar allows
        assert g.text.lstrip().startswith("[") and (g.finish_reason == "length" or g.text.rstrip().endswith(")]"))


def test_guided_decoding_leaves_an_answer_that_already_fits_as_it_is(trained_tiny_model_dir):
    from conftest import JOKE, PARIS, TOOLS

    from funreason.chat import render_prompt
    from funreason.schema import Example

    engine = LocalEngine.from_pretrained(str(trained_tiny_model_dir), max_batch=2)
    tools = [Tool.from_dict(TOOLS[0])]
    prompts = [render_prompt(Example.from_dict({"id": str(i), "tools": TOOLS, "messages": m}), engine.tokenizer)
               for i, m in enumerate([PARIS, JOKE])]
    try:
        free = [g.text for g in engine.generate(prompts, SamplingParams(max_tokens=60))]
        grammar = call_grammar(tools, think_tokens=think_tokens(engine.tokenizer))
        guided = [g.text for g in engine.generate(prompts, SamplingParams(max_tokens=60, grammar=grammar))]
    finally:
        engine.close()
    assert free[0].endswith("[get_weather(city='Paris')]") and not free[1].startswith("[")  # a think block and a call; prose
    assert guided == free


def test_guided_decoding_is_refused_where_it_cannot_run(tmp_path):
    from conftest import funreason

    from funreason.errors import BackendError
    from funreason.llm.http import HTTPBackend

    async def ask() -> None:  # refused before anything is sent: nothing listens on port 9
        async with HTTPBackend(["http://127.0.0.1:9/v1"], "m", max_retries=0) as llm:
            await llm.complete("x", SamplingParams(grammar=call_grammar([WEATHER])))

    with pytest.raises(BackendError, match="local model only"):
        asyncio.run(ask())
    proc = funreason("eval", "bfcl", "--endpoint", "http://127.0.0.1:9/v1", "--served-model", "m", "--out", tmp_path / "o",
                     "--guided", check=False)
    assert proc.returncode != 0 and "--guided runs on a local --model" in proc.stderr + proc.stdout
