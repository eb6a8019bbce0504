"""Output-level ensembles of trained checkpoints, screened on BFCL simple_python 101-200.

The thirty-first try (README, "Replication on a real model"): does averaging the members' next-token
distributions at every decoding step beat averaging their weights (`funreason model average`)?
Each member keeps its own KV cache; the ensemble's next-token scores are the log of the members'
mean probability (`--mode prob`) or their mean log probability (`--mode logp`, a product of
experts). Decoding is FunReason's own local engine with schema-guided decoding, greedy, exactly as
`funreason eval bfcl --guided --skip 100 --limit 100 --max-tokens 192 --batch 24` runs it for
one model; the answers are scored by the same checker. Prints JSON; writes the BFCL result file
and the scores under `--out` (resumable, as `eval bfcl` is: a folder holding another ensemble's
answers is refused).

    python bench/ensemble_screen.py --models runs/e28/run32/final,runs/e27/run32/final --mode prob \
        --out bench/results_ensemble/prob-25+27
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from funreason.chat import load_tokenizer
from funreason.evaluate.bfcl_run import load_category, local_stream, result_path, run_categories
from funreason.llm import SamplingParams
from funreason.llm.local import LocalEngine
from funreason.runinfo import RunMismatch, claim, model_identity


class Caches:
    """One KV cache per member, moved together: the engine selects and repeats rows of "the" cache."""

    def __init__(self, caches: list[Any]):
        self.caches = caches

    def batch_select_indices(self, idx: torch.Tensor) -> None:
        for c in self.caches:
            c.batch_select_indices(idx)

    def batch_repeat_interleave(self, n: int) -> None:
        for c in self.caches:
            c.batch_repeat_interleave(n)


class Ensemble(torch.nn.Module):
    """The members run on the same inputs; the output is their combined next-token log scores."""

    def __init__(self, members: list[Any], mode: str):
        super().__init__()
        self.members = torch.nn.ModuleList(members)
        self.mode = mode
        self.generation_config = members[0].generation_config

    def get_output_embeddings(self) -> Any:
        return self.members[0].get_output_embeddings()

    def forward(self, cache: Caches | None = None, **kw: Any) -> SimpleNamespace:
        outs = [m(cache=None if cache is None else cache.caches[i], **kw) for i, m in enumerate(self.members)]
        logp = torch.stack([torch.log_softmax(o.logits.float(), dim=-1) for o in outs])
        scores = torch.logsumexp(logp, 0) - math.log(len(outs)) if self.mode == "prob" else logp.mean(0)
        return SimpleNamespace(cache=Caches([o.cache for o in outs]), logits=scores)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", required=True, help="comma-separated checkpoint folders (the first one's tokenizer and template are used)")
    ap.add_argument("--mode", choices=["prob", "logp"], default="prob")
    ap.add_argument("--out", required=True)
    ap.add_argument("--skip", type=int, default=100)
    ap.add_argument("--limit", type=int, default=100)
    args = ap.parse_args()
    from transformers import AutoModelForCausalLM

    models = args.models.split(",")
    tok = load_tokenizer(models[0], None)
    for m in models[1:]:  # the members must share the prompt rendering the engine uses
        if load_tokenizer(m, None).chat_template != tok.chat_template:
            raise SystemExit(f"{m}: its chat template differs from {models[0]}'s; an ensemble needs one rendering")
    out = Path(args.out)
    params = SamplingParams(max_tokens=192)
    # the answers kept under --out must be this ensemble's, on these entries, decoded this way
    try:
        claim(out, {"verb": "ensemble_screen", "members": [model_identity(m) for m in models], "mode": args.mode,
                    "skip": args.skip, "limit": args.limit, "max_tokens": params.max_tokens, "guided": True},
              [result_path(out, "simple_python")])
    except RunMismatch as e:
        raise SystemExit(f"error: {e}") from None
    data = {"simple_python": load_category("simple_python", args.limit, None, args.skip)}
    engine = LocalEngine(Ensemble([AutoModelForCausalLM.from_pretrained(m, dtype="float32") for m in models], args.mode), tok, max_batch=24)
    generated = 0  # answers written by this invocation (a resumed one skips those already there)

    def done(n: int) -> None:
        nonlocal generated
        generated += n

    t0 = time.perf_counter()
    try:
        scores = run_categories(data, None, out, batch=24, on_done=done, stream=local_stream(engine, params, data, out, guided=True))
    finally:
        engine.close()
    s = scores["simple_python"]
    result = {"models": models, "mode": args.mode, "entries": f"simple_python {args.skip + 1}-{args.skip + args.limit}",
              "correct": s["correct"], "total": s["total"], "generated": generated, "seconds": round(time.perf_counter() - t0, 1)}
    (out / "screen.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
