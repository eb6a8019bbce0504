"""Scoring a full multi-turn result set: `funreason eval score` against the official checker, whole
processes, side by side in one run. Prints JSON.

A result set for all 800 entries of the four multi-turn categories is built from the ground truth
(per entry one of: the ground truth played back, or a mutation of it: dropped / extra / reordered
calls, changed values, empty turns, prose steps, wrong turn counts; seeded), written in BFCL's
layout (`<dir>/funreason/multi_turn/BFCL_v4_<category>_result.json`). Then, `--repeats` times each,
alternating: FunReason scores it as a user does (`python -m funreason.cli eval score --category
multi_turn_base,... --results DIR --json`, one process), and bfcl-eval's own runner
scores the same files in one process (`eval_runner.evaluate_task` per category, what `bfcl
evaluate` runs, score files written; bench/agreement/bfcl_reference/official_multi_turn.py). The
figure is the ratio of the best times (goal: at most 0.5), and the accuracies must be equal.

    .venv/bin/python bench/perf/multi_turn_scoring.py              # all 800 entries, 3 repeats (the committed figure)
    .venv/bin/python bench/perf/multi_turn_scoring.py --quick      # 20 entries per category, 1 repeat
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, add_out, write_result

from funreason.evaluate.multi_turn import CATEGORIES, bfcl_version, load_category

OFFICIAL = ROOT / "bench" / "agreement" / "bfcl_reference" / "official_multi_turn.py"
_spec = importlib.util.spec_from_file_location("funreason_bench_multi_turn_agreement", ROOT / "bench" / "agreement" / "multi_turn_agreement.py")
agreement = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(agreement)


def write_results(folder: Path, per_category: int | None, seed: int = 0) -> dict[str, Path]:
    r = random.Random(seed)
    paths = {}
    for c in CATEGORIES:
        questions, answers = load_category(c)
        path = folder / "funreason" / "multi_turn" / f"BFCL_v4_{c}_result.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as f:
            for n, eid in enumerate(questions):
                if per_category is not None and n >= per_category:
                    break
                muts = agreement.mutations(questions[eid], answers[eid], r)
                label, result = muts[0] if r.random() < 0.4 else r.choice(muts)
                f.write(json.dumps({"id": eid, "result": result}) + "\n")
        paths[c] = path
    return paths


def ours(folder: Path) -> tuple[float, dict[str, float]]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "funreason.cli", "eval", "score", "--category", ",".join(CATEGORIES), "--results", str(folder), "--json"],
                       capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - t0
    return seconds, {r["category"]: r["accuracy"] for r in json.loads(p.stdout)["categories"]}


def official(folder: Path, score_dir: Path) -> tuple[float, dict[str, float]]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, str(OFFICIAL), "--result-dir", str(folder), "--score-dir", str(score_dir), "--model", "funreason",
                        "--categories", ",".join(CATEGORIES)], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - t0
    table = json.loads(p.stdout.strip().splitlines()[-1])
    return seconds, {c: v["accuracy"] for c, v in table.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="20 entries per category, 1 repeat")
    ap.add_argument("--repeats", type=int, default=None)
    add_out(ap, __file__)
    a = ap.parse_args()
    repeats = a.repeats or (1 if a.quick else 3)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "result"
        paths = write_results(folder, 20 if a.quick else None)
        entries = sum(sum(1 for _ in open(p)) for p in paths.values())
        runs = []
        for i in range(repeats):
            o_s, o_acc = ours(folder)
            t_s, t_acc = official(folder, Path(tmp) / f"score{i}")
            runs.append({"funreason_seconds": round(o_s, 2), "official_seconds": round(t_s, 2)})
            if o_acc != t_acc:
                raise SystemExit(f"accuracies differ: funreason {o_acc}, official {t_acc}")
    best_ours, best_official = min(x["funreason_seconds"] for x in runs), min(x["official_seconds"] for x in runs)
    write_result({"bfcl_eval": bfcl_version(), "entries": entries, "categories": list(CATEGORIES), "repeats": runs,
                  "funreason_seconds": best_ours, "official_seconds": best_official, "ratio": round(best_ours / best_official, 3),
                  "goal": "ratio <= 0.5", "accuracy": o_acc, "accuracy_equal": True,
                  "funreason_command": "python -m funreason.cli eval score --category multi_turn_base,multi_turn_miss_func,multi_turn_miss_param,multi_turn_long_context --results DIR --json",
                  "official_command": "python bench/agreement/bfcl_reference/official_multi_turn.py --result-dir D --score-dir S --categories ...",
                  "command": "python bench/perf/multi_turn_scoring.py" + (" --quick" if a.quick else "")}, a.out)


if __name__ == "__main__":
    main()
