"""Full fine-tuning on a CPU in fp32 against bf16 products with fp32 weights (`funreason train --bf16`).

    .venv/bin/python bench/perf/train_precision.py --model runs/smollm2   # the committed figure (SmolLM2-135M-Instruct)
    .venv/bin/python bench/perf/train_precision.py                        # small run: an untrained tiny model

The same model, rows (`--data`, the bundled sample by default), seed and steps, once per precision,
alternating (fp32, bf16, fp32, bf16, …): answer tokens per second of training (model loading left
out) and, so that speed is not bought with a different run, the loss at every step of the two.
Prints JSON and writes it to `--out` (bench/results/train_precision.json).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

from common import add_out, tiny_model, write_result

from funreason.data import bundled
from funreason.train.plot import read_metrics
from funreason.train.trainer import TrainConfig, train


class Clock(TrainerCallback):
    """When training starts and ends (after the model is loaded and the rows are read)."""

    def __init__(self) -> None:
        self.start = self.end = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_train_end(self, args, state, control, **kwargs):
        self.end = time.perf_counter()


def run(model: str, data: str, out: Path, steps: int, bf16: bool) -> tuple[float, list[float]]:
    """(answer tokens per second, loss at each step) of one training run."""
    clock = Clock()
    cfg = TrainConfig(model=model, data=data, out=str(out), loss="sft", lora=0, learning_rate=1e-4,
                      batch_size=4, max_length=1024, max_steps=steps, seed=0, logging_steps=1, save_steps=10**6,
                      report_to="none", bf16=bf16, allow_benchmark_overlap=True)  # a speed measure; the audit is in run.json
    train(cfg, log=lambda *_: None, callbacks=[clock])
    steps_logged = read_metrics(out / "metrics.jsonl")
    tokens = sum(m["result_tokens"] + m["think_tokens"] for m in steps_logged)
    return tokens / (clock.end - clock.start), [m["loss"] for m in steps_logged]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="A checkpoint folder (funreason model get smollm2-135m-instruct --out DIR; "
                                                  "default: an untrained tiny model, the small run).")
    ap.add_argument("--data", default=None, help="Training rows (default: the bundled sample).")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=2)
    add_out(ap, __file__)
    a = ap.parse_args()
    rates: dict[str, list[float]] = {"fp32": [], "bf16": []}
    losses: dict[str, list[float]] = {}
    data = a.data or str(bundled("sample_xlam.jsonl"))
    label = a.model or "tiny (untrained, funreason.train.tiny)"
    with tempfile.TemporaryDirectory() as tmp:
        model = a.model or tiny_model(Path(tmp) / "tiny")
        for i in range(a.repeats):
            for name in rates:
                rate, loss = run(model, data, Path(tmp) / f"{name}-{i}", a.steps, bf16=name == "bf16")
                rates[name].append(rate)
                losses[name] = loss
    med = {k: statistics.median(v) for k, v in rates.items()}
    write_result({
        "model": label, "data": a.data or "funreason.data.bundled('sample_xlam.jsonl')", "steps": a.steps, "batch_size": 4, "threads": torch.get_num_threads(),
        "cpu_bf16": torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported(),
        "answer_tokens_per_s": {k: [round(x, 1) for x in v] for k, v in rates.items()},
        "median_answer_tokens_per_s": {k: round(v, 1) for k, v in med.items()},
        "bf16_over_fp32": round(med["bf16"] / med["fp32"], 3),
        "loss_per_step": {k: [round(x, 4) for x in v] for k, v in losses.items()},
        "largest_loss_difference": round(max(abs(x - y) for x, y in zip(losses["fp32"], losses["bf16"])), 4),
    }, a.out)


if __name__ == "__main__":
    main()
