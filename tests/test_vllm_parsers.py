"""The vLLM parser plugin (`funreason.serve.vllm_parsers`) streamed equals it whole (issue 55, M7).

vLLM's real parser classes come from its wheel (fetched once into the user cache by
`bench/agreement/vllm_parsers_check.py`'s `fetch`, as the bench does) and run in a child process
with only that on its path. Each answer shape of `ANSWERS` there (the review's six M7 shapes among
them) goes through the plugin as vLLM's chat endpoint drives it: `Parser.parse` on the whole text,
and `Parser.parse_delta` one token at a time with `finished` on the last, the end-of-stream signal
vLLM's `ChatStreamProcessor` gives. The reassembled stream must equal the whole parse.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from funreason.models.get import cache_dir

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench" / "agreement"
VLLM = "0.33.0"

CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from transformers import AutoTokenizer
from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
from vllm.parser.parser_manager import ParserManager
from funreason.serve import vllm_parsers  # noqa: F401  (registers "funreason", as the plugin flag does)
from vllm_parsers_check import ANSWERS, parse_stream, parse_whole

tok = AutoTokenizer.from_pretrained(sys.argv[2])
tools = [{"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}} for n in ("get_weather", "plan")]
request = ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "q"}], tools=tools)
prompt = tok(tok.apply_chat_template([{"role": "user", "content": "Weather in Paris?"}], tokenize=False, add_generation_prompt=True),
             add_special_tokens=False)["input_ids"]
out = {}
for pairing, reasoning in (("funreason + funreason", "funreason"), ("funreason tool parser alone", None)):
    cls = ParserManager.get_parser(tool_parser_name="funreason", reasoning_parser_name=reasoning, enable_auto_tools=True, tokenizer=tok)
    for name, text in ANSWERS.items():
        if reasoning is None:  # no reasoning parser: the tool parser reads the answer after the think block
            text = text.split("</think>", 1)[1].lstrip()
        ids = prompt + tok("<think>\n", add_special_tokens=False)["input_ids"] if name.startswith("R1") else prompt
        out[f"{pairing} | {name}"] = {"whole": parse_whole(cls(tok, request.tools), tok, text, ids, request),
                                      "streamed": parse_stream(cls(tok, request.tools), tok, text, ids, request)}
# when the first content of a statement reaches the client, in tokens of the answer
cls = ParserManager.get_parser(tool_parser_name="funreason", reasoning_parser_name="funreason", enable_auto_tools=True, tokenizer=tok)
for name in ("statement", "call list then prose", "two JSON objects on two lines", "statement in a code fence", "statement starting with [Note]"):
    parser, text = cls(tok, request.tools), ANSWERS[name]
    ids, prev, first = tok(text, add_special_tokens=False)["input_ids"], "", None
    for i in range(1, len(ids) + 1):
        cur = tok.decode(ids[:i])
        delta = parser.parse_delta(cur[len(prev):], ids[i - 1:i], request, prompt, finished=i == len(ids))
        prev = cur
        if first is None and delta is not None and delta.content and delta.content.strip():
            first = i
    out[f"first content | {name}"] = {"token": first, "of": len(ids)}
print(json.dumps(out))
"""


def _vllm_path() -> Path:
    """vLLM's wheel and its parsers' imports, unpacked into the user cache (fetched on first use)."""
    sys.path.insert(0, str(BENCH))
    try:
        import vllm_parsers_check
    finally:
        sys.path.remove(str(BENCH))
    return vllm_parsers_check.fetch(cache_dir() / "vllm", VLLM)


@pytest.fixture(scope="module")
def parsed(tiny_model_dir) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_vllm_path()), str(ROOT / "src")]), "VLLM_LOGGING_LEVEL": "ERROR"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(BENCH), str(tiny_model_dir)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


M7 = ["two <tool_call> blocks", "call list then prose", "bare call", "two JSON objects on two lines",
      "statement in a code fence", "statement starting with [Note]"]


