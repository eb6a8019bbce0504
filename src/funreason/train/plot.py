"""Loss curves of a training run (think / result / total loss and α) as a PNG."""

from __future__ import annotations

import json
from pathlib import Path


def read_metrics(path: str | Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                if "loss" in row:  # training logs only (not the final summary)
                    rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no training logs")
    return rows


def plot_metrics(metrics: str | Path, out: str | Path) -> Path:
    """L_think, L_result and the total loss (log scale) beside α, per step, as a PNG."""
    from funreason.plots import figure

    rows = read_metrics(metrics)
    steps = [r["step"] for r in rows]
    with figure(out, (10, 3.6), ncols=2) as (ax, ax_a):
        for key, label in (("loss", "total"), ("think_loss", "L_think"), ("result_loss", "L_result")):
            if any(key in r for r in rows):
                ax.plot(steps, [r.get(key) for r in rows], label=label)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_yscale("log")
        ax.legend()
        ax.set_title("losses")
        if any("alpha" in r for r in rows):
            ax_a.plot(steps, [r.get("alpha") for r in rows], color="tab:purple")
            ax_a.set_ylim(0, 1)
        else:
            ax_a.text(0.5, 0.5, "plain SFT: no α", ha="center", va="center", transform=ax_a.transAxes)
        ax_a.set_xlabel("step")
        ax_a.set_title("α")
    return Path(out)
