"""The thirty-sixth try: the pre-registered re-measurement (NOTES.md), run piece by piece, resumable.

Invariant: the work folder holds one plan. `plan.json` there is written on the first run with the
plan's hash (recipes, seeds, training and decoding settings, entries scored); a later run whose plan
hashes differently refuses to touch the folder. A piece counts as done only when its output exists
*and* records this plan's settings (a training's `run.json` its data hash, seed and steps; an
evaluation's `report.json` its model, split, entries and decoding); anything else in its place
stops the run with the way out. `progress.json` keeps the wall and CPU seconds every piece has
spent (interrupted attempts included: the clock is saved each minute; `adjustments.jsonl` corrects
it, with a reason per line, for holds and for attempts killed before it was saved); a piece is not started when the seconds spent plus its
estimate would pass the budget. Every heavy step is a plain `funreason` subprocess (children
inherit `nice -n 19`), its output in `logs/`. Run from anywhere; the code imported is this
checkout's `src/`.

    nice -n 19 python experiments/36-remeasure/run.py --work runs/e36          # the plan (resumes)
    python experiments/36-remeasure/run.py --dry-run                            # the plan and its cost
    python experiments/36-remeasure/run.py --tiny --work /tmp/e36-tiny          # the same on the tiny model
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]  # the checkout of this script: default work folder and ledger
CODE = ROOT  # the checkout whose src/ every piece runs (`--code`: a worktree pinned for the whole experiment)

BUDGET_S = 36_000  # 10 hours of this machine, all pieces together (wall seconds)
SEEDS = (0, 1, 2)
KIND_ROWS, KIND_SEED = 300, 0
# the twenty-fifth try's rows (experiments/25-fromscratch/run.py: bench/replication prepare() with sample,
# parallel, no-fit, phrased, optional, asked ×300, then case and joint ×300), in that order
RECIPES = {"best": ("mixed", "parallel", "no-fit", "phrased", "optional", "asked", "case", "joint"),
           "pre-study": ("mixed", "parallel", "no-fit")}
# the twenty-fifth try's training settings but max_steps (NOTES.md: halved for both recipes to fit the budget)
TRAIN = {"loss": "sft", "alpha_mode": "fixed", "lora": 0, "lora_layers": 0, "max_steps": 240, "learning_rate": 1e-4,
         "batch_size": 4, "grad_accum": 1, "max_length": 1024, "warmup_ratio": 0.05, "weight_decay": 0.0,
         "lr_scheduler": "cosine", "group_by_length": True, "bf16": False, "logging_steps": 10, "save_steps": 20,
         "save_total_limit": 1, "report_to": "none"}
# the README's result rows: guided, 4 beams, 192 new tokens, batch 24, BFCL's prompting mode
DECODE = {"guided": True, "beams": 4, "max_tokens": 192, "batch": 24}
DEV = {"categories": ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance"), "limit": 40}
TEST_WHOLE = ("simple_python", "irrelevance", "live_simple", "live_parallel", "live_parallel_multiple", "live_relevance")
TEST_BLOCKS = {"live_multiple": (2, 40), "live_irrelevance": (2, 30)}  # (blocks, entries each), evenly spaced
# costs from the records (NOTES.md): 5,898 s for 480 steps of the best recipe (experiments/25-fromscratch);
# 1,103 s to score the 500 entries ids 0-99 of the five categories with 4 beams (522 s greedy)
RECORD_STEP_S = 5898 / 480
RECORD_EVAL_S = {4: 1103.0, 1: 522.0}
LOAD_S = 30.0  # per evaluation process: start, model load, grammars (a guess; replaced by what is measured)


@dataclasses.dataclass
class Piece:
    name: str
    kind: str  # model | mix | sample | assemble | audit | train | eval
    estimate: float  # seconds
    args: list[str] = dataclasses.field(default_factory=list)  # the funreason command line, if any
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)


def settings(tiny: bool) -> dict[str, Any]:
    """Everything that makes the plan this plan (hashed)."""
    train = {**TRAIN, **({"max_steps": 2, "save_steps": 1} if tiny else {})}
    decode = {**DECODE, **({"max_tokens": 16} if tiny else {})}
    return {"tiny": tiny, "recipes": RECIPES, "seeds": SEEDS, "kind_rows": KIND_ROWS, "kind_seed": KIND_SEED, "train": train,
            "decode": decode, "dev": {**DEV, "limit": 1 if tiny else DEV["limit"]}, "test_whole": TEST_WHOLE,
            "test_blocks": {c: (b, 1 if tiny else n) for c, (b, n) in TEST_BLOCKS.items()}, "limit_whole": 1 if tiny else None,
            "audit": "drop every row the audit marks blocking; train without --allow-benchmark-overlap",
            "drop_calls_without_arguments": True, "reasoning": None}


def plan_hash(s: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(s, sort_keys=True).encode()).hexdigest()[:16]


def block_starts(n: int, blocks: int) -> list[int]:
    return [i * n // blocks for i in range(blocks)]


def eval_sets(s: dict[str, Any]) -> list[dict[str, Any]]:
    """Each evaluation process of one model: name, split, categories, limit, skip."""
    from funreason.evaluate.splits import load_registry

    reg = load_registry()
    sets = [{"name": "dev", "split": "dev", "categories": list(s["dev"]["categories"]), "limit": s["dev"]["limit"], "skip": 0},
            {"name": "test-whole", "split": "test", "categories": list(s["test_whole"]), "limit": s["limit_whole"], "skip": 0}]
    for cat, (blocks, n) in s["test_blocks"].items():
        for i, start in enumerate(block_starts(reg.categories[cat].test_count, blocks)):
            sets.append({"name": f"test-{cat}-{i}", "split": "test", "categories": [cat], "limit": n, "skip": start})
    return sets


def entries_of(es: dict[str, Any]) -> list[Any]:
    from funreason.evaluate.splits import load_split

    return [ex for c in es["categories"] for ex in load_split(c, es["split"], es["limit"], skip=es["skip"])]


def chars(exs: list[Any]) -> int:
    from funreason.evaluate.runner import prompt_size

    return sum(prompt_size(ex) for ex in exs)


def reference_chars() -> int:
    """The prompt characters of the 500 entries the records timed (ids 0-99 of the five categories)."""
    return chars(entries_of({"categories": list(DEV["categories"]), "split": "dev", "limit": 100, "skip": 0}))


class Runner:
    def __init__(self, work: Path, tiny: bool, budget: float, ledger: Path):
        self.work, self.tiny, self.budget, self.ledger = work, tiny, budget, ledger
        self.s = settings(tiny)
        self.hash = plan_hash(self.s)
        self.progress_path = work / "progress.json"
        self.progress: dict[str, Any] = {}
        self.sets = eval_sets(self.s)

    # --- the plan ---------------------------------------------------------------------------
    def pieces(self) -> list[Piece]:
        w, s = self.work, self.s
        py = [sys.executable, "-m", "funreason.cli"]
        model = w / "model"
        out: list[Piece] = []
        if self.tiny:
            out.append(Piece("model", "model", 10, py + ["tiny-model", "--out", str(model)]))
        else:
            out.append(Piece("model", "model", 60, py + ["model", "get", "smollm2-135m-instruct", "--out", str(model)]))
        out.append(Piece("mix", "mix", 60, py + ["data", "mix",  # the open sources the project carries
                                                 "--out", str(w / "mix"), "--heldout", "25", "--irrelevance", "0.1", "--joined", "0",
                                                 "--seed", "0", "--check-calls"]))
        for kind in RECIPES["best"]:
            out.append(Piece(f"sample-{kind}", "sample", 10, py + ["sample", "--kind", kind, "-n", str(KIND_ROWS), "--seed", str(KIND_SEED),
                                                                   "--out", str(w / "kinds" / f"{kind}.jsonl")]))
        for recipe in RECIPES:
            out.append(Piece(f"assemble-{recipe}", "assemble", 30, meta={"recipe": recipe}))
            out.append(Piece(f"audit-{recipe}", "audit", 60, py + ["data", "audit", str(w / "data" / f"{recipe}.assembled.jsonl"),
                                                                   "--out", str(w / "data" / f"{recipe}.audit")], {"recipe": recipe}))
        t = s["train"]
        rate = self.measured_rate("train") or RECORD_STEP_S
        ref = reference_chars()
        eval_rate = self.measured_rate("eval") or RECORD_EVAL_S[s["decode"]["beams"]] / ref
        # seed-major: a budget stop leaves whole seeds (both recipes, both splits) rather than half of each
        for seed in SEEDS:
            for recipe in RECIPES:
                run = w / "runs" / f"{recipe}-s{seed}"
                args = py + ["train", "--model", str(model), "--data", str(w / "data" / f"{recipe}.jsonl"), "--out", str(run),
                             "--config", str(w / "train-extra.yaml"), "--loss", t["loss"], "--alpha-mode", t["alpha_mode"],
                             "--lora", str(t["lora"]), "--lora-layers", str(t["lora_layers"]), "--max-steps", str(t["max_steps"]),
                             "--lr", str(t["learning_rate"]), "--batch-size", str(t["batch_size"]), "--grad-accum", str(t["grad_accum"]),
                             "--max-length", str(t["max_length"]), "--seed", str(seed), "--logging-steps", str(t["logging_steps"]),
                             "--save-steps", str(t["save_steps"]), "--no-bf16", "--report-to", t["report_to"], "--resume"]
                out.append(Piece(f"train-{recipe}-s{seed}", "train", rate * t["max_steps"] + 30, args, {"recipe": recipe, "seed": seed}))
            for recipe in RECIPES:
                final = w / "runs" / f"{recipe}-s{seed}" / "final"
                for es in self.sets:
                    c = chars(entries_of(es))
                    d = s["decode"]
                    args = py + ["eval", "bfcl", "--model", str(final), "--split", es["split"], "--categories", ",".join(es["categories"]),
                                 "--guided" if d["guided"] else "--no-guided", "--beams", str(d["beams"]), "--max-tokens", str(d["max_tokens"]),
                                 "--batch", str(d["batch"]), "--skip", str(es["skip"]), "--ledger", str(self.ledger),
                                 "--out", str(w / "eval" / f"{recipe}-s{seed}" / es["name"])]
                    if es["limit"] is not None:
                        args += ["--limit", str(es["limit"])]
                    out.append(Piece(f"eval-{recipe}-s{seed}-{es['name']}", "eval", LOAD_S + eval_rate * c, args,
                                     {"recipe": recipe, "seed": seed, "set": es, "chars": c}))
        return out

    def measured_rate(self, kind: str) -> float | None:
        """Seconds a training step / a prompt character took in this work folder's finished pieces."""
        done = [p for p in self.progress.get("pieces", {}).values() if p.get("kind") == kind and p.get("done") and p.get("units")]
        if not done:
            return None
        names = {name for name, p in self.progress["pieces"].items() if p in done}
        held = sum(a["seconds"] for a in self.adjustments() if a.get("piece") in names)
        return (sum(p["seconds"] for p in done) + held) / sum(p["units"] for p in done)

    # --- state --------------------------------------------------------------------------------
    def claim(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        held = self.work / "plan.json"
        if held.exists():
            found = json.loads(held.read_text(encoding="utf-8"))
            if found.get("hash") != self.hash:
                sys.exit(f"error: {self.work} holds the plan {found.get('hash')} ({held}); this runner's plan is {self.hash}"
                         f"{' (--tiny)' if self.tiny else ''}. The pre-registered plan is not changed midway: give another --work, "
                         f"or delete {self.work} to start over (its pieces are then lost).")
        else:
            write_atomic(held, json.dumps({"hash": self.hash, "settings": self.s, "budget_s": self.budget, "ledger": str(self.ledger)}, indent=1))
        if self.progress_path.exists():
            self.progress = json.loads(self.progress_path.read_text(encoding="utf-8"))
        self.progress.setdefault("plan", self.hash)
        self.progress.setdefault("pieces", {})
        extra = self.work / "train-extra.yaml"  # the TrainConfig fields `funreason train` has no option for
        t = self.s["train"]
        write_atomic(extra, "".join(f"{k}: {json.dumps(t[k])}\n" for k in ("warmup_ratio", "weight_decay", "lr_scheduler", "group_by_length", "save_total_limit")))

    def adjustments(self) -> list[dict[str, Any]]:
        """`adjustments.jsonl`: seconds the pieces' clocks got wrong, each line with its reason: a hold
        (`--hold`/`--go`: the machine lent to other work, the runner stopped) counts negative; an attempt
        killed before its clock was saved counts positive."""
        path = self.work / "adjustments.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def spent(self) -> float:
        return sum(p["seconds"] for p in self.progress["pieces"].values()) + sum(a["seconds"] for a in self.adjustments())

    def save(self) -> None:
        self.progress["spent_s"] = round(self.spent(), 1)
        write_atomic(self.progress_path, json.dumps(self.progress, indent=1))

    # --- done checks: output present and made by this plan -------------------------------------
    def done(self, p: Piece) -> bool:
        w = self.work
        if p.kind == "model":
            return (w / "model" / "config.json").exists()
        if p.kind == "mix":
            made = w / "mix" / "mix.json"
            return made.exists() and (w / "mix" / "train.jsonl").exists()
        if p.kind == "sample":
            return Path(p.args[-1]).exists()
        if p.kind == "assemble":
            return (w / "data" / f"{p.meta['recipe']}.assembled.jsonl").exists()
        if p.kind == "audit":
            return self.manifest_ok(p.meta["recipe"])
        if p.kind == "train":
            return self.train_done(p)
        if p.kind == "eval":
            return self.eval_done(p)
        raise ValueError(p.kind)

    def manifest_ok(self, recipe: str) -> bool:
        data, man = self.work / "data" / f"{recipe}.jsonl", self.work / "data" / f"{recipe}.json"
        if not (data.exists() and man.exists()):
            return False
        m = json.loads(man.read_text(encoding="utf-8"))
        if m.get("plan") != self.hash or m.get("sha256") != sha256(data):
            sys.exit(f"error: {data} is not the file this plan wrote ({man} says plan {m.get('plan')}, sha256 {m.get('sha256')}); "
                     f"delete {data} and {man} to make it again")
        return True

    def train_done(self, p: Piece) -> bool:
        run = Path(p.args[p.args.index("--out") + 1])
        if not (run / "final" / "config.json").exists():
            return False
        info = json.loads((run / "run.json").read_text(encoding="utf-8"))
        want = json.loads((self.work / "data" / f"{p.meta['recipe']}.json").read_text(encoding="utf-8"))["sha256"]
        t = self.s["train"]
        found = {"data_sha256": info.get("data_sha256"), "seed": info.get("seed"), "learning_rate": info.get("learning_rate"),
                 "batch_size": info.get("batch_size"), "max_length": info.get("max_length"), "lora": info.get("lora"),
                 "warmup_ratio": info.get("warmup_ratio"), "bf16": info.get("bf16"), "loss": info.get("loss"),
                 "steps": self.trained_steps(run)}
        asked = {"data_sha256": want, "seed": p.meta["seed"], "learning_rate": t["learning_rate"], "batch_size": t["batch_size"],
                 "max_length": t["max_length"], "lora": t["lora"], "warmup_ratio": t["warmup_ratio"], "bf16": t["bf16"], "loss": t["loss"],
                 "steps": t["max_steps"]}
        if found != asked:
            diff = {k: (found[k], asked[k]) for k in asked if found[k] != asked[k]}
            sys.exit(f"error: {run} holds a trained model that is not this plan's (found vs asked: {diff}); "
                     f"move it away or delete {run} to train it again")
        return True

    def left(self, p: Piece) -> float:
        """Seconds a piece still needs. A training resumes from its last checkpoint: what is left is the share of
        its steps after that checkpoint (time an attempt ran past its last checkpoint is lost)."""
        return p.estimate * (1 - self.checkpoint_step(p) / self.s["train"]["max_steps"]) if p.kind == "train" else p.estimate

    @staticmethod
    def checkpoint_step(p: Piece) -> int:
        """The step of the last checkpoint a training would resume from (`checkpoint-N` in its run folder), 0 if none."""
        run = Path(p.args[p.args.index("--out") + 1])
        steps = [int(c.name.split("-", 1)[1]) for c in run.glob("checkpoint-*") if c.name.split("-", 1)[1].isdigit()] if run.exists() else []
        return max(steps, default=0)

    @staticmethod
    def trained_steps(run: Path) -> int | None:
        """The optimizer steps the run's metrics log reached."""
        path = run / "metrics.jsonl"
        steps = [json.loads(line).get("step") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] if path.exists() else []
        steps = [s for s in steps if isinstance(s, int)]
        return max(steps) if steps else None

    def eval_done(self, p: Piece) -> bool:
        out = Path(p.args[p.args.index("--out") + 1])
        report = out / "report.json"
        if not report.exists():
            return False
        r = json.loads(report.read_text(encoding="utf-8"))
        es, d = p.meta["set"], self.s["decode"]
        model = p.args[p.args.index("--model") + 1]
        found = {"model": r.get("model"), "split": r.get("split"), "categories": sorted(r.get("categories", {})), "limit": r.get("limit"),
                 "skip": r.get("skip", 0), "guided": r.get("guided"), "beams": r.get("beams", 1), "max_tokens": r.get("max_tokens")}
        asked = {"model": model, "split": es["split"], "categories": sorted(es["categories"]), "limit": es["limit"], "skip": es["skip"],
                 "guided": d["guided"], "beams": d["beams"], "max_tokens": d["max_tokens"]}
        if found != asked:
            diff = {k: (found[k], asked[k]) for k in asked if found[k] != asked[k]}
            sys.exit(f"error: {report} is not this plan's evaluation (found vs asked: {diff}); move {out} away to score it again")
        return True

    # --- running ----------------------------------------------------------------------------
    def run(self) -> int:
        self.claim()
        if (self.work / "hold.json").exists():  # a runner that ended while held: its clock stopped at the hold
            (self.work / "hold.json").unlink()
            log("an earlier runner ended while held; its hold is closed (the held time was never on its clock)")
        write_atomic(self.work / "runner.pid", str(os.getpid()))  # for --hold / --go
        try:
            return self._run()
        finally:
            (self.work / "runner.pid").unlink(missing_ok=True)

    def _run(self) -> int:
        pieces = self.pieces()
        for i, p in enumerate(pieces):
            rec = self.progress["pieces"].setdefault(p.name, {"kind": p.kind, "seconds": 0.0, "cpu_seconds": 0.0, "attempts": 0, "done": False})
            if rec["done"] or self.done(p):
                if not rec["done"]:
                    rec["done"] = True
                    self.save()
                continue
            fresh = self.pieces() if p.kind in ("train", "eval") else []  # re-estimated from what finished pieces measured
            p = next((q for q in fresh if q.name == p.name), p)
            left = self.left(p)
            # a stop leaves whole seeds: a seed is begun only if the whole seed fits, as a trained model that cannot be
            # evaluated, or one split of a seed, would spend budget on no reportable figure; within a begun seed,
            # each piece must fit (only trainings and evaluations belong to a seed)
            seed = p.meta.get("seed")
            of_seed = [q for q in fresh if seed is not None and q.meta.get("seed") == seed]
            begun = any(self.progress["pieces"].get(q.name, {}).get("attempts") for q in of_seed)
            need = left if seed is None or begun else sum(self.left(q) for q in of_seed)
            if self.spent() + need > self.budget:
                what = f"{p.name} would take about {left:.0f} s" if seed is None or begun else \
                    f"seed {seed} ({p.name} first) would take about {need:.0f} s whole"
                log(f"stop: {what}, and {self.spent():.0f} s of the {self.budget:.0f} s budget are spent; "
                    f"{len(pieces) - i} pieces not run (results.md reports what finished)")
                self.save()
                self.results()
                return 3
            log(f"[{i + 1}/{len(pieces)}] {p.name} (about {left:.0f} s; {self.spent():.0f} s spent)")
            self.execute(p, rec)
            if not self.done(p):
                sys.exit(f"error: {p.name} ended without its output; see {self.work / 'logs' / (p.name + '.log')}")
            rec["done"] = True
            if p.kind == "train":
                rec["units"] = self.s["train"]["max_steps"]
            elif p.kind == "eval":
                rec["units"] = p.meta["chars"]
            self.save()
        self.results()
        log(f"done: {self.spent():.0f} s spent of {self.budget:.0f}; {self.work / 'results.md'}")
        return 0

    def execute(self, p: Piece, rec: dict[str, Any]) -> None:
        rec["attempts"] += 1
        rec["code"] = code_commit()
        self.save()  # recorded before it runs: `--hold` finds the running piece here
        t0, c0, base = time.monotonic(), child_cpu(), rec["seconds"]
        try:
            if p.kind == "assemble":
                self.assemble(p.meta["recipe"])
            else:
                logs = self.work / "logs"
                logs.mkdir(exist_ok=True)
                if p.kind == "sample":
                    Path(p.args[-1]).parent.mkdir(parents=True, exist_ok=True)  # `funreason sample` writes into an existing folder
                env = {**os.environ, "PYTHONPATH": str(CODE / "src"), "FUNREASON_LEDGER": str(self.ledger)}
                with open(logs / f"{p.name}.log", "a", encoding="utf-8") as fh:
                    fh.write(f"$ {' '.join(p.args)}\n")
                    fh.flush()
                    proc = subprocess.Popen(p.args, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=CODE)
                    try:
                        while proc.poll() is None:  # the clock saved each minute: a killed runner loses at most that
                            try:
                                proc.wait(timeout=60)
                            except subprocess.TimeoutExpired:
                                rec["seconds"] = round(base + time.monotonic() - t0, 1)
                                self.save()
                    except BaseException:  # Ctrl-C, SIGTERM: the piece's process ends with the runner, never runs on untimed
                        proc.kill()
                        proc.wait()
                        raise
                if proc.returncode != 0:
                    sys.exit(f"error: {p.name} failed (exit {proc.returncode}); its output: {logs / (p.name + '.log')}")
                if p.kind == "audit":
                    self.drop_flagged(p.meta["recipe"])
        finally:
            rec["seconds"] = round(base + time.monotonic() - t0, 1)  # set, not added: the heartbeat wrote part of it
            rec["cpu_seconds"] = round(rec["cpu_seconds"] + child_cpu() - c0, 1)
            self.save()

    def assemble(self, recipe: str) -> None:
        """The recipe's rows: the mix's training rows, then each kind's, reasoning left out (sft_raw);
        rows with a call that takes no arguments are left out, as bench/replication's prepare() did."""
        from funreason.formats import Reader

        rows, counts, ids = [], {}, set()
        for name, path in [("mix", self.work / "mix" / "train.jsonl")] + [(k, self.work / "kinds" / f"{k}.jsonl") for k in RECIPES[recipe]]:
            kept = dropped = 0
            for ex in Reader(path):
                if not all(c.arguments for c in ex.calls):
                    dropped += 1
                    continue
                ex.id = ex.id if name == "mix" else f"{name}:{ex.id}"  # kinds' ids are their own; prefixed, two kinds never share one
                if ex.id in ids:
                    sys.exit(f"error: {path}: id {ex.id} given to two training rows")
                ids.add(ex.id)
                ex.meta = {**ex.meta, "source": ex.meta.get("source") or name}
                d = ex.to_dict()
                d["reasoning"] = None
                rows.append(json.dumps(d, ensure_ascii=False) + "\n")
                kept += 1
            counts[name] = {"kept": kept, "calls_without_arguments": dropped}
        out = self.work / "data" / f"{recipe}.assembled.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, "".join(rows))
        write_atomic(self.work / "data" / f"{recipe}.assembled.json", json.dumps({"rows": len(rows), "sources": counts}, indent=1))

    def drop_flagged(self, recipe: str) -> None:
        """The training file: the assembled rows less those the audit marks blocking (definition or question)."""
        d = self.work / "data"
        assembled = (d / f"{recipe}.assembled.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        audit = [json.loads(line) for line in (d / f"{recipe}.audit" / "audit.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
        if len(audit) != len(assembled):
            sys.exit(f"error: {d / (recipe + '.audit')}: {len(audit)} audited rows for {len(assembled)} assembled; delete the folder and run again")
        kept = [row for row, a in zip(assembled, audit) if not a["blocking"]]
        dropped = [a for a in audit if a["blocking"]]
        by_source: dict[str, int] = {}
        for a in dropped:
            src = str(a["id"]).split(":", 1)[0] if ":" in str(a["id"]) else "mix"
            by_source[src] = by_source.get(src, 0) + 1
        write_atomic(d / f"{recipe}.jsonl", "".join(kept))
        write_atomic(d / f"{recipe}.json", json.dumps({"plan": self.hash, "rows": len(kept), "sha256": sha256(d / f"{recipe}.jsonl"),
                                                      "assembled": len(assembled), "dropped_blocking": len(dropped),
                                                      "dropped_by_source": by_source,
                                                      "entries_named": sorted({f["entry"] for a in dropped for f in a["findings"]})}, indent=1))

    # --- results ------------------------------------------------------------------------------
    def results(self) -> None:
        from funreason.evaluate.splits import load_registry, mean_interval, wilson

        reg = load_registry()
        per_model: dict[str, dict[str, Any]] = {}
        for recipe in RECIPES:
            for seed in SEEDS:
                key = f"{recipe}-s{seed}"
                counts: dict[str, dict[str, list[int]]] = {"dev": {}, "test": {}}
                complete = True
                for es in self.sets:
                    report = self.work / "eval" / key / es["name"] / "report.json"
                    if not report.exists():
                        complete = False
                        continue
                    r = json.loads(report.read_text(encoding="utf-8"))
                    for c, v in r["categories"].items():
                        got = counts[es["split"]].setdefault(c, [0, 0])
                        got[0] += v["correct"]
                        got[1] += v["total"]
                if any(counts.values()):
                    per_model[key] = {"recipe": recipe, "seed": seed, "complete": complete, "metrics": metrics(counts, reg, mean_interval, wilson)}
        table = summarise(per_model, wilson)
        data = {m: json.loads((self.work / "data" / f"{m}.json").read_text()) for m in RECIPES if (self.work / "data" / f"{m}.json").exists()}
        res = {"plan": self.hash, "settings": self.s, "spent_s": round(self.spent(), 1), "budget_s": self.budget, "training_data": data,
               "models": per_model, "summary": table, "progress": self.progress["pieces"]}
        write_atomic(self.work / "results.json", json.dumps(res, indent=1))
        write_atomic(self.work / "results.md", markdown(res))


def metrics(counts: dict[str, dict[str, list[int]]], reg: Any, mean_interval: Any, wilson: Any) -> dict[str, Any]:
    """Per category and the aggregates, as [correct, total, share, interval]; sampled live categories
    weigh by their whole test counts in Live AST (a stratified estimate)."""
    out: dict[str, Any] = {}
    for split, cats in counts.items():
        for c, (k, n) in cats.items():
            out[f"{split}/{c}"] = {"correct": k, "total": n, "share": k / n, "interval": wilson(k, n)}
    dev = counts["dev"]
    nl = [c for c in ("simple_python", "multiple", "parallel", "parallel_multiple") if c in dev]
    if nl:
        parts = [(dev[c][0] / dev[c][1], dev[c][1]) for c in nl]
        out["dev/non_live_ast"] = {"total": sum(dev[c][1] for c in nl), "share": sum(p for p, _ in parts) / len(parts), "interval": mean_interval(parts)}
    test = counts["test"]
    live = [c for c in ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple") if c in test]
    if live:
        weights = [float(reg.categories[c].test_count) for c in live]
        parts = [(test[c][0] / test[c][1], test[c][1]) for c in live]
        out["test/live_ast"] = {"total": sum(test[c][1] for c in live), "share": sum(w * p for w, (p, _) in zip(weights, parts)) / sum(weights),
                                "interval": mean_interval(parts, weights)}
    return out


def summarise(per_model: dict[str, dict[str, Any]], wilson: Any) -> dict[str, Any]:
    """Per recipe and metric: the seeds' shares, their mean and sample sd, and the entry-sampling 95%
    interval at the mean (Wilson at the mean share and the entries scored; aggregates: the mean of the seeds' intervals)."""
    out: dict[str, Any] = {}
    for recipe in RECIPES:
        models = [m for m in per_model.values() if m["recipe"] == recipe]
        names = sorted({k for m in models for k in m["metrics"]})
        for name in names:
            got = [(m["seed"], m["metrics"][name]) for m in models if name in m["metrics"]]
            shares = [v["share"] for _, v in got]
            mean = statistics.fmean(shares)
            n = got[0][1]["total"]
            if "correct" in got[0][1]:
                iv = wilson(round(mean * n), n)
            else:
                ivs = [v["interval"] for _, v in got if v["interval"]]
                iv = (statistics.fmean(a for a, _ in ivs), statistics.fmean(b for _, b in ivs)) if ivs else None
            out.setdefault(recipe, {})[name] = {"seeds": {s: v["share"] for s, v in got}, "mean": mean,
                                                "sd": statistics.stdev(shares) if len(shares) > 1 else None, "entries": n, "interval": iv}
    return out


def markdown(res: dict[str, Any]) -> str:
    pct = lambda x: "–" if x is None else f"{100 * x:.1f}"  # noqa: E731
    iv = lambda i: "–" if not i else f"[{100 * i[0]:.1f}, {100 * i[1]:.1f}]"  # noqa: E731
    lines = [f"# Try 36: the re-measurement ({'TINY STAND-IN, not a result' if res['settings']['tiny'] else 'results'})", "",
             f"Plan {res['plan']} (NOTES.md); {res['spent_s']:.0f} s of the {res['budget_s']:.0f} s budget spent. Accuracy in %; "
             "each seed's 95% Wilson interval; the mean's interval is the Wilson interval at the mean share and the entries scored "
             "(aggregates: the mean of the seeds' intervals). Seeds' spread: sample sd.", ""]
    for recipe, m in res["training_data"].items():
        lines.append(f"- training file `{recipe}`: {m['rows']} rows (sha256 `{m['sha256'][:12]}…`), {m['dropped_blocking']} of "
                     f"{m['assembled']} assembled rows dropped as blocking by the audit ({m['dropped_by_source'] or 'none'})")
    lines += ["", "| recipe | split / metric | entries | seed 0 | seed 1 | seed 2 | mean ± sd | 95% interval (at the mean) |", "|---|---|---|---|---|---|---|---|"]
    for recipe, rows in res["summary"].items():
        for name, v in sorted(rows.items()):
            seeds = [pct(v["seeds"].get(s, v["seeds"].get(str(s)))) for s in SEEDS]
            sd = "" if v["sd"] is None else f" ± {100 * v['sd']:.1f}"
            lines.append(f"| {recipe} | {name} | {v['entries']} | {' | '.join(seeds)} | {pct(v['mean'])}{sd} | {iv(v['interval'])} |")
    lines += ["", "| model | complete | " + "per-seed intervals |", "|---|---|---|"]
    for key, m in res["models"].items():
        lines.append(f"| {key} | {'yes' if m['complete'] else 'no'} | " + "; ".join(f"{k} {pct(v['share'])} {iv(v['interval'])}" for k, v in sorted(m["metrics"].items())) + " |")
    lines += ["", "| piece | seconds | CPU seconds | attempts | done |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['seconds']:.0f} | {v['cpu_seconds']:.0f} | {v['attempts']} | {'yes' if v['done'] else 'no'} |" for k, v in res["progress"].items()]
    return "\n".join(lines) + "\n"


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_atomic(path: Path, text: str) -> None:
    """Written beside and renamed: a stopped run leaves the old file or the new, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def hold(work: Path, go: bool) -> int:
    """`--hold` stops the running runner and its children (SIGSTOP to its process group) so the machine
    can do other work; `--go` continues it and writes the held seconds to `adjustments.jsonl`, taken
    off the budget and off the held piece's rate. The pid must be this work folder's runner."""
    import signal

    pid = int((work / "runner.pid").read_text()) if (work / "runner.pid").exists() else 0
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if pid else []
    except OSError:
        cmdline = []
    if not any(arg.endswith(b"36-remeasure/run.py") for arg in cmdline) or os.getpgid(pid) != pid:
        sys.exit(f"error: no runner of {work} is running as a process group of its own (runner.pid {pid or 'missing'}); "
                 f"start it as the NOTES say (setsid nohup nice -n 19 …)")
    state = work / "hold.json"
    if not go:
        if state.exists():
            sys.exit(f"error: {work} is held already since {json.loads(state.read_text())['since']:.0f}; continue it with --go")
        progress = json.loads((work / "progress.json").read_text(encoding="utf-8"))
        # pieces are recorded in the order they run, and saved as one starts: the first not done is the one running
        running = [n for n, p in progress["pieces"].items() if not p["done"]]
        if not running:
            sys.exit(f"error: no piece of {work} is running; nothing to hold")
        write_atomic(state, json.dumps({"since": time.time(), "piece": running[0], "pid": pid}))
        os.killpg(pid, signal.SIGSTOP)
        log(f"held runner {pid} in {running[0]}; continue it with: {sys.argv[0]} --work {work} --go")
        return 0
    os.killpg(pid, signal.SIGCONT)
    if not state.exists():
        log(f"runner {pid} continued; no hold was recorded")
        return 0
    h = json.loads(state.read_text(encoding="utf-8"))
    if h.get("pid") != pid:  # held another runner, which ended: its clock stopped at the hold
        state.unlink()
        log(f"the hold was of runner {h.get('pid')}, not of {pid}: closed without a correction")
        return 0
    held = round(time.time() - h["since"], 1)
    with open(work / "adjustments.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"seconds": -held, "piece": h["piece"], "why": f"held from {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(h['since']))} UTC "
                             "while the machine ran other work (the runner stopped)"}) + "\n")
    state.unlink()
    log(f"runner {pid} continued after {held:.0f} s held (off the budget: {work / 'adjustments.jsonl'})")
    return 0


def code_commit() -> str:
    """The commit of the code pieces run (`--code`), with `+dirty` when its src/ has changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(CODE), *args], capture_output=True, text=True).stdout.strip()
    return (git("rev-parse", "--short", "HEAD") or "unknown") + ("+dirty" if git("status", "--porcelain", "--", "src") else "")


def dry_run(r: Runner) -> None:
    if (r.work / "progress.json").exists():
        r.progress = json.loads((r.work / "progress.json").read_text(encoding="utf-8"))
    r.progress.setdefault("pieces", {})
    pieces = r.pieces()
    total = 0.0
    by_kind: dict[str, float] = {}
    print(f"plan {r.hash}{' (tiny)' if r.tiny else ''}: work folder {r.work}, ledger {r.ledger}, budget {r.budget:.0f} s")
    for p in pieces:
        total += p.estimate
        by_kind[p.kind] = by_kind.get(p.kind, 0.0) + p.estimate
        extra = f" ({p.meta['chars']} prompt chars)" if "chars" in p.meta else ""
        print(f"{p.estimate:8.0f} s  {p.name}{extra}")
    print("estimate by kind: " + ", ".join(f"{k} {v:.0f} s" for k, v in by_kind.items()))
    n_dev = sum(len(entries_of(es)) for es in r.sets if es["split"] == "dev")
    n_test = sum(len(entries_of(es)) for es in r.sets if es["split"] == "test")
    print(f"per model: {n_dev} dev entries, {n_test} test entries; {len(pieces)} pieces; estimate {total:.0f} s "
          f"({total / 3600:.2f} h) of the {r.budget:.0f} s budget")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=str(ROOT / "runs" / "e36"), help="work folder (models, data, answers, progress.json)")
    ap.add_argument("--tiny", action="store_true", help="the whole pipeline on the tiny test model: 2 steps, 1 entry per evaluation")
    ap.add_argument("--dry-run", action="store_true", help="print the plan and its cost estimate; run nothing")
    ap.add_argument("--ledger", default="", help="test-set ledger (default: the committed experiments/bfcl_test_ledger.jsonl; "
                                                 "with --tiny, WORK/bfcl_test_ledger.jsonl)")
    ap.add_argument("--code", default="", help="checkout whose src/ every piece runs (default: this script's); a worktree "
                                               "pinned for the whole experiment keeps later commits out of it")
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--hold", action="store_true", help="stop the running runner (and its children) while the machine does other work")
    how.add_argument("--go", action="store_true", help="continue a held runner; the held seconds come off the budget")
    args = ap.parse_args()
    work = Path(args.work).resolve()
    global CODE
    CODE = Path(args.code).resolve() if args.code else ROOT
    if not (CODE / "src" / "funreason").is_dir():
        sys.exit(f"error: --code {CODE} holds no src/funreason")
    sys.path.insert(0, str(CODE / "src"))  # that checkout's funreason, for the light work too (files, BFCL entries, intervals)
    if args.hold or args.go:
        return hold(work, args.go)
    if args.tiny and not args.ledger and (work == ROOT or ROOT in work.parents):
        sys.exit("error: --tiny writes a stand-in; give a --work outside the checkout (e.g. /tmp/e36-tiny)")
    ledger = Path(args.ledger).resolve() if args.ledger else (work / "bfcl_test_ledger.jsonl" if args.tiny else ROOT / "experiments" / "bfcl_test_ledger.jsonl")
    r = Runner(work, args.tiny, BUDGET_S, ledger)
    if args.dry_run:
        dry_run(r)
        return 0
    import signal

    def stop(_sig: int, _frame: Any) -> None:  # SIGTERM as Ctrl-C: the running piece is ended and its clock saved
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    return r.run()


if __name__ == "__main__":
    sys.exit(main())
