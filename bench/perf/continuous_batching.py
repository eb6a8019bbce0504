"""Does a short request still wait for a long one, and what does continuous batching do to throughput?

    .venv/bin/python bench/perf/continuous_batching.py --model DIR      # the committed figure (SmolLM2-135M-Instruct)
    .venv/bin/python bench/perf/continuous_batching.py                  # small run: an untrained tiny model

The local engine (`funreason serve`, `eval` with a local model) run two ways on the same loaded
model in one process, side by side: continuously (`LocalEngine()`, the default: a request joins
the running batch at the next decode step and leaves it when it finishes) and batch at a time
(`LocalEngine(continuous=False)`, the engine before: a batch runs until every row is done and
requests arriving meanwhile wait).

(a) Latency: a short greedy request (`--short-tokens`) alone on the idle engine, and submitted
while a long one (`--long-tokens`, a prompt the model answers at length) is decoding; the median
of `--repeats` of each (the engines taking turns), and its ratio behind / alone (goal: at most 2x continuously). The long
request is cancelled once the short one is answered, and the JSON says whether it was still
running then (batch at a time it never is: the short one waited for it).

(b) Throughput on a mixed load: `--requests` requests submitted at once, one in four long
(`--long-tokens`) and the rest short (`--short-tokens` x 2), `--batch` decoded together; completion
tokens per second of each engine, their ratio continuous / batch at a time (goal: at least 1.0x)
and how many answers are the same text (greedy: all should be). The two engines take turns,
`--repeats` times, and the median is kept.

Prints JSON and writes it to `--out` (bench/results/continuous_batching.json).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import add_out, tiny_model, write_result

LONG_PROMPTS = ["Explain photosynthesis in detail.", "Describe the history of Rome in detail.",
                "Write a haiku about rain.", "List ten fruits."]
SHORT_PROMPTS = ["What is the capital of France?", "Say hello.", "What is 2 + 2?", "Name a colour.",
                 "Weather in Paris?", "Tell me a joke.", "What day comes after Monday?", "Spell cat."]


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="checkpoint folder (funreason model get smollm2-135m-instruct --out DIR; "
                                                  "default: an untrained tiny model, the small run)")
    ap.add_argument("--long-tokens", type=int, default=128, help="budget of the long requests (default 128)")
    ap.add_argument("--short-tokens", type=int, default=8, help="budget of the short request in (a) (default 8)")
    ap.add_argument("--requests", type=int, default=16, help="requests of the mixed load (default 16)")
    ap.add_argument("--batch", type=int, default=8, help="rows decoded together (default 8)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each measurement; the median is kept (default 3)")
    add_out(ap, __file__)
    return ap.parse_args()


def main() -> None:
    args = parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from funreason.llm import SamplingParams
    from funreason.llm.local import LocalEngine, RequestCancelled

    tiny = tempfile.TemporaryDirectory()
    label = args.model or "tiny (untrained, funreason.train.tiny)"
    if args.model is None:
        args.model = tiny_model(Path(tiny.name) / "tiny")
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model).eval()

    def prompt(q: str) -> list[int]:
        text = tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
        return tok(text, add_special_tokens=False)["input_ids"]

    engines = {"continuous": LocalEngine(model, tok, max_batch=args.batch),
               "batch_at_a_time": LocalEngine(model, tok, max_batch=args.batch, continuous=False)}
    short_ask = (prompt(SHORT_PROMPTS[0]), SamplingParams(max_tokens=args.short_tokens))
    long_ask = (prompt(LONG_PROMPTS[0]), SamplingParams(max_tokens=args.long_tokens))

    def alone(engine: LocalEngine) -> float:
        t0 = time.perf_counter()
        engine.submit(*short_ask).result()
        return time.perf_counter() - t0

    def behind(engine: LocalEngine) -> tuple[float, bool, int]:
        """The short request's latency behind the long one, whether the long one still ran when it
        was answered, and the long one's tokens (when it finished)."""
        started, cancel = threading.Event(), threading.Event()
        long = engine.submit(*long_ask, on_text=lambda _: started.set(), cancel=cancel)
        started.wait()
        t0 = time.perf_counter()
        engine.submit(*short_ask).result()
        seconds = time.perf_counter() - t0
        running = not long.done()
        cancel.set()
        try:
            tokens = long.result().completion_tokens
        except RequestCancelled:
            tokens = -1
        return seconds, running, tokens

    for engine in engines.values():
        engine.submit(*short_ask).result()  # warm up: first-call costs out of the figures
    solos: dict[str, list[float]] = {name: [] for name in engines}
    behinds: dict[str, list[tuple[float, bool, int]]] = {name: [] for name in engines}
    for _ in range(args.repeats):  # the engines take turns, so that a slower spell of the machine hits both
        for name, engine in engines.items():
            solos[name].append(alone(engine))
            behinds[name].append(behind(engine))
    latency: dict[str, Any] = {}
    for name in engines:
        solo, waits = solos[name], behinds[name]
        latency[name] = {"short_alone_s": round(statistics.median(solo), 3),
                         "short_behind_long_s": round(statistics.median(w[0] for w in waits), 3),
                         "long_still_running": all(w[1] for w in waits),
                         "long_tokens_when_finished": sorted({w[2] for w in waits if w[2] >= 0})}
        latency[name]["ratio_behind_to_alone"] = round(latency[name]["short_behind_long_s"] / latency[name]["short_alone_s"], 2)

    # (b): one in four long, interleaved, so that batch at a time every batch holds long rows
    load = [(prompt(LONG_PROMPTS[i // 4 % len(LONG_PROMPTS)]), SamplingParams(max_tokens=args.long_tokens)) if i % 4 == 0
            else (prompt(SHORT_PROMPTS[i % len(SHORT_PROMPTS)]), SamplingParams(max_tokens=2 * args.short_tokens))
            for i in range(args.requests)]
    runs: dict[str, list[float]] = {name: [] for name in engines}
    texts: dict[str, list[str]] = {}
    tokens: dict[str, int] = {}
    for _ in range(args.repeats):
        for name, engine in engines.items():
            t0 = time.perf_counter()
            gens = [f.result() for f in [engine.submit(ids, sp) for ids, sp in load]]
            runs[name].append(time.perf_counter() - t0)
            texts[name], tokens[name] = [g.text for g in gens], sum(g.completion_tokens for g in gens)
    for engine in engines.values():
        engine.close()
    tiny.cleanup()
    throughput = {name: {"seconds": round(statistics.median(runs[name]), 2), "completion_tokens": tokens[name],
                         "tokens_per_s": round(tokens[name] / statistics.median(runs[name]), 2)} for name in engines}
    write_result({
        "model": label, "torch_threads": torch.get_num_threads(), "batch": args.batch, "repeats": args.repeats,
        "long_tokens": args.long_tokens, "short_tokens": args.short_tokens,
        "latency": latency,
        "latency_ratio_continuous": latency["continuous"]["ratio_behind_to_alone"],
        "mixed_load": {"requests": args.requests, "long_requests": sum(1 for i in range(args.requests) if i % 4 == 0),
                       "short_budget": 2 * args.short_tokens, **throughput},
        "throughput_ratio_continuous_to_batch_at_a_time": round(throughput["continuous"]["tokens_per_s"]
                                                                / throughput["batch_at_a_time"]["tokens_per_s"], 3),
        "same_text": sum(a == b for a, b in zip(texts["continuous"], texts["batch_at_a_time"])),
        "joined_requests": engines["continuous"].joined,
    }, args.out)


if __name__ == "__main__":
    main()
