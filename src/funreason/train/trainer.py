"""`funreason train`: SFT with the SRML loss on Hugging Face Trainer (LoRA or full fine-tuning).

Multi-GPU comes through `accelerate launch` (DDP, FSDP, DeepSpeed; configs in configs/accelerate).
The loss takes the decoder's last hidden states (captured by a forward hook on the decoder while
the wrapped model runs, so DDP / PEFT see an ordinary forward; the head computes logits for one
position only) and the output head, and projects only answer tokens, in chunks. Under FSDP or
DeepSpeed ZeRO-3 the head's weight is sharded outside its own forward, so the loss falls back to
full logits (`loss_impl=logits`) there.

Logs L_think, L_result, α and tokens/s every `logging_steps` to `OUT/metrics.jsonl` and TensorBoard
(`OUT/runs`). Checkpoints (`OUT/checkpoint-N`) carry the self-adjusted α, so a resumed run continues
the same loss curve, and the chat template `OUT/final` is saved with (`served_tokenizer`), so every
saved folder renders `tools` as training did.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

from funreason.runinfo import releases_folders
from funreason.errors import FunReasonError
from funreason.formats.jsonl import write_text_atomic
from funreason.train.config import TrainConfig
from funreason.train.data import DataReport, FeatureDataset, SegmentCollator, build_features
from funreason.train.srml import SRMLLoss

SRML_STATE = "srml_state.json"


@dataclass
class TrainSummary:
    """What a `train` call did. `final` is written only when the run reached its last step."""

    steps: int
    train_loss: float
    seconds: float
    alpha: float | None  # SRML's α at the end (None for plain SFT)
    final: str
    data: DataReport

    def line(self) -> str:
        return (f"trained {self.steps} steps in {self.seconds:.1f}s · train loss {self.train_loss:.4f}"
                + (f" · α {self.alpha:.3f}" if self.alpha is not None else "") + f" · model: {self.final}")


class SRMLTrainer(Trainer):
    """Trainer whose loss is `SRMLLoss` over the batch's think / result segments."""

    def __init__(self, *args: Any, srml: SRMLLoss, loss_impl: str = "auto", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.srml = srml
        self.loss_is_scaled_for_ga = False  # our loss is a per-micro-batch mean: Trainer divides by GA
        sharded = self.is_fsdp_enabled or (
            self.is_deepspeed_enabled and _zero_stage(self.accelerator) == 3
        )
        self.loss_impl = ("logits" if sharded else "chunked") if loss_impl == "auto" else loss_impl
        # per logging window, as TRL's `_metrics`: one value per micro-batch, averaged when logged,
        # so a segment's loss is the mean over the micro-batches that had that segment
        self._metrics: dict[str, list[float]] = defaultdict(list)
        self._tokens = 0
        self._t_last = time.perf_counter()

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """The weights, then (in a checkpoint) SRML's α beside them: before `trainer_state.json`, which
        Trainer writes last, so a checkpoint that counts as whole (`latest_checkpoint`) has its α."""
        super().save_model(output_dir, _internal_call=_internal_call)
        if _internal_call and output_dir and self.args.should_save:
            write_text_atomic(Path(output_dir) / SRML_STATE, json.dumps({"alpha": float(self.srml.alpha)}))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        segments = inputs.pop("segments")
        # padding-free batches carry position ids and no mask (see `SegmentCollator`)
        ids, mask, pos = inputs["input_ids"], inputs.get("attention_mask"), inputs.get("position_ids")
        self.srml.train(model.training)  # α adjusts on training batches only
        if self.loss_impl == "chunked":
            unwrapped = _base_model(self.accelerator.unwrap_model(model))
            with _capture_output(unwrapped.get_decoder()) as captured:
                outputs = model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=1, use_cache=False)
            head = unwrapped.get_output_embeddings()
            out = self.srml(captured["hidden"], head.weight, ids, segments, mask, getattr(head, "bias", None))
        else:
            outputs = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False)
            out = self.srml.forward_logits(outputs.logits, ids, segments, mask)
        if model.training:
            self._accumulate(out, ids.numel() if mask is None else int(mask.sum()))
        return (out.loss, outputs) if return_outputs else out.loss

    def _accumulate(self, out, tokens: int) -> None:
        m = self._metrics
        if out.n_think:
            m["think_loss"].append(float(out.think_loss))
        if out.n_result:
            m["result_loss"].append(float(out.result_loss))
        if not math.isnan(out.alpha):
            m["alpha"].append(out.alpha)
        m["think_tokens"].append(out.n_think)
        m["result_tokens"].append(out.n_result)
        self._tokens += tokens

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._metrics:
            m = self._metrics
            for key in ("think_loss", "result_loss"):
                if m[key]:
                    logs[key] = sum(m[key]) / len(m[key])
            if m["alpha"]:
                logs["alpha"] = m["alpha"][-1]  # the latest α the loss used
            logs["think_tokens"], logs["result_tokens"] = int(sum(m["think_tokens"])), int(sum(m["result_tokens"]))
            now = time.perf_counter()
            logs["tokens_per_s"] = self._tokens * self.args.world_size / max(now - self._t_last, 1e-9)
            self._tokens, self._t_last = 0, now
            m.clear()
        super().log(logs, start_time)

    def _issue_warnings_after_load(self, load_result: Any) -> None:
        # A checkpoint stores a tied head once, as the input embeddings; loading copies into that one
        # tensor in place, so the head's key is missing by design and nothing is lost. Trainer warns
        # of it all the same (SmolLM2's `lm_head.weight`); only keys of tensors of their own are news.
        params = dict(self.model.named_parameters(remove_duplicate=False))
        stored = {id(p) for k, p in params.items() if k not in load_result.missing_keys}
        missing = [k for k in load_result.missing_keys if not (k in params and id(params[k]) in stored)]
        super()._issue_warnings_after_load(load_result._replace(missing_keys=missing))


