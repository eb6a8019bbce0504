"""`funreason eval bfcl`'s local generation against a plain `model.generate` loop, side by side.

    .venv/bin/python bench/perf/generation_speed.py --model DIR [--entries 32] [--batch 8] [--max-tokens 96]
    .venv/bin/python bench/perf/generation_speed.py       # small run: untrained tiny model, 8 entries, batch 4, 32 tokens

The same BFCL entries (the first N of simple_python and multiple, alternating), the same prompts
(BFCL's prompting system prompt through the model's chat template), the same batch size, greedy
decoding and the same budget of new tokens. The plain loop takes the entries in order, left-pads
each batch and calls `model.generate`; ours is `run_categories` with the local engine, exactly as
`funreason eval bfcl --model DIR` runs it (result files written, then scored), run twice: as it is,
and with the engine's shared-prefix prefill turned off (`LocalEngine(share_prefix=False)`), to
measure what running the prompts' common beginning once saves. Prints JSON and writes it to
`--out` (bench/results/generation_speed.json): entries/s of each, their ratios, and how many
answers are the same text.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from common import parse_args, result_texts, speed_entries, tiny_model, write_result


def main() -> None:
    args = parse_args(__doc__, __file__)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from funreason.evaluate.runner import local_generator, messages_for, run_categories
    from funreason.llm import SamplingParams
    from funreason.llm.local import LocalEngine, shared_prefix

    data = speed_entries(args.entries)
    tiny = tempfile.TemporaryDirectory()
    label = args.model or "tiny (untrained, funreason.train.tiny)"
    if args.model is None:
        args.model = tiny_model(Path(tiny.name) / "tiny")
    entries = [ex for pair in zip(data["simple_python"], data["multiple"]) for ex in pair]
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model).eval()
    prompts = [tok.apply_chat_template(messages_for(ex), tokenize=False, add_generation_prompt=True) for ex in entries]
    prompt_tokens = [len(tok(p, add_special_tokens=False)["input_ids"]) for p in prompts]

    # plain loop: batches in order, left padding, model.generate
    tok.padding_side = "left"
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    plain: dict[str, str] = {}
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(entries), args.batch):
            enc = tok(prompts[i : i + args.batch], return_tensors="pt", padding=True, add_special_tokens=False)
            out = model.generate(**enc, max_new_tokens=args.max_tokens, do_sample=False, pad_token_id=pad)
            for ex, row in zip(entries[i : i + args.batch], out[:, enc["input_ids"].shape[1]:]):
                plain[ex.id] = tok.decode(row, skip_special_tokens=True)
    plain_s = time.perf_counter() - t0

    # ours: the eval bfcl path, with the engine's shared-prefix prefill and early-leaving rows, and without
    def ours(share_prefix: bool) -> tuple[float, dict[str, str]]:
        engine = LocalEngine(model, tok, max_batch=args.batch, share_prefix=share_prefix)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                run_categories(data, local_generator(engine, SamplingParams(max_tokens=args.max_tokens)), Path(tmp), batch=args.batch)
                seconds = time.perf_counter() - t0
                texts = result_texts(Path(tmp))
        finally:
            engine.close()
        return seconds, texts

    unshared_s, unshared = ours(False)
    ours_s, answers = ours(True)
    n = len(entries)

    def same(a: dict[str, str], b: dict[str, str]) -> int:
        return sum(a[k].strip() == b.get(k, "").strip() for k in a)

    tiny.cleanup()
    write_result({
        "model": label, "entries": n, "batch": args.batch, "max_new_tokens": args.max_tokens,
        "prompt_tokens_mean": round(sum(prompt_tokens) / n, 1), "prompt_tokens_max": max(prompt_tokens),
        "shared_prefix_tokens": shared_prefix([tok(p, add_special_tokens=False)["input_ids"] for p in prompts]),
        "torch_threads": torch.get_num_threads(),
        "plain_generate": {"seconds": round(plain_s, 2), "entries_per_s": round(n / plain_s, 3)},
        "funreason_no_prefix_sharing": {"seconds": round(unshared_s, 2), "entries_per_s": round(n / unshared_s, 3)},
        "funreason_eval_bfcl": {"seconds": round(ours_s, 2), "entries_per_s": round(n / ours_s, 3)},
        "speedup": round(plain_s / ours_s, 3),
        "speedup_of_prefix_sharing": round(unshared_s / ours_s, 3),
        "same_text": same(plain, answers),
        "same_text_without_sharing": same(unshared, answers),
    }, args.out)


if __name__ == "__main__":
    main()
