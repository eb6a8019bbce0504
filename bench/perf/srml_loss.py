"""SRML's chunked head + loss against the plain path (full logits + F.cross_entropy).

Default size: Qwen2.5-1.5B's head (hidden 1536, vocab 151,936), 8,192 answer tokens, CPU fp32.
Each path runs in its own subprocess so peak memory (ru_maxrss on CPU, max_memory_allocated on
GPU) is measured cleanly above the inputs; gradients are compared in the parent. Prints JSON and
writes it to `--out` (bench/results/srml_loss.json).

    python bench/perf/srml_loss.py                               # CPU, Qwen2.5-1.5B head (about 4 min, 20 GB)
    python bench/perf/srml_loss.py --quick                       # 1,024 tokens, hidden 256, vocab 32,000: the small run
    python bench/perf/srml_loss.py --device cuda --dtype bf16 --hidden 3584 --vocab 152064 --liger
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import torch

from common import add_out, write_result

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def make_inputs(a):
    g = torch.Generator().manual_seed(0)
    dtype = DTYPES[a.dtype]
    # in place, so that no temporary raises the peak before the measured run starts
    h = torch.randn(1, a.tokens + 1, a.hidden, generator=g).mul_(0.5).to(a.device, dtype).requires_grad_()
    w = torch.randn(a.vocab, a.hidden, generator=g).mul_(0.02).to(a.device, dtype).requires_grad_()
    ids = torch.randint(0, a.vocab, (1, a.tokens + 1), generator=g).to(a.device)
    seg = torch.ones(1, a.tokens + 1, dtype=torch.long)
    seg[:, int(a.tokens * 0.9) :] = 2  # 90% think, 10% result: the paper's imbalance
    seg[:, 0] = 0
    return h, w, ids, seg.to(a.device)


def run_one(a) -> None:
    """Child: one path, forward + backward, report time and peak memory, save gradients."""
    from funreason.train.srml import SRMLLoss

    torch.set_num_threads(os.cpu_count() or 1)
    h, w, ids, seg = make_inputs(a)
    loss_fn = SRMLLoss("fixed", alpha=0.5, chunk_size=a.chunk)
    cuda = a.device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _current_rss()
    t0 = time.perf_counter()
    if a.path == "chunked":
        loss = loss_fn(h, w, ids, seg).loss
    elif a.path == "plain":
        logits = (h @ w.T).float()
        loss = loss_fn.forward_logits(logits, ids, seg).loss
    elif a.path == "liger":
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy

        hh, tt, ss = h[0, :-1], ids[0, 1:], seg[0, 1:]
        think, result = ss == 1, ss == 2
        lt = liger_fused_linear_cross_entropy(hh[think], w, tt[think])
        lr = liger_fused_linear_cross_entropy(hh[result], w, tt[result])
        loss = 0.5 * lt + 0.5 * lr
    loss.backward()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    if cuda:
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    torch.save({"loss": loss.detach().float().cpu(), "grad_h": h.grad.float().cpu(), "grad_w": w.grad.float().cpu()}, a.save)
    print(json.dumps({"seconds": seconds, "peak_bytes": peak}))


def _current_rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=8192)
    p.add_argument("--hidden", type=int, default=1536)
    p.add_argument("--vocab", type=int, default=151936)
    p.add_argument("--dtype", choices=list(DTYPES), default="fp32")
    p.add_argument("--device", default="cpu")
    p.add_argument("--chunk", type=int, default=1024)
    p.add_argument("--liger", action="store_true", help="also run liger-kernel's fused linear cross-entropy (GPU)")
    p.add_argument("--quick", action="store_true", help="1,024 tokens, hidden 256, vocab 32,000, chunk 256 (the small run)")
    add_out(p, __file__)
    p.add_argument("--path", help=argparse.SUPPRESS)
    p.add_argument("--save", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.path:
        return run_one(a)
    if a.quick:
        a.tokens, a.hidden, a.vocab, a.chunk = 1024, 256, 32000, 256
    paths = ["plain", "chunked"] + (["liger"] if a.liger else [])
    results, grads = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            save = os.path.join(tmp, f"{path}.pt")
            cmd = [sys.executable, __file__, "--path", path, "--save", save] + [
                f"--{k}={v}" for k, v in vars(a).items() if k in ("tokens", "hidden", "vocab", "dtype", "device", "chunk")
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                results[path] = {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else f"exit {proc.returncode}"}
                continue
            results[path] = json.loads(proc.stdout.strip().splitlines()[-1])
            grads[path] = torch.load(save)
    report = {
        "config": {k: v for k, v in vars(a).items() if k not in ("path", "save", "out")},
        "paths": results,
    }
    if "plain" in grads:
        ref = grads["plain"]
        for path in grads:
            if path == "plain":
                continue
            r = results[path]
            report[path + "_vs_plain"] = {
                "memory_ratio": r["peak_bytes"] / results["plain"]["peak_bytes"],
                "time_ratio": r["seconds"] / results["plain"]["seconds"],
                "loss_rel_err": rel_err(grads[path]["loss"], ref["loss"]),
                "grad_h_rel_err": rel_err(grads[path]["grad_h"], ref["grad_h"]),
                "grad_w_rel_err": rel_err(grads[path]["grad_w"], ref["grad_w"]),
            }
    write_result(report, a.out)


if __name__ == "__main__":
    main()
