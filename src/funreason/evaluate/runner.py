"""The shared generation runner: BFCL-style prompts from examples, batches through a local engine or
an endpoint, each answer appended to its category's result file as it comes (so a run resumes).

`eval bfcl`, `eval heldout` and the benchmarks generate through these functions; scoring and the
report stay with their verbs (`bfcl_run`, `heldout`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from funreason.calls import format_python_calls, split_think
from funreason.chat import prompt_messages
from funreason.evaluate.bfcl_checker import language_of, score_category
from funreason.formats import bfcl, read_examples
from funreason.formats.jsonl import AppendLog, read_finished_rows
from funreason.llm import Generation, SamplingParams
from funreason.schema import Call, Example, Tool, json_schema


HINTS = {"python": " Note that the provided function is in Python 3 syntax.",
         "java": " Note that the provided function is in Java 8 SDK syntax.",
         "javascript": " Note that the provided function is in JavaScript syntax."}


def entry_language(ex: Example) -> str:
    return language_of(bfcl.category_of(ex.id))


def prompt_tools(ex: Example) -> list[Tool]:
    """The functions as BFCL's prompting handlers present them: a language hint on each description;
    for Java and JavaScript every parameter becomes a string whose description names its type."""
    language = entry_language(ex)
    tools = []
    for t in ex.tools:
        params = copy.deepcopy(t.parameters)
        if language != "python":
            lang = "Java" if language == "java" else "JavaScript"
            for value in params.get("properties", {}).values():
                typ = value.get("type")
                desc = value.get("description", "")
                if typ == "any":
                    desc += f" This parameter can be of any type of {lang} object in string representation."
                else:
                    desc += f" This is {lang} {typ} type parameter in string representation."
                if typ in (("ArrayList", "Array") if language == "java" else ("array",)) and "items" in value:
                    desc += f" The list elements are of type {value['items'].get('type')}; they are not in string representation."
                    del value["items"]
                if language == "javascript" and typ == "dict" and "properties" in value:
                    desc += (" The dictionary entries have the following schema; they are not in string representation. "
                             + json.dumps(value.pop("properties")))
                value["description"], value["type"] = desc, "string"
        tools.append(Tool(t.name, t.description + HINTS[language], params))
    return tools


def result_path(out: Path, category: str) -> Path:
    return out / f"BFCL_v4_{category}_result.json"


def load_done(path: Path) -> dict[str, str]:
    return _answers(read_finished_rows(path))


def _answers(rows: list[Any]) -> dict[str, str]:
    """id → answer of a result file's finished rows."""
    return {row["id"]: row["result"] for row in rows if isinstance(row, dict) and "id" in row and "result" in row}


def prompt_size(ex: Example) -> int:
    """A cheap stand-in for an entry's prompt length (characters of its tools and turns)."""
    return len(json.dumps([t.to_dict() for t in ex.tools])) + sum(len(m.content) for m in ex.messages)


def generate_category(
    category: str,
    examples: list[Example],
    generate: Callable[[list[Example]], list[str]] | None,
    out: Path,
    *,
    batch: int = 16,
    on_done: Callable[[int], None] | None = None,
    stream: Callable[[list[Example]], Iterator[tuple[Example, str]]] | None = None,
) -> dict[str, str]:
    """Generate the entries of `category` not yet in its result file, appending each answer as it
    comes: in batches through `generate`, or, with `stream` (endpoints), all at once, written in
    the order they finish."""
    with AppendLog(result_path(out, category)) as log:
        done = _answers(log.rows)
        # similar lengths batched together: a batch is padded to its longest prompt
        todo = sorted((ex for ex in examples if ex.id not in done), key=prompt_size)
        for ex, text in (stream(todo) if stream is not None else in_batches(generate, todo, batch)):
            log.append({"id": ex.id, "result": text})
            done[ex.id] = text
            if on_done:
                on_done(1)
    return done


def in_batches(generate: Callable[[list[Example]], list[str]], todo: list[Example], batch: int) -> Iterator[tuple[Example, str]]:
    """(entry, answer) pairs from a batch generator, `batch` entries at a time."""
    for i in range(0, len(todo), batch):
        chunk = todo[i : i + batch]
        yield from zip(chunk, generate(chunk))


def load_category(category: str, limit: int | None, data_dir: str | Path | None = None, skip: int = 0) -> list[Example]:
    """A category's entries in the data's order: `limit` of them after the first `skip`."""
    return read_examples(bfcl.question_file(category, data_dir))[skip:None if limit is None else skip + limit]


def native_name(name: str) -> str:
    """OpenAI-style tool names cannot hold dots."""
    return name.replace(".", "_")


