"""Two-process training on the CPU (torchrun, gloo): different batches per rank, synchronised
gradients equal to one process with the same global batch, rank 0 alone writes, resume works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from conftest import SAMPLE

HELPER = Path(__file__).parent / "ddp_train.py"


def _run(tmp_path: Path, name: str, procs: int, **cfg) -> list[dict]:
    config = tmp_path / f"{name}.json"
    config.write_text(json.dumps(cfg))
    record = tmp_path / f"record-{name}"
    if procs == 1:
        cmd = [sys.executable, str(HELPER), str(config), str(record)]
    else:
        torchrun = Path(sys.executable).with_name("torchrun")
        cmd = [str(torchrun), "--standalone", "--nproc_per_node", str(procs), str(HELPER), str(config), str(record)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads((record / f"rank{r}.json").read_text()) for r in range(procs)]


def test_two_processes_train_as_one_with_the_same_global_batch(tmp_path, tiny_model_dir):

    common = dict(model=str(tiny_model_dir), data=str(SAMPLE), learning_rate=1e-3, warmup_ratio=0.0, allow_benchmark_overlap=True,
                  lr_scheduler="constant", report_to="none", group_by_length=False, logging_steps=1, max_length=2048,
                  batch_size=2, save_total_limit=None)
    two = tmp_path / "two"
    r0, r1 = _run(tmp_path, "two", 2, **common, out=str(two), max_steps=2, save_steps=1)
    (one,) = _run(tmp_path, "one", 1, **common, out=str(tmp_path / "one"), max_steps=2, save_steps=10**6, grad_accum=2)
    assert r0["world_size"] == r1["world_size"] == 2 and r0["steps"] == r1["steps"] == 2
    # each rank is handed its own rows; together they are the one process's accumulated batches
    assert not set(map(tuple, r0["batches"][:2])) & set(map(tuple, r1["batches"][:2]))
    assert [r0["batches"][0], r1["batches"][0], r0["batches"][1], r1["batches"][1]] == one["batches"][:4]
    # gradients were averaged over the ranks: the same weights everywhere, equal to the one process's
    for name, value in one["weights"].items():
        assert abs(r0["weights"][name] - r1["weights"][name]) <= 1e-9 * (1 + abs(value)), name
        assert abs(r0["weights"][name] - value) <= 1e-5 * (1 + abs(value)), name
    # rank 0 alone wrote the metrics (one line per step, not two) and the checkpoints and model
    steps = [json.loads(line)["step"] for line in (two / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 2], steps  # two logs and the closing summary
    assert sorted(p.name for p in two.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    assert (two / "final" / "model.safetensors").exists()

    # --resume: two more steps from checkpoint-2 end where four uninterrupted steps end
    r0, _ = _run(tmp_path, "resumed", 2, **common, out=str(two), max_steps=4, save_steps=1, resume=True)
    straight, _ = _run(tmp_path, "straight", 2, **common, out=str(tmp_path / "straight"), max_steps=4, save_steps=10**6)
    assert r0["steps"] == 4
    for name, value in straight["weights"].items():
        assert abs(r0["weights"][name] - value) <= 1e-5 * (1 + abs(value)), name
    steps = [json.loads(line)["step"] for line in (two / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 4], steps
