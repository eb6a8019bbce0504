"""What schema-guided decoding costs and changes: `funreason eval bfcl` with and without `--guided`, side by side.

    .venv/bin/python bench/perf/guided_speed.py --model DIR [--entries 32] [--batch 8] [--max-tokens 96]
    .venv/bin/python bench/perf/guided_speed.py       # small run: untrained tiny model, 8 entries, batch 4, 32 tokens

The same BFCL entries (the first N of simple_python and multiple), the same engine, batch size,
greedy decoding and budget of new tokens, through the path `funreason eval bfcl --model DIR` runs
(`local_stream` and `run_categories`, result files written, then scored), once free and once
guided; the free run goes first and again last, so that a machine that slows down part way shows
as two free timings apart. Prints JSON and writes it to `--out` (bench/results/guided_speed.json): entries/s of each, their ratio, the tokens the answers
hold (a guided answer may run longer, or stop sooner, than the free one), how many answers are the
same text, and the accuracy of each.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from common import parse_args, result_texts, speed_entries, tiny_model, write_result


def main() -> None:
    args = parse_args(__doc__, __file__)

    import torch

    from funreason.evaluate.runner import local_stream, run_categories
    from funreason.llm import SamplingParams
    from funreason.llm.local import LocalEngine

    data = speed_entries(args.entries)
    n = sum(map(len, data.values()))
    tiny = tempfile.TemporaryDirectory()
    label = args.model or "tiny (untrained, funreason.train.tiny)"
    if args.model is None:
        args.model = tiny_model(Path(tiny.name) / "tiny")
    engine = LocalEngine.from_pretrained(args.model, max_batch=args.batch)
    params = SamplingParams(max_tokens=args.max_tokens)

    def tokens(texts: dict[str, str]) -> int:
        return sum(len(engine.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts.values())

    def run(guided: bool) -> tuple[float, dict[str, str], float]:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            scores = run_categories(data, None, Path(tmp), batch=args.batch, stream=local_stream(engine, params, data, Path(tmp), guided=guided))
            seconds = time.perf_counter() - t0
            texts = result_texts(Path(tmp))
        return seconds, texts, sum(s["correct"] for s in scores.values()) / n

    try:
        free_s, free, free_acc = run(False)
        guided_s, guided, guided_acc = run(True)
        again_s, _, _ = run(False)
        free_tokens, guided_tokens = tokens(free), tokens(guided)
    finally:
        engine.close()
        tiny.cleanup()
    write_result({
        "model": label, "entries": n, "batch": args.batch, "max_new_tokens": args.max_tokens,
        "torch_threads": torch.get_num_threads(),
        "free": {"seconds": round(free_s, 2), "entries_per_s": round(n / free_s, 3), "accuracy": round(free_acc, 3),
                 "answer_tokens": free_tokens},
        "guided": {"seconds": round(guided_s, 2), "entries_per_s": round(n / guided_s, 3), "accuracy": round(guided_acc, 3),
                   "answer_tokens": guided_tokens},
        "free_again": {"seconds": round(again_s, 2), "entries_per_s": round(n / again_s, 3)},
        "guided_time_ratio": round(guided_s / ((free_s + again_s) / 2), 3),
        "same_text": sum(free[k].strip() == guided.get(k, "").strip() for k in free),
    }, args.out)


if __name__ == "__main__":
    main()
