"""Training throughput on CPU with the tiny model: SRML trainer vs the plain HF Trainer.

Same data, same model, same batches; the plain Trainer gets HF `labels` (-100 outside the answer)
and the model's own loss over full logits. Runs alternate (plain, srml, plain, srml, ...) and the
median tokens/s of each is compared. Prints JSON and writes it to `--out`
(bench/results/train_throughput.json). The defaults are already the small run that `make bench` runs.

    .venv/bin/python bench/perf/train_throughput.py [--steps 25] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer

from common import add_out, write_result

from funreason.data import bundled
from funreason.formats import read_examples
from funreason.train.data import FeatureDataset, SegmentCollator, build_features
from funreason.train.srml import SRMLLoss
from funreason.train.tiny import build_tiny_model
from funreason.train.trainer import SRMLTrainer, TrainConfig, training_arguments


def run(kind: str, model_dir: Path, dataset, tokenizer, steps: int, tmp: Path) -> float:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    cfg = TrainConfig(model=str(model_dir), data="-", out=str(tmp / kind), max_steps=steps, batch_size=4,
                      learning_rate=1e-3, logging_steps=steps, save_steps=10**9, report_to="none", group_by_length=False)
    args = training_arguments(cfg, save_strategy="no", disable_tqdm=True)
    tokens = sum(len(f["input_ids"]) for f in dataset.features[: steps * 4])
    if kind == "plain":
        trainer = Trainer(model=model, args=args, train_dataset=dataset,
                          data_collator=SegmentCollator(tokenizer.pad_token_id, labels=True))
    else:
        trainer = SRMLTrainer(model=model, args=args, train_dataset=dataset, srml=SRMLLoss("fixed", 0.5),
                              data_collator=SegmentCollator(tokenizer.pad_token_id))
    t0 = time.perf_counter()
    trainer.train()
    return tokens / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--repeats", type=int, default=3)
    add_out(p, __file__)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = build_tiny_model(tmp / "tiny")
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        features, _ = build_features(read_examples(bundled("sample_xlam.jsonl")), tokenizer, 4096)
        dataset = FeatureDataset(features)
        rates: dict[str, list[float]] = {"plain": [], "srml": []}
        run("plain", model_dir, dataset, tokenizer, 3, tmp)  # warm-up
        for _ in range(a.repeats):
            for kind in ("plain", "srml"):
                rates[kind].append(run(kind, model_dir, dataset, tokenizer, a.steps, tmp))
    med = {k: statistics.median(v) for k, v in rates.items()}
    write_result({
        "steps": a.steps, "batch_size": 4, "threads": torch.get_num_threads(),
        "tokens_per_s": {k: [round(x) for x in v] for k, v in rates.items()},
        "median_tokens_per_s": {k: round(v) for k, v in med.items()},
        "srml_over_plain": round(med["srml"] / med["plain"], 3),
    }, a.out)


if __name__ == "__main__":
    main()
