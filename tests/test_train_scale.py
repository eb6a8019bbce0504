"""`funreason train --loss sft` against TRL's `SFTTrainer` with a completion-only loss, on one batch.

bench/perf/train_scale.py compares the two trainers' speed and memory; the comparison is like for
like only if they minimise the same loss. Here both train one step of the tiny model on the same
rows, in one batch: `funreason train` as a user runs it (a real process, its first logged loss), TRL
in this process on the rows `funreason train` renders, with `completion_mask` = the answer (think +
result) tokens, from which TRL builds its own labels. The first step's loss is the loss of the
untouched model on that batch for both, so the two must agree to float rounding. A mask shifted by
one token must not: that shows the figure depends on which tokens carry the loss.
"""

from __future__ import annotations

import json

import pytest
import torch

from conftest import SAMPLE, funreason

from funreason.chat import PROMPT, load_tokenizer
from funreason.formats import read_examples, write_examples
from funreason.train.data import build_features

ROWS = 4  # one batch holds every row, so the sampler's order cannot change what the step sees


def trl_loss(model_dir, features, out, shift: int = 0) -> float:
    """TRL `SFTTrainer`'s loss on its first step over `features` in one batch, completion-only.

    TRL is a test dependency of the suite (the `bench` extra, installed by `make install`): an
    ImportError here fails the test rather than skipping it."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    masks = [[int(s != PROMPT) for s in f["segments"]] for f in features]
    if shift:  # the control: the same count of loss tokens, each one place later
        masks = [([0] * shift + m)[: len(m)] for m in masks]
    data = Dataset.from_dict({"input_ids": [f["input_ids"] for f in features], "completion_mask": masks})
    args = SFTConfig(output_dir=str(out), max_steps=1, per_device_train_batch_size=len(features), logging_steps=1,
                     save_strategy="no", report_to=[], bf16=False, activation_checkpointing=False,
                     completion_only_loss=True, max_length=None, dataloader_num_workers=0, disable_tqdm=True,
                     use_cpu=not torch.cuda.is_available())
    tokenizer = load_tokenizer(str(model_dir), None)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(model_dir), args=args, train_dataset=data,
                         processing_class=tokenizer)
    return trainer.train().training_loss


def test_sft_loss_equals_trl_completion_only_loss(tmp_path, tiny_model_dir):
    data = tmp_path / "rows.jsonl"
    write_examples(read_examples(SAMPLE)[:ROWS], data)
    run = tmp_path / "run"
    funreason("train", "--model", tiny_model_dir, "--data", data, "--out", run, "--loss", "sft", "--full",
              "--max-steps", 1, "--batch-size", ROWS, "--logging-steps", 1, "--report-to", "none")
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    ours = next(r["loss"] for r in logged if "loss" in r and r["step"] == 1)

    # the rows `funreason train` trained on: same reader, tokenizer, length limit and (default) system prompt
    tokenizer = load_tokenizer(str(tiny_model_dir), None)
    features, report = build_features(read_examples(data), tokenizer, 4096)
    assert report.kept == len(features) == ROWS, report.summary()
    assert json.loads((run / "data_report.json").read_text())["kept"] == ROWS

    theirs = trl_loss(tiny_model_dir, features, tmp_path / "trl")
    assert abs(ours - theirs) < 1e-4, (ours, theirs)

    shifted = trl_loss(tiny_model_dir, features, tmp_path / "trl-shifted", shift=1)
    assert abs(shifted - theirs) > 1e-3, (shifted, theirs)
