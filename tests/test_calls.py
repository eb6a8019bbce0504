"""Parsing and formatting function calls: the three syntaxes, reasoning split, hostile input."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funreason.calls import (
    format_answer,
    format_json_calls,
    format_python_calls,
    format_tool_call_tags,
    parse_calls,
    parse_json_calls,
    parse_output,
    parse_python_calls,
    split_think,
)
from funreason.errors import ParseError
from funreason.schema import Call


def test_python_call_list_with_every_literal_kind():
    text = (
        "[get_weather(city='Paris', days=3), math.factorial(n=5), "
        "f(a=-1, b=-2.5e-3, c=None, d=True, e=False, g=[1, [2, {'k': (3, 4)}]], h={'x': {'y': 'z'}}, "
        "u='東京 – ünïcödé', v=\"it's\", w=+7)]"
    )
    calls = parse_python_calls(text)
    assert [c.name for c in calls] == ["get_weather", "math.factorial", "f"]
    assert calls[0].arguments == {"city": "Paris", "days": 3}
    assert calls[2].arguments == {
        "a": -1, "b": -0.0025, "c": None, "d": True, "e": False,
        "g": [1, [2, {"k": [3, 4]}]], "h": {"x": {"y": "z"}},
        "u": "東京 – ünïcödé", "v": "it's", "w": 7,
    }


def test_bare_call_tuple_and_empty_arguments():
    assert parse_python_calls("f(x=1)") == [Call("f", {"x": 1})]
    assert parse_python_calls("f(x=1), g()") == [Call("f", {"x": 1}), Call("g", {})]
    assert parse_python_calls("[]") == []


@pytest.mark.parametrize(
    "text, reason",
    [
        ("[f(1)]", "positional argument"),
        ("[f(x=g(y=1))]", "is a call"),
        ("[f(x=y)]", "bare name"),
        ("[f(x=1+2)]", "arithmetic"),
        ("[f(x=1, x=2)]", "given twice"),
        ("[f(**kw)]", "**kwargs"),
        ("[f(x={1, 2})]", "a set"),
        ("[f(x=b'raw')]", "bytes literal"),
        ("[f(x=-'a')]", "non-number"),
        ("[1, 2]", "expected a function call"),
        ("[f()(x=1)]", "dotted identifier"),
        ("[f(x=lambda: 0)]", "lambda"),
        ("[get - weather(x=1)]", "arithmetic"),  # a hyphenated name has no spaces in it
        ("[get-weather]", "arithmetic"),
        ("[(get)-weather(x=1)]", "arithmetic"),
        ("[get-\nweather(x=1)]", "arithmetic"),
        ("[get-class(x=1)]", "not a Python call list"),  # a keyword part: rename such a tool
        ("[f(x=1)", "not a Python call list"),
        ("", "empty"),
    ],
)
def test_python_rejections_say_why(text, reason):
    with pytest.raises(ParseError, match=re.escape(reason)):
        parse_python_calls(text)


def test_import_and_system_call_is_rejected_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    hostile = f"[__import__('os').system('touch {marker}')]"
    with pytest.raises(ParseError):
        parse_python_calls(hostile)
    with pytest.raises(ParseError):
        parse_python_calls(f"[f(x=__import__('os').system('touch {marker}'))]")
    assert not marker.exists()


def test_json_calls_with_object_or_string_arguments():
    text = '[{"name": "f", "arguments": {"a": 1}}, {"name": "g", "arguments": "{\\"b\\": [1, 2]}"}]'
    assert parse_json_calls(text) == [Call("f", {"a": 1}), Call("g", {"b": [1, 2]})]
    assert parse_json_calls('{"function": "h", "parameters": {"c": null}}') == [Call("h", {"c": None})]
    with pytest.raises(ParseError, match="not JSON"):
        parse_json_calls('[{"name": "f", "arguments": "{bad"}]')
    with pytest.raises(ParseError, match="has no 'name'"):
        parse_json_calls('[{"arguments": {}}]')


def test_tool_call_tags():
    text = 'Sure.\n<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>\n<tool_call>{"name": "g", "arguments": {}}</tool_call>'
    assert parse_calls(text) == [Call("f", {"a": 1}), Call("g", {})]
    with pytest.raises(ParseError, match="unclosed"):
        parse_calls('<tool_call>{"name": "f", "arguments": {}}</tool_call><tool_call>{"name": "g"')


def test_think_is_split_off_as_reasoning():
    out = parse_output("<think>The user wants Paris.</think>\n\n[get_weather(city='Paris')]")
    assert out.reasoning == "The user wants Paris."
    assert out.calls == [Call("get_weather", {"city": "Paris"})]
    assert split_think("no reasoning here") == (None, "no reasoning here")
    assert split_think("<think>cut short") == ("cut short", "")
    assert split_think("prompted think</think> [f()]") == ("prompted think", "[f()]")


def test_output_that_is_not_calls_comes_back_as_content():
    out = parse_output("<think>hmm</think>I cannot help with that.")
    assert out.calls is None and out.content == "I cannot help with that." and out.error


def test_code_fences_are_accepted():
    assert parse_calls("```python\n[f(a=1)]\n```") == [Call("f", {"a": 1})]
    assert parse_calls('```json\n[{"name": "f", "arguments": {"a": 1}}]\n```') == [Call("f", {"a": 1})]


def test_a_hyphenated_name_as_openai_and_mcp_tools_have_parses_and_round_trips():
    calls = [Call("get-weather", {"city": "Paris", "delta": -1}), Call("fs.list-files", {}), Call("a-b.c-d", {"x": "e-f(g=1)"})]
    text = format_python_calls(calls)
    assert text == "[get-weather(city='Paris', delta=-1), fs.list-files(), a-b.c-d(x='e-f(g=1)')]"
    assert parse_python_calls(text) == calls and parse_output(format_answer("why", calls)).calls == calls
    assert parse_python_calls("get-weather(city='Paris', delta=-1)") == calls[:1]  # a bare call too


def test_formats_round_trip():
    calls = [Call("get_weather", {"city": "São Paulo", "days": 3}), Call("m.f", {"x": [1.5, -2], "y": {"k": None}})]
    assert format_python_calls(calls) == "[get_weather(city='São Paulo', days=3), m.f(x=[1.5, -2], y={'k': None})]"
    for text in (format_python_calls(calls), format_json_calls(calls), format_tool_call_tags(calls)):
        assert parse_calls(text) == calls
    assert format_answer("why", calls).startswith("<think>why</think>\n\n[get_weather(")
    assert format_answer(None, "No tool fits.") == "No tool fits."


# --- properties ---------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.text(max_size=20) | st.floats(allow_nan=False)
json_values = st.recursive(
    json_scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)
identifiers = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True).filter(
    lambda s: s not in {"if", "in", "is", "or", "as", "def", "del", "for", "and", "not", "try", "with", "else", "elif", "from", "pass", "None", "True", "False", "class", "while", "yield", "break", "raise", "async", "await", "import", "lambda", "return", "global", "assert", "except", "finally", "continue", "nonlocal"}
)
call_strategy = st.builds(
    Call,
    # dotted and hyphenated names (`pkg.f`, OpenAI's and MCP's `get-weather`)
    name=st.tuples(identifiers, st.lists(st.tuples(st.sampled_from(".-"), identifiers), max_size=2)).map(
        lambda t: t[0] + "".join(sep + part for sep, part in t[1])),
    arguments=st.dictionaries(identifiers, json_values, max_size=4),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(call_strategy, max_size=4))
def test_any_formatted_call_list_parses_back(calls):
    assert parse_python_calls(format_python_calls(calls)) == calls
    assert parse_calls(format_tool_call_tags(calls)) == calls if calls else True


def test_a_tag_inside_an_argument_stays_inside_its_block():
    # found by the property above: a value holding "<tool_call>" or "</tool_call>" was read as a tag
    calls = [Call("note.save", {"text": "<tool_call>"}), Call("note.save", {"text": "a </tool_call> b", "n": 1})]
    tagged = format_tool_call_tags(calls)
    assert parse_calls(tagged) == calls
    out = parse_output(f"<think>two notes</think>Saving. {tagged} Done.")
    assert out.calls == calls and out.reasoning == "two notes" and out.content.split() == ["Saving.", "Done."]
    with pytest.raises(ParseError, match="unclosed"):
        parse_calls('<tool_call>{"name": "f", "arguments": {"x": "</tool_call>"}}')
    with pytest.raises(ParseError, match="not JSON"):  # JSON that does not read still ends at the first closing tag
        parse_calls('<tool_call>{"name": "f", "arguments": {x}}</tool_call>')


FRAGMENTS = [
    "[", "]", "(", ")", "{", "}", "f", "g.h", "=", "x", "'", '"', ",", ":", "-", "1", "2.5", "e9",
    "__import__('os')", ".system('rm -rf /')", "lambda: 0", "<think>", "</think>", "<tool_call>",
    "</tool_call>", " ", "\n", "\\", "\x00", "é", "東", "None", "True", "**", "*", "@", "#", "...",
    "f(x=", "f(x=g(y=1))", '{"name": "f", "arguments": ', "```", "0x1f", "1j", "b'x'", "f'{x}'",
]
hostile_text = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(FRAGMENTS), max_size=60).map("".join),
    st.integers(1, 20_000).map(lambda n: "[f(x=" + "[" * n + "]" * n + ")]"),
    st.integers(1, 20_000).map(lambda n: "[f(x=" + "-" * n + "1)]"),
    st.integers(1, 20_000).map(lambda n: "[f(x=" + "not " * n + "1)]"),
    st.integers(1, 20_000).map(lambda n: '[{"name": "f", "arguments": ' + '{"a": ' * n + "1" + "}" * n + "}]"),
    st.integers(1, 20_000).map(lambda n: "<tool_call>" + "[" * n),
    st.integers(1, 5_000).map(lambda n: "f." * n + "g()"),
    st.integers(1, 2_000).map(lambda n: "[f(x=" + "{'a': " * n + "1" + "}" * n + ")]"),
    st.just("[f(x='" + "a" * 10_000_000 + "')]"),
    st.just("(" * 10_000 + ")" * 10_000),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example, HealthCheck.data_too_large])
@given(hostile_text)
def test_hostile_input_only_ever_raises_parse_error(text):
    # How fast the parsers refuse such input is measured in bench/parse_throughput.py ("hostile"),
    # not asserted here: a wall-clock bound in a test fails on a loaded machine, not on a slow parser.
    for parse in (parse_calls, parse_python_calls, parse_json_calls, parse_output):
        try:
            result = parse(text)
        except ParseError:
            result = None
        if parse is parse_output:
            assert result is not None
        elif result is not None:
            assert all(isinstance(c, Call) for c in result)
