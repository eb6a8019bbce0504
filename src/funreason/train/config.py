"""`funreason train`'s settings: one dataclass, importable without torch (the command line, self-refinement's
nested `train:` section and YAML files all build it before anything heavy loads).

Invariant: `validate()` checks every value that can be checked without loading the model or the
data, so a mistake costs a second rather than a model load.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from funreason.config import cli


@dataclass
class TrainConfig:
    """Every setting of `funreason train` (command-line options and `--config FILE.yaml` keys)."""

    model: str = field(default="", metadata=cli("Base model: a Hugging Face directory or hub id.", required=True))
    data: str = field(default="", metadata=cli("Training data (any format the readers take).", required=True))
    out: str = field(default="", metadata=cli("Output folder (checkpoints, metrics, final model).", "--out", "-o", required=True))
    loss: str = field(default="srml", metadata=cli("srml or sft (plain token-mean cross-entropy)."))
    alpha: float = field(default=0.5, metadata=cli("α of SRML (fixed mode; the start of self mode)."))
    alpha_mode: str = field(default="fixed", metadata=cli("fixed or self (α adjusts itself each step)."))
    lora: int = field(default=0, metadata=cli("LoRA rank (0: full fine-tuning)."))
    lora_alpha: int | None = None  # default 2 × rank
    lora_dropout: float = 0.05
    lora_layers: int = field(default=0, metadata=cli("LoRA on the last N decoder layers only (0: all): a CPU's backward pass stops there."))
    max_steps: int = field(default=-1, metadata=cli("Stop after this many optimizer steps (-1: use --epochs)."))
    epochs: float = field(default=1.0, metadata=cli("Passes over the data (with --max-steps -1)."))
    learning_rate: float = field(default=2e-5, metadata=cli("Peak learning rate.", "--lr"))
    batch_size: int = field(default=4, metadata=cli("Per-device batch size."))
    grad_accum: int = field(default=1, metadata=cli("Gradient accumulation steps."))
    max_length: int = field(default=4096, metadata=cli("Longest sequence; longer rows are dropped and counted."))
    last_turn_only: bool = field(default=False, metadata=cli(
        "Learn only each record's last assistant turn (default: every assistant turn, each asked with the history before it)."))
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    lr_scheduler: str = "cosine"
    seed: int = field(default=42, metadata=cli("Seed of the data order and the LoRA initialisation."))
    logging_steps: int = field(default=10, metadata=cli("Steps between metrics lines."))
    save_steps: int = field(default=500, metadata=cli("Steps between checkpoints."))
    save_total_limit: int | None = 3
    gradient_checkpointing: bool = field(default=False, metadata=cli("Recompute activations in the backward pass (less memory, more time)."))
    group_by_length: bool = True
    padding_free: bool = field(default=False, metadata=cli(
        "Lay each batch's rows back to back in one sequence, position ids restarting per row: no padding, and "
        "attention stays within a row. Pays with --attn-implementation flash_attention_2 (a GPU); with sdpa or eager "
        "the mask covers the whole packed sequence and attention costs more than the padding it saves."))
    attn_implementation: str | None = field(default=None, metadata=cli(
        "Attention kernel given to transformers: sdpa, eager, flash_attention_2, ... (default: transformers' choice)."))
    bf16: bool | None = field(default=None, metadata=cli("bf16 precision (default: on a GPU that has it; on a CPU, fp32 weights with bf16 products: faster on long batches where the CPU has avx512_bf16 or AMX)."))
    loss_impl: str = field(default="auto", metadata=cli("auto, chunked (memory-efficient head) or logits."))
    chunk_size: int = 1024
    resume: bool = field(default=False, metadata=cli("Continue from the newest checkpoint in --out."))
    format: str = "auto"
    skip_invalid: bool = field(default=False, metadata=cli("Set unreadable rows aside in OUT/rejected.jsonl."))
    system_prompt: str | None = field(default=None, metadata=cli("System prompt file ({functions} is replaced) (default: BFCL's)."))
    chat_template: str | None = field(default=None, metadata=cli("A Jinja chat template file in place of the model's own; saved with the trained model."))
    report_to: str = field(default="tensorboard", metadata=cli("tensorboard, none, or another integration transformers reports to (installed by you, e.g. wandb)."))
    allow_benchmark_overlap: bool = field(default=False, metadata=cli(
        "Train even when the benchmark audit (`funreason data audit`) finds rows resembling BFCL entries by definition or "
        "question; the audit is recorded in run.json either way."))

    def validate(self) -> "TrainConfig":
        for name in ("model", "data", "out"):
            if not getattr(self, name):
                raise ValueError(f"--{name} is required")
        if self.loss not in ("srml", "sft"):
            raise ValueError(f"--loss must be srml or sft, not {self.loss!r}")
        if self.alpha_mode not in ("fixed", "self"):
            raise ValueError(f"--alpha-mode must be fixed or self, not {self.alpha_mode!r}")
        if self.loss_impl not in ("auto", "chunked", "logits"):
            raise ValueError(f"--loss-impl must be auto, chunked or logits, not {self.loss_impl!r}")
        # checked here, before the model loads, so a mistake costs a second rather than a load
        positive = {"learning_rate": self.learning_rate, "batch_size": self.batch_size, "grad_accum": self.grad_accum,
                    "max_length": self.max_length, "logging_steps": self.logging_steps, "save_steps": self.save_steps,
                    "chunk_size": self.chunk_size}
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"--{name.replace('_', '-')} must be greater than 0, not {value!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"--alpha must lie in [0, 1], not {self.alpha!r}")
        if self.lora < 0 or self.lora_layers < 0:
            raise ValueError("--lora and --lora-layers must be 0 or more")
        if self.lora_layers and not self.lora:  # full fine-tuning trains every layer; the option would be dropped
            raise ValueError(f"--lora-layers {self.lora_layers} places LoRA adapters; it needs --lora N (a rank), not full fine-tuning")
        default = {f.name: f.default for f in dataclasses.fields(self)}
        if self.loss == "sft" and (self.alpha != default["alpha"] or self.alpha_mode != default["alpha_mode"]):
            raise ValueError(f"--alpha and --alpha-mode weigh SRML's two segments; --loss sft has none to weigh "
                             f"(got --alpha {self.alpha}, --alpha-mode {self.alpha_mode})")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"--max-steps must be -1 (use --epochs) or a positive number, not {self.max_steps}")
        if self.max_steps == -1 and not self.epochs > 0:
            raise ValueError(f"--epochs must be greater than 0, not {self.epochs!r}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must lie in [0, 1), not {self.warmup_ratio!r}")
        from funreason.models.ref import check_model_ref

        if self.chat_template and not Path(self.chat_template).is_file():
            raise ValueError(f"--chat-template {self.chat_template}: no such file")
        if self.system_prompt and not Path(self.system_prompt).is_file():
            raise ValueError(f"--system-prompt {self.system_prompt}: no such file")
        check_model_ref(self.model)  # last: every value above is checked even when the model is mistyped too
        return self

    @property
    def srml_mode(self) -> str:
        return "sft" if self.loss == "sft" else self.alpha_mode