def _zero_stage(accelerator) -> int | None:
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    return getattr(plugin, "zero_stage", None) if plugin is not None else None


def _base_model(model):
    """The transformers model under a PEFT wrapper (LoRA layers stay injected in it)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


@contextmanager
def _capture_output(module):
    captured: dict[str, torch.Tensor] = {}

    def hook(_mod, _args, output):
        captured["hidden"] = output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]

    handle = module.register_forward_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()


class MetricsCallback(TrainerCallback):
    """Appends every log to OUT/metrics.jsonl (SRML's α goes with each checkpoint: `SRMLTrainer.save_model`)."""

    def __init__(self, out: Path):
        self.path = out / "metrics.jsonl"

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"step": state.global_step, **logs}) + "\n")


class TrainingDiverged(FunReasonError, ValueError):
    """The loss or the weights stopped being finite numbers: nothing more is learned, and no `final/` is written."""


class StopOnNonFinite(TrainerCallback):
    """Stops a run at the first logged loss that is not a finite number (a diverged run goes on to
    print a loss and write a model of NaNs otherwise)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            raise TrainingDiverged(f"step {state.global_step}: the loss is {loss}; the run diverged (try a lower --lr); "
                                   f"no final model was written")


class ProgressLog(TrainerCallback):
    """One readable line per logging step through `log` (rank 0 only), in place of Trainer's tqdm
    bar and raw dicts, which fill a log file with carriage returns and `{'loss': '7.395', …}`.

    The time per step is measured from the first logged step on, once there is one: the steps
    before it hold the run's longest batch (`group_by_length` puts it first, so that memory runs
    out at once if it will) and the warm-up. Counted in, they made a run's first line read 8.4 s a
    step where the whole run went at 5.0, and every later line too slow by a share of that."""

    def __init__(self, log: Any, clock: Any = time.perf_counter):
        self.log = log
        self.clock = clock
        self.start: tuple[float, int] = (clock(), 0)  # (time, step) the rate is measured from
        self.settled = False  # whether `start` is the first logged step yet

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = (self.clock(), state.global_step)
        self.settled = False

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        now = self.clock()
        t0, step0 = self.start
        per_step = (now - t0) / max(state.global_step - step0, 1)
        if not self.settled:
            self.start, self.settled = (now, state.global_step), True
        left = max(state.max_steps - state.global_step, 0) * per_step
        parts = [f"step {state.global_step}/{state.max_steps}", f"loss {float(logs['loss']):.4f}"]
        if "think_loss" in logs:
            parts[-1] += f" (think {float(logs['think_loss']):.4f} · result {float(logs['result_loss']):.4f})"
        if "alpha" in logs:
            parts.append(f"α {float(logs['alpha']):.3f}")
        if "learning_rate" in logs:
            parts.append(f"lr {float(logs['learning_rate']):.2e}")
        parts.append(f"{per_step:.1f} s/step · about {left / 60:.0f} min left" if left >= 60 else f"{per_step:.1f} s/step · {left:.0f} s left")
        self.log(" · ".join(parts))


def latest_checkpoint(out: Path, log=print) -> Path | None:
    """The newest whole checkpoint in `out`. Trainer writes `trainer_state.json` after the weights,
    optimizer and RNG state, so a checkpoint without it was cut off mid-write (a kill, a full disk):
    it is skipped, with a line saying so, and the one before it is used."""
    ckpts = sorted((p for p in out.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()),
                   key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    for ckpt in ckpts:
        if (ckpt / "trainer_state.json").is_file():
            return ckpt
        log(f"skipping {ckpt}: incomplete (no trainer_state.json; it was cut off while being written)")
    return None


# settings that may change between a run and its resumption: how long it runs, and what it logs
_RESUMABLE = ("out", "resume", "max_steps", "epochs", "logging_steps", "save_steps", "save_total_limit", "report_to")


def is_main_process() -> bool:
    """Rank 0 of a torchrun / accelerate job, or a single process: the one that writes the run's files."""
    return int(os.environ.get("RANK", "0")) == 0