def test_vllm_plugin_stream_equals_whole_on_every_answer_shape(parsed):
    """Every shape, through the plugin with and without its reasoning parser: the client that
    streams gets what the client that does not gets (reasoning, content, calls)."""
    shapes = {k: v for k, v in parsed.items() if not k.startswith("first content")}
    differ = {k: v for k, v in shapes.items() if v["streamed"] != v["whole"]}
    assert not differ, json.dumps(differ, indent=1)
    assert all(f"funreason + funreason | {m}" in parsed for m in M7)  # the review's shapes are among them


def test_vllm_plugin_streams_statements_that_look_like_calls(parsed):
    """The code fence and the `[Note]` statement reach a streaming client as content, in full."""
    for m in ("statement in a code fence", "statement starting with [Note]", "call list then prose", "two JSON objects on two lines"):
        got = parsed[f"funreason + funreason | {m}"]["streamed"]
        assert got["calls"] == [] and got["content"] and len(got["content"]) > 20, (m, got)
    two = parsed["funreason + funreason | two <tool_call> blocks"]["streamed"]["calls"]
    assert two == [["get_weather", {"city": "Paris"}], ["get_weather", {"city": "Rome"}]]
    assert parsed["funreason + funreason | bare call"]["streamed"]["calls"] == [["get_weather", {"city": "Paris"}]]


def test_vllm_plugin_sends_a_statement_once_it_cannot_be_calls(parsed):
    """A statement is not held to the end: its content goes out while it is being generated."""
    for name in ("statement", "call list then prose", "two JSON objects on two lines", "statement in a code fence",
                 "statement starting with [Note]"):
        got = parsed[f"first content | {name}"]
        assert got["token"] is not None and got["token"] < got["of"] - 3, (name, got)


CALL_TEXTS = ["[get_weather(city='Paris')]", "get_weather(city='Paris')", "get_weather (city = 'Pa)ris'), math.f(n=5)",
              '{"name": "get_weather", "arguments": {"city": "Par}is"}}', '[{"name": "f", "arguments": "{\\"a\\": 1}"}]',
              "```python\n[get_weather(city='Paris')]\n```", "```\nget_weather(city='Paris')\n```",
              '```json\n{"name": "f", "arguments": {}}\n```', "[f(a='''x\n]'''), g(b=\"\\\")\")]",
              "[f(a=1),  # first ]\n g(b=2)]", "a . b (c=1)", "[f(a=1)]  # done", "``````\n[f(a=1)]\n``````",
              "get-weather(city='Paris'), mcp.list-files(path='/')", "# the call\n[get_weather(city='Paris')]"]
STATEMENTS = {"[get_weather(city='Paris')] I also checked.": "[get_weather(city='Paris')] I",
              '{"name": "f", "arguments": {}}\n{"name": "g", "arguments": {}}': '{"name": "f", "arguments": {}}\n{',
              "```python\ndef add(a, b):\n    return a + b\n```": "```python\ndef a",
              "[Note] None of the functions can answer this.": "[Note] N", "None of them fits.": "None o",
              "get_weather(city='Paris') is done": "get_weather(city='Paris') i", "1. First": "1",
              "# Answer\nThe weather is fine.": "# Answer\nThe w"}


def test_calls_prefix_never_gives_up_on_calls_and_gives_up_on_statements():
    """`CallsPrefix`, fed one character at a time: no prefix of text that parses as calls is called
    dead (the stream would send calls as content), and a statement is dead at its first character
    that no call list can follow."""
    from funreason.calls import CallsPrefix, parse_output

    def dead_at(text: str) -> str | None:
        p = CallsPrefix()
        return next((text[:i + 1] for i, ch in enumerate(text) if p.feed(ch)), None)

    for text in CALL_TEXTS:
        assert parse_output(text).calls, text
        assert dead_at(text) is None, text
        p = CallsPrefix()
        assert not p.feed(text), text  # fed at once too
    for text, prefix in STATEMENTS.items():
        assert parse_output(text).calls is None, text
        assert dead_at(text) == prefix, text
