"""The twenty-fifth try: the fifteenth (fp32) and seventeenth (--bf16) try's recipe (bench/replication.py sft_raw, seed 0, 480 steps,
full fine-tuning) from the base model, with 300 case and 300 joint rows (reasoning left out, as
in sft_raw) added to its training rows. Run from the checkout root with .venv/bin/python.

With no arguments it is the twenty-fifth try; `--case N --joint N --out DIR` change the counts of
generated rows and the run folder (the twenty-seventh try: `--case 900 --out runs/e27`); `--seed`
the training seed, `--save-steps`/`--keep` the checkpoints kept (the twenty-eighth try:
`--save-steps 40 --keep 5 --out runs/e28`, the twenty-fifth try's run again with its tail kept). The mix is
prepared under runs/e25 either way, so tries share it."""
import argparse, json, subprocess, sys
from pathlib import Path

sys.path.insert(0, "bench")
from replication import ReplicationConfig, log, prepare  # noqa: E402

from funreason.train.trainer import TrainConfig, train  # noqa: E402

cfg = ReplicationConfig(fc_open="../shared/data/fc-open", out="runs/e25", results="runs/e25/results", seeds=[0], steps=480,
                        bfcl_limit=100, check_calls=True, sample_rows=300, parallel_rows=300, no_fit_rows=300,
                        phrased_rows=300, optional_rows=300, asked_rows=300, lora_layers=0, lora=0, learning_rate=1e-4,
                        guided=True)
ap = argparse.ArgumentParser()
ap.add_argument("--case", type=int, default=300)
ap.add_argument("--joint", type=int, default=300)
ap.add_argument("--out", default="runs/e25")
ap.add_argument("--seed", type=int, default=0, help="the training seed (data order); the generated rows keep seed 0")
ap.add_argument("--save-steps", type=int, default=25)
ap.add_argument("--keep", type=int, default=1, help="checkpoints kept (more to average the run's tail)")
args = ap.parse_args()
model, _cot, raw, heldout = prepare(cfg)
D = Path(args.out)
D.mkdir(parents=True, exist_ok=True)
rows = raw.read_text(encoding="utf-8").splitlines()
for kind, n in (("case", args.case), ("joint", args.joint)):
    out = D / f"{kind}{n}_s0.jsonl"
    if not out.exists():
        subprocess.run([".venv/bin/funreason", "sample", "--kind", kind, "-n", str(n), "--seed", "0", "--out", str(out)], check=True)
    for line in out.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        d["reasoning"] = None
        rows.append(json.dumps(d, ensure_ascii=False))
# Written every time (the same bytes for the same counts): a file left half-written by a stopped
# run is never trained on, and train's resume checks the data's sha256 against its checkpoint.
data = D / f"train_raw+case{args.case}+joint{args.joint}.jsonl"
data.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
log(f"{len(rows)} training rows in {data}")
tc = TrainConfig(model=model, data=str(data), out=str(D / "run32"), loss="sft", alpha_mode="fixed", max_steps=480, batch_size=4,
                 learning_rate=1e-4, lora=0, lora_layers=0, max_length=1024, seed=args.seed, logging_steps=10,
                 save_steps=args.save_steps, save_total_limit=args.keep, report_to="none", warmup_ratio=0.05, resume=True, bf16=None)
log(f"trained: {train(tc, log=log).final}")