def end_process_group() -> None:
    """Destroy this process's default process group, if a torchrun / accelerate job made one.

    For the end of a process that trained under torchrun: left to the interpreter's exit, gloo's
    worker threads can be torn down while still joinable, and the process aborts ("terminate called
    without an active exception", SIGABRT) after the run has finished and saved; torchrun then reports
    the whole job as failed. Seen here once in `tests/test_distributed.py` under a loaded CPU.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def claim_run(cfg: TrainConfig) -> None:
    """Record in `out/run.json` what the run trains (the model, the data's SHA-256, every setting
    but `_RESUMABLE`), or refuse a folder that holds another run's checkpoints, metrics or model:
    `--resume` would continue that run, and without it its files would mix with this one's."""
    import hashlib

    from funreason.runinfo import claim, file_sha256, model_identity

    out = Path(cfg.out)
    # a folder or a hub dataset id is recorded by (the digest of) its name
    data_sha256 = file_sha256(cfg.data) if Path(cfg.data).is_file() else hashlib.sha256(cfg.data.encode()).hexdigest()
    settings = {k: v for k, v in asdict(cfg).items() if k not in _RESUMABLE and k not in ("model", "data")}  # data: by content
    for name in ("chat_template", "system_prompt"):  # files read to render every row: by content too, not by path alone
        if getattr(cfg, name):
            settings[f"{name}_sha256"] = file_sha256(getattr(cfg, name))
    results = [out / "metrics.jsonl", out / "final", *out.glob("checkpoint-*")]
    # every rank checks; rank 0 alone records
    audit = benchmark_audit(cfg)
    claim(out, {"verb": "train", **model_identity(cfg.model), "data_sha256": data_sha256, **settings, "benchmark_audit": audit}, results,
          write=is_main_process())
    if not cfg.resume and any(p.exists() for p in results):
        raise FileExistsError(f"{out} holds checkpoints or a model of this run already: add --resume to continue it, "
                              "or choose a new --out")


class BenchmarkOverlap(ValueError):
    """The training data holds rows that resemble BFCL entries by definition or question."""


