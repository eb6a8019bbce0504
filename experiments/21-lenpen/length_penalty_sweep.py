"""Which `--length-penalty` a beam search should rank with: one search per BFCL entry, every call
list it finished kept, and each penalty's answer picked from them and scored.

    .venv/bin/python bench/length_penalty_sweep.py --model DIR --out DIR [--categories parallel,multiple]
        [--skip 100] [--limit 100] [--beams 4] [--search-penalty 1] [--penalties 0,0.5,1,1.5]
        [--batch 24] [--max-tokens 192]

Why one search serves every penalty: the live call lists of a search all have the same length,
so which of them are kept does not depend on the penalty; the penalty decides only which finished
list answers and how long the search goes on. The search runs (guided, as `eval bfcl --guided
--beams N --length-penalty P` runs it) under `--search-penalty`, which should be the largest
penalty swept, as a larger penalty searches longer; each answer's finished lists
(`Generation.candidates`: summed log probability, tokens since the opening) are ranked afresh for
each penalty by the engine's rule (`llm.local.best_candidate`), and the picks are scored like
`funreason eval score`. `search_pick_agrees` counts the entries where the search's own answer is
the re-ranking's pick under its penalty; a smaller penalty's pick comes
from the lists a search under it would have finished or more (it stops sooner), so its figure is
close to, not exactly, what `eval bfcl` with that penalty scores.

Tune on entries nobody reads (`--skip 100`), report with `eval bfcl` on the fixed subset. Each
category's lists are written to `DIR/candidates_<category>.jsonl` when it is done, so a stopped
run redoes only the categories not yet written; the folder is claimed with the settings. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--categories", default="simple_python,multiple,parallel,parallel_multiple")
    p.add_argument("--skip", type=int, default=100)
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--beams", type=int, default=4)
    p.add_argument("--search-penalty", type=float, default=1.0)
    p.add_argument("--penalties", default="0,0.25,0.5,0.75,1,1.5")
    p.add_argument("--batch", type=int, default=24)
    p.add_argument("--max-tokens", type=int, default=192)
    args = p.parse_args()
    args.categories = args.categories.split(",")
    args.penalties = [float(a) for a in args.penalties.split(",")]
    if args.beams < 2 or args.search_penalty < max(args.penalties):
        p.error("--beams must be 2 or more, and --search-penalty at least the largest of --penalties")
    return args


def pick(answer: dict, penalty: float) -> str:
    """The answer a search ranking with `penalty` gives, from the lists `answer` recorded (the
    engine's own rule, `llm.local.best_candidate`)."""
    from funreason.llm import Candidate
    from funreason.llm.local import best_candidate

    if not answer["candidates"]:  # prose, or a search that never opened a call list: the greedy answer
        return answer["text"]
    return best_candidate([Candidate(**c) for c in answer["candidates"]], penalty).text


def search(engine, examples, args) -> list[dict]:
    """Every entry's answer and finished lists, under `--search-penalty`."""
    from dataclasses import asdict

    from funreason.evaluate.bfcl_run import submit_entry
    from funreason.llm import SamplingParams

    params = SamplingParams(max_tokens=args.max_tokens, beams=args.beams, length_penalty=args.search_penalty)
    futures = [submit_entry(engine, ex, params, guided=True) for ex in examples]  # as eval bfcl --guided asks
    answers = []
    for ex, fut in zip(examples, futures):
        gen = fut.result()
        answers.append({"id": ex.id, "text": gen.text, "candidates": [asdict(c) for c in gen.candidates or []]})
    return answers


def main() -> None:
    args = parse_args()

    from funreason.evaluate.bfcl_run import load_category, score_category
    from funreason.formats.jsonl import write_jsonl_atomic
    from funreason.llm.local import LocalEngine
    from funreason.runinfo import claim, model_identity

    out = Path(args.out)
    files = {c: out / f"candidates_{c}.jsonl" for c in args.categories}
    claim(out, {"bench": "length_penalty_sweep", **model_identity(args.model), "skip": args.skip, "limit": args.limit,
                "beams": args.beams, "search_penalty": args.search_penalty, "max_tokens": args.max_tokens}, list(files.values()))
    out.mkdir(parents=True, exist_ok=True)
    engine = None
    report: dict = {"model": args.model, "skip": args.skip, "limit": args.limit, "beams": args.beams,
                    "search_penalty": args.search_penalty, "max_tokens": args.max_tokens, "categories": {}}
    try:
        for c in args.categories:
            examples = load_category(c, args.limit, None, args.skip)
            seconds = None
            if files[c].exists():  # written whole when its category was done: read back, not searched again
                answers = [json.loads(line) for line in files[c].read_text(encoding="utf-8").splitlines()]
            else:
                if engine is None:
                    engine = LocalEngine.from_pretrained(args.model, max_batch=args.batch)
                t0 = time.perf_counter()
                answers = search(engine, examples, args)
                seconds = round(time.perf_counter() - t0, 1)
                write_jsonl_atomic(files[c], answers)
            if [a["id"] for a in answers] != [ex.id for ex in examples]:
                sys.exit(f"{files[c]}: its entries are not {c}'s entries {args.skip + 1}-{args.skip + args.limit}; delete it to search again")
            by_id = {a["id"]: a for a in answers}
            correct = {str(p): score_category(c, examples, {i: pick(a, p) for i, a in by_id.items()})["correct"] for p in args.penalties}
            report["categories"][c] = {
                "entries": len(examples), "correct": correct, "seconds": seconds,
                "search_pick_agrees": sum(pick(a, args.search_penalty) == a["text"] for a in answers),
                "lists_per_entry": round(sum(len(a["candidates"]) for a in answers) / len(answers), 2)}
    finally:
        if engine is not None:
            engine.close()
    report["total"] = {str(p): sum(v["correct"][str(p)] for v in report["categories"].values()) for p in args.penalties}
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