def native_result(gen: Generation, ex: Example) -> str:
    """Native mode: the endpoint's tool calls renamed back to the entry's function names and
    written as the Python call list BFCL's prompting decoder reads; without tool calls, the
    content (a statement, as an irrelevance answer should be)."""
    if not gen.tool_calls:
        return split_think(gen.text)[1]
    names = {native_name(t.name): t.name for t in ex.tools}
    calls = [Call(names.get(c.name, c.name), c.arguments) for c in gen.tool_calls]
    if entry_language(ex) != "python":  # string arguments are the source text of Java / JavaScript values
        return "[" + ", ".join(f"{c.name}(" + ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in c.arguments.items())
                               + ")" for c in calls) + "]"
    return format_python_calls(calls)


def openai_tools(ex: Example) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": native_name(t.name), "description": t.description,
                                              "parameters": json_schema(t.parameters)}} for t in prompt_tools(ex)]


def messages_for(ex: Example) -> list[dict[str, str]]:
    return prompt_messages(Example(ex.id, prompt_tools(ex), ex.messages))


def local_generator(engine: Any, params: Any) -> Callable[[list[Example]], list[str]]:
    """Prompting mode with a local engine: the model's chat template, BFCL's system prompt."""
    tok = engine.tokenizer

    def generate(chunk: list[Example]) -> list[str]:
        prompts = [tok.apply_chat_template(messages_for(ex), tokenize=False, add_generation_prompt=True) for ex in chunk]
        return [g.text for g in engine.generate(prompts, params)]

    return generate


def submit_entry(engine: Any, ex: Example, params: SamplingParams, *, guided: bool = False) -> Any:
    """Queue one entry on a local engine as prompting mode asks it (BFCL's system prompt in the
    model's chat template; under `guided.call_grammar` of its functions when `guided`); returns
    the engine's future."""
    from funreason.llm.guided import guided_params

    tok = engine.tokenizer
    return engine.submit(tok.apply_chat_template(messages_for(ex), tokenize=False, add_generation_prompt=True),
                         guided_params(params, prompt_tools(ex), tok) if guided else params)


def local_stream(engine: Any, params: Any, data: dict[str, list[Example]], out: Path, *,
                 guided: bool = False) -> Callable[[list[Example]], Iterator[tuple[Example, str]]]:
    """Prompting mode with a local engine, every category's unfinished entries queued at once,
    shortest first: the engine's worker fills each batch across categories, so no batch is cut
    short at a category's end (on a CPU a batch's decode steps cost nearly the same at 10 rows as
    at 24). `guided`: each entry decoded under `guided.call_grammar` of its functions. Pass it as
    `run_categories(..., stream=...)`."""
    done = {c: load_done(result_path(out, c)) for c in data}
    todo = sorted((ex for c, exs in data.items() for ex in exs if ex.id not in done[c]), key=prompt_size)
    futures = {ex.id: submit_entry(engine, ex, params, guided=guided) for ex in todo}

    def stream(chunk: list[Example]) -> Iterator[tuple[Example, str]]:
        for ex in chunk:
            yield ex, futures[ex.id].result().text

    return stream


def endpoint_stream(http: Any, params: Any, data: dict[str, list[Example]], out: Path,
                    mode: str) -> tuple[Callable[[list[Example]], Iterator[tuple[Example, str]]], Callable[[], None]]:
    """(stream, cancel) on an endpoint (`llm.http.BlockingHTTP`): every category's unfinished
    entries are requested at once, so `--concurrency` requests stay in flight across category
    boundaries; each category's answers come back in the order they finish. `cancel` drops the
    requests not yet answered (after a failure). Prompting mode sends BFCL's system prompt;
    native mode the entry's tools, its calls written back as BFCL's call list."""
    import concurrent.futures

    done = {c: load_done(result_path(out, c)) for c in data}
    futures = {}
    for c, exs in data.items():
        for ex in exs:
            if ex.id not in done[c]:
                futures[ex.id] = (http.chat_future(messages_for(ex), params) if mode == "prompting" else
                                  http.chat_future([m.to_dict() for m in ex.messages], params, openai_tools(ex)))

    def stream(chunk: list[Example]) -> Iterator[tuple[Example, str]]:
        by_future = {futures[ex.id]: ex for ex in chunk}
        for f in concurrent.futures.as_completed(by_future):
            ex = by_future[f]
            gen = f.result()
            yield ex, gen.text if mode == "prompting" else native_result(gen, ex)

    def cancel() -> None:
        for f in futures.values():
            f.cancel()

    return stream, cancel


def run_categories(data: dict[str, list[Example]], generate: Callable[[list[Example]], list[str]] | None, out: Path, *,
                   batch: int = 16, on_done: Callable[[int], None] | None = None,
                   stream: Callable[[list[Example]], Iterator[tuple[Example, str]]] | None = None) -> dict[str, dict[str, Any]]:
    """Generate (resuming; in batches, or streamed) and score every category of `data`; the scores per category.
    Every category is generated before any is scored, so the model or endpoint never idles while the checker runs."""
    answers = {c: generate_category(c, exs, generate, out, batch=batch, on_done=on_done, stream=stream) for c, exs in data.items()}
    return {c: score_category(c, exs, answers[c]) for c, exs in data.items()}