def benchmark_audit(cfg: TrainConfig) -> dict[str, Any]:
    """`funreason data audit` of the training file (a folder or hub id is recorded as not audited):
    raises BenchmarkOverlap with the report's first rows when a row resembles a BFCL entry by
    definition or question (`data.audit.BLOCKING`), unless `allow_benchmark_overlap`; the report goes
    to OUT/benchmark_audit/ either way."""
    from funreason.data.audit import audit_file

    if not Path(cfg.data).is_file():
        return {"audited": False, "why": "not a file"}
    folder = Path(cfg.out) / "benchmark_audit"
    summary = audit_file(cfg.data, folder, cfg.format) if is_main_process() else None
    if summary is None:  # the other ranks read what rank 0 would write; they audit the same bytes the same way
        from funreason.data.audit import audit_examples
        from funreason.formats import Reader

        summary = audit_examples(Reader(cfg.data, format=cfg.format))
    if summary.blocking and not cfg.allow_benchmark_overlap:
        raise BenchmarkOverlap(f"{cfg.data}: {summary.line()}; training stops (report: {folder}/audit.md):\n{summary.blocking_report()}\n"
                               "Remove those rows, or pass --allow-benchmark-overlap to train on them anyway (recorded in run.json).")
    return {"audited": True, "rows": summary.rows, "flagged": summary.flagged, "blocking": summary.blocking,
            "allowed": bool(summary.blocking and cfg.allow_benchmark_overlap), "report": str(folder / "audit.jsonl")}


def load_model(cfg: TrainConfig):
    from transformers import AutoModelForCausalLM

    from funreason.chat import load_tokenizer

    tokenizer = load_tokenizer(cfg.model, cfg.chat_template)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    kw = {"attn_implementation": cfg.attn_implementation} if cfg.attn_implementation else {}
    model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=_weights_dtype(cfg), **kw)
    return prepare_model(model, cfg), tokenizer


def prepare_model(model: Any, cfg: TrainConfig) -> Any:
    """What `funreason train` does to a loaded model before training: gradient checkpointing and the
    LoRA adapter of `cfg` (PEFT-wrapped then). Public so that a benchmark building a model from a
    config with random weights (`bench/perf/train_scale.py`) trains exactly what `train` trains."""
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if cfg.lora:
        if cfg.gradient_checkpointing:
            model.enable_input_require_grads()
        n_layers = model.config.num_hidden_layers
        last = 0 < cfg.lora_layers < n_layers
        # PEFT takes a layer subset only with module names listed (not "all-linear")
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.get_decoder().named_modules() if isinstance(m, torch.nn.Linear)})
        with warnings.catch_warnings():
            # PEFT itself still asks transformers for `is_gradient_checkpointing` (deprecated in 5.x):
            # a warning about PEFT's code, not ours, on every LoRA run
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            model = _lora(model, cfg, linear, last, n_layers)
    return model


def _lora(model: Any, cfg: TrainConfig, linear: list[str], last: bool, n_layers: int) -> Any:
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(
        r=cfg.lora,
        lora_alpha=cfg.lora_alpha or 2 * cfg.lora,
        lora_dropout=cfg.lora_dropout,
        target_modules=linear if last else "all-linear",
        task_type="CAUSAL_LM",
        layers_to_transform=list(range(n_layers - cfg.lora_layers, n_layers)) if last else None,
    ))


def _use_bf16(cfg: TrainConfig) -> bool:
    if cfg.bf16 is not None:
        return cfg.bf16
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


