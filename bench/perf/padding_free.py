"""What padding costs `funreason train`, and what `--padding-free` gives back.

`funreason train` pads each batch to its longest row. `--padding-free` lays the rows back to back
in one sequence whose position ids restart per row (no padding; transformers keeps attention within
a row). This script trains the same steps on the same batches both ways, alternating the runs, and
prints JSON: the share of padded positions in the padded batches, tokens/s of real tokens each
way and their ratio. Batches are formed as `funreason train` forms them: the open mix
(`funreason data mix`), its rows rendered with the model's template, in the order of
`--group-by-length` (the default) or in random order (`--no-group-by-length`).

    .venv/bin/python bench/perf/padding_free.py                         # tiny model, the small run `make bench` runs
    .venv/bin/python bench/perf/padding_free.py --model ~/.cache/funreason/models/smollm2-135m-instruct --steps 12
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from common import add_out, tiny_model, write_result

from funreason.data.mix import MixConfig, build_mix
from funreason.formats import read_examples
from funreason.train.data import FeatureDataset, SegmentCollator, build_features
from funreason.train.srml import SRMLLoss
from funreason.train.trainer import SRMLTrainer, TrainConfig, training_arguments


class Batches(TrainerCallback):
    """Times each step and keeps nothing else: the token counts come from the collator."""

    def __init__(self):
        self.times: list[float] = []
        self._t = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self._t)


class CountingCollator(SegmentCollator):
    """`SegmentCollator` that counts the real and the padded positions it hands out."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.real: list[int] = []  # per batch, in the order the steps take them
        self.positions = 0

    def __call__(self, rows):
        batch = super().__call__(rows)
        self.real.append(sum(len(r["input_ids"]) for r in rows))
        self.positions += batch["input_ids"].numel()
        return batch


def run(padding_free: bool, model_dir: str, features, pad_id: int, a, tmp: Path) -> dict:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    cfg = TrainConfig(model=model_dir, data="-", out=str(tmp / f"pf{int(padding_free)}"), max_steps=a.warmup + a.steps,
                      batch_size=a.batch, learning_rate=1e-5, logging_steps=10**6, save_steps=10**9, report_to="none",
                      group_by_length=a.group_by_length, padding_free=padding_free, max_length=a.max_length)
    timer, collate = Batches(), CountingCollator(pad_id, padding_free=padding_free)
    trainer = SRMLTrainer(model=model, args=training_arguments(cfg, save_strategy="no", disable_tqdm=True),
                          train_dataset=FeatureDataset(features), data_collator=collate,
                          srml=SRMLLoss("fixed", 0.5), callbacks=[timer])
    trainer.train()
    seconds = sum(timer.times[a.warmup:])
    tokens = sum(collate.real[a.warmup : a.warmup + a.steps])  # the real tokens of the timed steps
    return {"seconds": round(seconds, 3), "tokens_per_s": round(tokens / seconds, 1),
            "padded_share": round(1 - sum(collate.real) / collate.positions, 4), "step_s": [round(t, 3) for t in timer.times]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="model folder (default: an untrained tiny model, the small run)")
    p.add_argument("--steps", type=int, default=4, help="timed steps per run (default 4)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--batch", type=int, default=8, help="rows per step (default 8)")
    p.add_argument("--max-length", type=int, default=1024, help="longest row kept (default 1024)")
    p.add_argument("--repeats", type=int, default=1, help="runs of each way, alternating; the median run counts (default 1)")
    p.add_argument("--group-by-length", action=argparse.BooleanOptionalAction, default=True,
                   help="order batches as `funreason train` does by default (on) or at random (off)")
    add_out(p, __file__)
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="padding-free-") as tmp:
        tmp = Path(tmp)
        model_dir = a.model or tiny_model(tmp / "tiny")
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        build_mix(MixConfig(out=str(tmp / "mix")))
        features, _ = build_features(read_examples(tmp / "mix" / "train.jsonl"), tokenizer, a.max_length)
        lengths = [len(f["input_ids"]) for f in features]
        random.Random(0).shuffle(lengths)
        batches = [lengths[i : i + a.batch] for i in range(0, len(lengths), a.batch)]
        random_share = 1 - sum(lengths) / sum(max(b) * len(b) for b in batches)  # the whole epoch, in random order
        runs: dict[str, list[dict]] = {"padded": [], "padding_free": []}
        for _ in range(a.repeats):
            for name in runs:
                runs[name].append(run(name == "padding_free", model_dir, features, tokenizer.pad_token_id, a, tmp))
        median = {k: sorted(v, key=lambda r: r["seconds"])[len(v) // 2] for k, v in runs.items()}
    write_result({
        "model": a.model or "tiny (untrained, built by the script)",
        "data": f"the open mix, {len(features)} rows within {a.max_length} tokens",
        "batch": a.batch, "group_by_length": a.group_by_length, "steps": {"timed": a.steps, "warmup": a.warmup, "repeats": a.repeats},
        "padded_share_of_padded_batches": median["padded"]["padded_share"],
        "padded_share_in_random_order": round(random_share, 4),
        "padded": median["padded"], "padding_free": median["padding_free"],
        "padding_free_over_padded_tokens_per_s": round(median["padding_free"]["tokens_per_s"] / median["padded"]["tokens_per_s"], 3),
        "all_runs": runs,
    }, a.out)


if __name__ == "__main__":
    main()