# the CPU flags (x86 `flags`, Arm `Features` in /proc/cpuinfo) of instructions that multiply bf16 natively
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def cpu_bf16_warning(cpuinfo: str | None = None) -> str | None:
    """A warning when bf16 products would run on a CPU without bf16 instructions, else None.

    Without them the products are converted in software: a full fine-tuning of SmolLM2-135M on a
    CPU with avx512f but no avx512_bf16 had not logged step 10 after 8 minutes with bf16 products,
    where the same run in fp32 logged it at 2 min 36 s. None also when the flags cannot be read (no
    /proc/cpuinfo): nothing is claimed that was not seen.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    flags = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    if not flags or flags & BF16_FLAGS:
        return None
    return ("warning: --bf16 on a CPU without bf16 instructions (none of avx512_bf16, amx_bf16, bf16 among its "
            "flags): the products are converted in software and run slower than fp32; leave --bf16 off here")


def _weights_dtype(cfg: TrainConfig) -> torch.dtype:
    """The dtype the trained weights are held in.

    On a GPU, bf16 training holds the weights in bf16 too (half the memory, as users of 7B models
    expect). On a CPU, memory is not what runs out: the weights stay fp32 and Trainer's autocast runs
    only the products in bf16, so a full fine-tuning's small updates (lr 5e-5 × a small gradient) are
    not rounded away by bf16's 8-bit mantissa.
    """
    return torch.bfloat16 if _use_bf16(cfg) and torch.cuda.is_available() else torch.float32


def prepare_data(cfg: TrainConfig, tokenizer) -> tuple[FeatureDataset, DataReport, Any]:
    from funreason.formats import Reader

    out = Path(cfg.out)
    # every rank reads the same rows; rank 0 alone writes the rejects (a second writer would truncate its file)
    reader = Reader(cfg.data, format=cfg.format, skip_invalid=cfg.skip_invalid, rejected=out / "rejected.jsonl" if is_main_process() else None)
    system = Path(cfg.system_prompt).read_text(encoding="utf-8") if cfg.system_prompt else None
    features, report = build_features(reader, tokenizer, cfg.max_length, system=system, last_turn_only=cfg.last_turn_only)
    if not features:
        raise ValueError(f"{cfg.data}: no trainable rows ({report.summary()})")
    return FeatureDataset(features), report, reader


def training_arguments(cfg: TrainConfig, **overrides: Any) -> TrainingArguments:
    args = dict(
        output_dir=cfg.out,
        max_steps=cfg.max_steps,
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        lr_scheduler_type=cfg.lr_scheduler,
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        bf16=_use_bf16(cfg),
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        remove_unused_columns=False,
        report_to=[] if cfg.report_to == "none" else [cfg.report_to],
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        disable_tqdm=True,  # ProgressLog prints readable lines instead
    )
    if not torch.cuda.is_available() and args["bf16"]:
        args.update(use_cpu=True)  # Trainer takes bf16 without a GPU only when told it is on the CPU
    if not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # without this, Trainer on CPU ignores torchrun's WORLD_SIZE: each process would train alone
        # on every batch (gloo is the CPU backend of torch.distributed)
        args.update(use_cpu=True, ddp_backend="gloo")
    args.update(overrides)
    return TrainingArguments(**args)


@releases_folders
def train(cfg: TrainConfig, log=print, callbacks: list | None = None) -> TrainSummary:
    """Run training; returns a summary. `callbacks` are extra TrainerCallbacks (tests use one)."""
    cfg.validate()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    claim_run(cfg)  # before the model loads: another run's folder costs a second, not a load
    main = is_main_process()
    if main and _use_bf16(cfg) and not torch.cuda.is_available() and (note := cpu_bf16_warning()):
        log(note)
    model, tokenizer = load_model(cfg)
    if main and cfg.padding_free and "flash" not in str(model.config._attn_implementation):
        log(f"note: --padding-free with {model.config._attn_implementation} attention masks the whole packed batch, "
            "so attention costs grow with the batch's total length squared (slower than padding on a CPU: docs/performance.md); it pays with --attn-implementation flash_attention_2")
    dataset, report, reader = prepare_data(cfg, tokenizer)
    log(f"data: {report.summary()}" + (f" · {reader.rejected_count} unreadable rows → {out / 'rejected.jsonl'}" if reader.rejected_count else ""))
    if main:
        write_text_atomic(out / "data_report.json", json.dumps({**report.to_dict(), "rejected": reader.rejected_count}, indent=2))
    srml = SRMLLoss(cfg.srml_mode, alpha=cfg.alpha, chunk_size=cfg.chunk_size)
    resume = latest_checkpoint(out, log) if cfg.resume else None
    if cfg.resume and resume is None:
        log(f"no checkpoint in {out}: starting from the beginning")
    if resume is not None:
        srml.alpha.fill_(_resumed_alpha(resume, cfg))
        if main:
            _truncate_metrics(out / "metrics.jsonl", int(resume.name.split("-")[-1]), log)
        log(f"resuming from {resume}")
    elif main and (out / "metrics.jsonl").exists():
        (out / "metrics.jsonl").unlink()
    if main:
        write_text_atomic(out / "train_config.json", json.dumps(asdict(cfg), indent=2))
    trainer = SRMLTrainer(
        model=model,
        args=training_arguments(cfg),
        train_dataset=dataset,
        data_collator=SegmentCollator(tokenizer.pad_token_id, padding_free=cfg.padding_free),
        # saved into every checkpoint-N as into final: each is a model folder served, averaged or
        # trained further with the template it was trained with (the data is rendered above)
        processing_class=served_tokenizer(tokenizer, cfg),
        srml=srml,
        loss_impl=cfg.loss_impl,
        callbacks=[MetricsCallback(out), StopOnNonFinite(), ProgressLog(log), *(callbacks or [])],
    )
    trainer.remove_callback(PrinterCallback)  # it prints each log as a raw dict
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.perf_counter() - t0
    final = out / "final"
    if trainer.state.global_step >= trainer.state.max_steps:
        if not math.isfinite(result.training_loss):
            raise TrainingDiverged(f"the mean training loss is {result.training_loss}; the run diverged (try a lower --lr); no final model was written")
        _save_final(trainer, final, cfg)
    return TrainSummary(trainer.state.global_step, result.training_loss, seconds, float(srml.alpha) if cfg.loss == "srml" else None,
                        str(final), report)


def served_tokenizer(tokenizer: Any, cfg: TrainConfig) -> Any:
    """A copy of `tokenizer` whose chat template renders `tools` as training rendered them
    (`carry_tools_prompt`), for engines that take `tools`; the copy is what every saved folder holds."""
    import copy

    from funreason.chat import carry_tools_prompt

    system = Path(cfg.system_prompt).read_text(encoding="utf-8") if cfg.system_prompt else None
    served = copy.deepcopy(tokenizer)
    served.chat_template = carry_tools_prompt(tokenizer.chat_template, system)
    return served


def _save_final(trainer: Trainer, final: Path, cfg: TrainConfig) -> None:
    model = trainer.accelerator.unwrap_model(trainer.model)
    if not trainer.is_world_process_zero():
        return
    broken = [name for name, p in model.named_parameters() if p.requires_grad and not torch.isfinite(p).all()]
    if broken:  # the last update diverged after the last logged loss: a model of NaNs is no model
        raise TrainingDiverged(f"{len(broken)} trained tensors are not finite (e.g. {broken[0]}); the run diverged "
                               f"(try a lower --lr); no final model was written")
    if cfg.lora:
        model.save_pretrained(final.parent / "adapter")
        model = model.merge_and_unload()
    model.save_pretrained(final)
    trainer.processing_class.save_pretrained(final)  # `served_tokenizer`, as in each checkpoint


def _resumed_alpha(resume: Path, cfg: TrainConfig) -> float:
    """α as the checkpoint `resume` stored it. The self mode's α is learned, so a checkpoint without
    a readable `srml_state.json` (cut off after its weights were saved) cannot be resumed as it was;
    the fixed modes' α is the setting's."""
    state = resume / SRML_STATE
    try:
        return float(json.loads(state.read_text(encoding="utf-8"))["alpha"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        if cfg.srml_mode != "self":
            return cfg.alpha
        raise ValueError(f"{state}: the learned α cannot be read ({e.__class__.__name__}); the checkpoint is not whole: delete "
                         f"{resume} to resume from an earlier one, or {resume.parent} to start over") from None


def _truncate_metrics(path: Path, step: int, log: Callable[[str], None] = print) -> None:
    """Drop logs past the checkpoint being resumed, and the closing summary of the run that stopped:
    they will be logged again. A line cut off by the stop (the file is appended to) is dropped and named."""
    if not path.exists():
        return
    kept = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            log(f"{path}:{n}: an unreadable log line (cut off when the run stopped) is dropped")
            continue
        # an earlier run's closing summary (`train_runtime`, …) goes too: the resumed run writes its own
        if isinstance(row, dict) and row.get("step", 0) <= step and "train_runtime" not in row:
            kept.append(line)
    write_text_atomic(path, "".join(line + "\n" for line in kept))
