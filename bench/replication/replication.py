"""The paper's Tables 4 and 5 in miniature, on a real model: SmolLM2-135M-Instruct, open data, a CPU.

    .venv/bin/python bench/replication/replication.py --out runs/replication     # hours: the committed table
    .venv/bin/python bench/replication/replication.py --quick                    # minutes: the small run (see --quick)

Settings, each trained on the same rows (the open mix, `funreason data mix`) for the same steps:
- `sft_raw`   plain SFT on the raw data: the reasoning removed, the call alone is the answer;
- `sft_cot`   plain SFT (token-mean cross-entropy) on the same rows with their reasoning;
- `srml_fixed` SRML, fixed α = 0.5; `srml_self` SRML, self-adjusted α (started at 0.5);
- `srml_sr`   `srml_fixed`'s model after one self-refinement round (rollouts on training queries,
             FCDR's checks against the reference, the rule judge, SRML again on kept + base data).
The base model is evaluated too. Every trained setting runs with each `--seeds` seed.

Evaluation of every model: BFCL AST accuracy on the first `--bfcl-limit` entries of simple_python,
multiple, parallel, parallel_multiple and irrelevance (scored as `funreason eval score` scores;
Non-Live AST = mean of the four Python categories), exact calls on the mix's held-out split, and
HumanEval pass@1 on the first `--humaneval-limit` problems (greedy, sandboxed).

`--joined SHARE` adds the mix's joined rows (two training requests asked as one and answered with
both calls; `data.mix.joined_rows`), the only rows that show BFCL's parallel kinds; off by default.
`--irrelevance SHARE` sets the mix's share of irrelevance rows (0.1). `--check-calls` drops the mix's
records whose reference calls do not fit their own tools (FCDR's call check, on in `funreason data
mix`, off here by default since the replication table was made before it). All are settings of the
mix, recorded with the results. `--sample-rows N` adds the first N rows of FunReason's bundled
synthetic sample (`funreason sample`: xLAM-style, written by this project, no BFCL question and no
BFCL function name) to every setting's training rows; none by default. `--parallel-rows N` and
`--no-fit-rows N` add rows from the same generator in two of BFCL's shapes that neither the open data
nor the sample has: several values in one sentence, one call each (`data.synth.kinds.parallel_rows`), and one
offered function that does not fit a short request, answered without a call (`data.synth.kinds.no_fit_rows`).
`--phrased-rows N` adds rows whose values are said as people say them and must be written as the
function's description asks ("2.5 million", "40%", "5 ft 10 in", "Denver" for "City and state",
"avoiding highways" for a flag; `data.synth.kinds.phrased_rows`), BFCL simple's phrasing. `--optional-rows N`
adds rows that pass an optional parameter when the request names its value ("using the newton
method", "in Spanish") and leave it out when not (`data.synth.kinds.optional_rows`); `--asked-rows N` the same
on 18 other tools, the value asked for in passing ("a large mushroom", "including seasonality";
`data.synth.kinds.asked_rows`).
`--soup` also averages, for each trained setting, the models of all `--seeds` into one (`funreason
model average`: the uniform mean of their weights, a "model soup") and evaluates it as one more model,
`soup-<setting>-s0+s1`, in its own row; its seeds' models must be on disk under `--out`.
`--guided` evaluates under schema-guided decoding (`funreason.llm.guided`) the models another run trained
in the same `--out`, into `eval_guided/`; give it its own `--results`.
`--lora-layers N` puts the LoRA adapters on the last N of the model's 30 layers (12 by default, the
replication table's setting; 0: all of them, which learns much more here and costs about 1.6 times
the time a step). `--lora 0` trains all the weights instead (full fine-tuning, with `--lora-layers 0`; then set
`--learning-rate`, 1e-3 being the LoRA setting).

Training rows: the mix's `train.jsonl` less the rows with a call that takes no arguments (they
teach a small model to write `f()`; BFCL's calls all take values). Reasoning: ToolRL rows keep their own (written by the dataset's authors' teacher); every other row
gets the mix's templated reasoning (`data.mix.template_reasoning`); the self-refinement judge is
the rule teacher. No strong teacher LLM runs here, and the results say so.

Resumable: every finished step leaves its files under `--out` (`mix/`, `runs/<setting>-s<seed>/`,
`eval/<model>/`) and is skipped when run again; training resumes from its last checkpoint and
evaluation from its result files. Each evaluated model's figures go to `--results` (committed:
`models.json`), and a model found there is neither trained nor evaluated again, so a run resumes on
a new machine too. The settings are recorded in `--results`/config.json: a run with other settings
over the same results is refused, and so is a mix other than the one the results were made on
(recorded by its digest). `results.json`, `results.md` and `results.png` are rewritten
after every model, so a partial run shows what it has.

`--fc-open` defaults to the open data bundled with the package (`funreason.data.open_dir()`),
`--out` to runs/replication and `--results` to bench/results/replication/ (committed), all in this
checkout. `--quick` is a smoke run of the whole path in minutes: the base model and `sft_raw`, seed 0,
3 steps, 2 BFCL entries per category, 2 held-out rows per source, 2 HumanEval problems, into
runs/replication-quick with its results in runs/replication-quick/results (never over the committed ones).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from funreason.evaluate import NON_LIVE_PYTHON
from funreason.runinfo import file_sha256

ROOT = Path(__file__).resolve().parents[2]  # the repository: bench/replication/replication.py -> ../..

NON_LIVE = list(NON_LIVE_PYTHON)
CATEGORIES = [*NON_LIVE, "irrelevance"]
SETTINGS = ["sft_raw", "sft_cot", "srml_fixed", "srml_self", "srml_sr"]


@dataclass
class ReplicationConfig:
    fc_open: str
    out: str  # models, checkpoints, result files (large; not committed)
    results: str = str(ROOT / "bench" / "results" / "replication")  # models.json, results.* (small; committed, so a new machine resumes)
    model: str = "smollm2-135m-instruct"
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    # sized so that the base and the ten trained models fit 6 hours of the 2-core machine:
    # about 13 min of training and 14 min of evaluation per model
    steps: int = 60
    batch_size: int = 4
    learning_rate: float = 1e-3
    lora: int = 16
    lora_layers: int = 12
    max_length: int = 1024
    bfcl_limit: int = 20
    heldout_per_source: int = 10
    joined: float = 0.0  # the mix's joined rows (two requests as one, both calls), as a share of training rows
    irrelevance: float = 0.1  # the mix's irrelevance rows (no function fits), as a share of training rows
    # FCDR's call check on the mix's records (answers that do not fit their own tools dropped); off here
    # because the replication table was made before the mix had it
    check_calls: bool = False
    # rows of the bundled synthetic sample added to the training rows (their own reasoning where they
    # carry one, else the mix's template); not open data, so none by default
    sample_rows: int = 0
    # one-sentence parallel rows from the sample generator ("the factorial of 5, 9 and 12", one call
    # per value), BFCL's parallel phrasing, which neither the open data nor the sample's "Also:" rows have
    parallel_rows: int = 0
    # one-function irrelevance rows from the sample generator (a short request, one function that does
    # not fit it, a statement for answer): BFCL irrelevance's shape, which the mix's no-fit rows lack
    no_fit_rows: int = 0
    # rows from the sample generator whose values the request says in words of its own ("2.5 million",
    # "40%", "Denver" where "City and state" is asked): BFCL simple's phrasing, which the sample lacks
    phrased_rows: int = 0
    # rows from the sample generator that pass an optional parameter when the request names its value
    # ("using the newton method") and leave it out when not: BFCL simple often names one
    optional_rows: int = 0
    # the same lesson on 18 other tools, the value asked for in passing ("including seasonality")
    asked_rows: int = 0
    # bf16 products with fp32 weights (`funreason train --bf16`; the self-refinement round trains in
    # fp32 still): faster on long batches on a CPU with avx512_bf16; off by default, since every earlier
    # run here trained in fp32
    bf16: bool = False
    # evaluation under schema-guided decoding (`funreason.llm.guided`): the models are the same, so a run with
    # it reuses the models another run trained in the same --out and scores them into eval_guided/
    guided: bool = False
    # one more model per trained setting: the mean of its seeds' weights (`funreason model average`)
    soup: bool = False
    humaneval_limit: int = 40
    humaneval_max_tokens: int = 256
    eval_batch: int = 24
    max_tokens: int = 192
    sr_queries: int = 64
    sr_samples: int = 2
    sr_steps: int = 50


def _write(path: Path, data: Any) -> None:
    from funreason.formats.jsonl import write_text_atomic

    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def prepare(cfg: ReplicationConfig) -> tuple[str, Path, Path, Path]:
    """(model dir, train with reasoning, train without, held-out) — made once."""
    from funreason.formats import Reader
    from funreason.formats.jsonl import write_text_atomic
    from funreason.data.mix import MixConfig, build_mix
    from funreason.models import MODELS, get_model

    out = Path(cfg.out)
    model = str(get_model(cfg.model, out / "model", log=log)) if cfg.model in MODELS else cfg.model
    mix = out / "mix"
    if (mix / "mix.json").exists():
        made = json.loads((mix / "mix.json").read_text())["config"]
        asked = {"heldout": cfg.heldout_per_source, "joined": cfg.joined, "irrelevance": cfg.irrelevance,
                 "check_calls": cfg.check_calls}
        found = {"joined": 0.0, "check_calls": False, **{k: v for k, v in made.items() if k in asked}}
        if found != asked:
            sys.exit(f"error: {mix} was made with {found}; this run asks for {asked}: use another --out, or delete {mix}")
    else:
        build_mix(MixConfig(fc_open=cfg.fc_open, out=str(mix), heldout=cfg.heldout_per_source, joined=cfg.joined,
                            irrelevance=cfg.irrelevance, check_calls=cfg.check_calls))
    # the training files are named by what they hold, so another --sample-rows never reuses them
    extra = "".join(f"+{name}{n}" for name, n in (("sample", cfg.sample_rows), ("parallel", cfg.parallel_rows),
                                                  ("nofit", cfg.no_fit_rows), ("phrased", cfg.phrased_rows),
                                                  ("optional", cfg.optional_rows), ("asked", cfg.asked_rows)) if n)
    cot, raw = mix / f"train_cot{extra}.jsonl", mix / f"train_raw{extra}.jsonl"
    if not raw.exists():
        records = list(Reader(mix / "train.jsonl"))
        if cfg.sample_rows:
            from funreason.data import bundled
            from funreason.data.mix import template_reasoning

            sample = list(Reader(bundled("sample_xlam.jsonl")))
            if not 0 < cfg.sample_rows <= len(sample):
                sys.exit(f"error: --sample-rows {cfg.sample_rows}: the bundled sample has {len(sample)} rows")
            for ex in sample[: cfg.sample_rows]:
                ex.meta = {**ex.meta, "source": "sample",
                           "reasoning_source": "sample generator" if ex.reasoning else "template"}
                ex.reasoning = ex.reasoning or template_reasoning(ex)
                records.append(ex)
        from funreason.formats import example_from_row
        from funreason.data.synth.kinds import asked_rows, no_fit_rows, optional_rows, parallel_rows, phrased_rows

        for flag, count, make, source in (("--parallel-rows", cfg.parallel_rows, parallel_rows, "sample-parallel"),
                                          ("--no-fit-rows", cfg.no_fit_rows, no_fit_rows, "sample-no-fit"),
                                          ("--phrased-rows", cfg.phrased_rows, phrased_rows, "sample-phrased"),
                                          ("--optional-rows", cfg.optional_rows, optional_rows, "sample-optional"),
                                          ("--asked-rows", cfg.asked_rows, asked_rows, "sample-asked")):
            if count < 0:
                sys.exit(f"error: {flag} {count}: give a count ≥ 0")
            for i, row in enumerate(make(count)):
                ex = example_from_row(row, f"{flag.lstrip('-')}:{i}")
                ex.meta = {**ex.meta, "source": source, "reasoning_source": "sample generator"}
                records.append(ex)
        # calls without arguments (10% of the mix's calls, most of them STE's) teach a small model to
        # write `f()`; every BFCL call takes values, so these rows are left out of training here
        kept = [ex for ex in records if all(c.arguments for c in ex.calls)]
        twice = sorted(i for i, n in Counter(ex.id for ex in kept).items() if n > 1)
        if twice:
            sys.exit(f"error: {len(twice)} ids are given to more than one training row ({', '.join(twice[:5])}, …)")
        for path, strip in ((cot, False), (raw, True)):
            rows = []
            for ex in kept:
                d = ex.to_dict()
                if strip:
                    d["reasoning"] = None
                rows.append(json.dumps(d, ensure_ascii=False) + "\n")
            write_text_atomic(path, "".join(rows))
    return model, cot, raw, mix / "heldout.jsonl"


def trained_model(cfg: ReplicationConfig, setting: str, seed: int) -> Path:
    """Where a trained setting's model of one seed lies under --out."""
    run = Path(cfg.out) / "runs" / f"{setting}-s{seed}"
    return run / "round-1" / "train" / "final" if setting == "srml_sr" else run / "final"


def train_setting(cfg: ReplicationConfig, setting: str, seed: int, model: str, data: Path, raw: Path) -> str:
    from funreason.train.trainer import TrainConfig, train

    run, final = Path(cfg.out) / "runs" / f"{setting}-s{seed}", trained_model(cfg, setting, seed)
    if (final / "config.json").exists():
        return str(final)
    loss, mode = {"sft_raw": ("sft", "fixed"), "sft_cot": ("sft", "fixed"), "srml_fixed": ("srml", "fixed"),
                  "srml_self": ("srml", "self")}[setting]
    log(f"training {setting} seed {seed}")
    tc = TrainConfig(model=model, data=str(raw if setting == "sft_raw" else data), out=str(run), loss=loss, alpha_mode=mode,
                     max_steps=cfg.steps, batch_size=cfg.batch_size, learning_rate=cfg.learning_rate, lora=cfg.lora,
                     lora_layers=cfg.lora_layers, max_length=cfg.max_length, seed=seed, logging_steps=10, save_steps=25,
                     save_total_limit=1, report_to="none", warmup_ratio=0.05, resume=True,
                     allow_benchmark_overlap=True,  # the generated kinds mirror BFCL dev entries; the audit is in run.json
                     bf16=True if cfg.bf16 else None)  # None, as before the option: runs made then still resume
    return train(tc, log=log).final


def self_refine(cfg: ReplicationConfig, seed: int, start: str, data: Path, heldout: Path) -> str:
    from funreason.fcdr.rule_teacher import rule_teacher_app
    from funreason.selfrefine import SelfRefineConfig, round_training, run_self_refine
    from funreason.serve.app import BackgroundServer

    out = Path(cfg.out) / "runs" / f"srml_sr-s{seed}"
    final = trained_model(cfg, "srml_sr", seed)
    if (final / "config.json").exists():
        return str(final)
    log(f"self-refinement round, seed {seed}")
    with BackgroundServer(rule_teacher_app()) as judge:
        run_self_refine(SelfRefineConfig(
            model=start, data=str(data), out=str(out), judge_endpoints=[judge.url], judge_model="rule-teacher", rounds=1,
            samples=cfg.sr_samples, hard_samples=cfg.sr_samples + 1, base_data=[str(data)], limit=cfg.sr_queries,
            max_tokens=cfg.max_tokens, batch=16, seed=seed, eval_categories=["simple_python"], eval_limit=1, eval_max_tokens=16,
            train=dataclasses.replace(round_training(), max_steps=cfg.sr_steps, learning_rate=cfg.learning_rate / 2,
                                      batch_size=cfg.batch_size, lora=cfg.lora, lora_layers=cfg.lora_layers, max_length=cfg.max_length,
                                      seed=seed, save_steps=25, allow_benchmark_overlap=True)), log=log)
    return str(final)


def evaluate(cfg: ReplicationConfig, name: str, model: str, heldout: Path) -> dict[str, Any]:
    from funreason.evaluate.humaneval import STOP, load_problems, reference_likelihood, run_humaneval
    from funreason.evaluate.sandbox import Limits
    from funreason.llm import SamplingParams
    from funreason.llm.local import LocalEngine
    from funreason.evaluate.heldout import evaluate_model

    out = Path(cfg.out) / ("eval_guided" if cfg.guided else "eval") / name
    log(f"evaluating {name}{' (guided decoding)' if cfg.guided else ''}")
    metrics = evaluate_model(model, out, categories=CATEGORIES, limit=cfg.bfcl_limit, eval_data=str(heldout),
                             max_tokens=cfg.max_tokens, batch=cfg.eval_batch, label=name, guided=cfg.guided)
    # HumanEval offers no functions, so guided decoding leaves it as it is: one run per model, in eval/
    he_out = Path(cfg.out) / "eval" / name
    he_file = he_out / "humaneval.json"
    if cfg.humaneval_limit and not he_file.exists():
        engine = LocalEngine.from_pretrained(model, max_batch=cfg.eval_batch)
        params = SamplingParams(max_tokens=cfg.humaneval_max_tokens, stop=STOP)
        problems = load_problems()[: cfg.humaneval_limit]
        try:
            # pass@1 is 0 for SmolLM2 base and trained alike; the reference solutions' likelihood is the
            # forgetting measure above its floor (`eval humaneval` reports both)
            reference = reference_likelihood(engine.model, engine.tokenizer, problems)
            run_humaneval(problems, lambda chunk: [g.text for g in engine.generate([p["prompt"] for p in chunk], params)],
                          he_out, chat=False, limits=Limits(timeout_s=10), reference=reference)
        finally:
            engine.close()
    he = json.loads(he_file.read_text()) if he_file.exists() else None
    return {"bfcl": {c: metrics.bfcl[c]["accuracy"] for c in CATEGORIES},
            "non_live_ast": statistics.mean(metrics.bfcl[c]["accuracy"] for c in NON_LIVE),
            "heldout": metrics.heldout.accuracy if metrics.heldout else None, "humaneval": he["pass@1"] if he else None,
            "humaneval_logprob": (he.get("reference_logprob") or {}).get("mean_logprob") if he else None}


def soup(cfg: ReplicationConfig, setting: str) -> tuple[str, Path, list[Path]]:
    """The name, folder and inputs of a setting's soup: the mean of its --seeds' models."""
    seeds = sorted(set(cfg.seeds))
    name = f"soup-{setting}-" + "+".join(f"s{s}" for s in seeds)
    return name, Path(cfg.out) / "runs" / name, [trained_model(cfg, setting, s) for s in seeds]


def summarise(cfg: ReplicationConfig, results: dict[str, dict[str, Any]]) -> None:
    """results.json / .md / .png from what is finished so far (mean ± std over seeds; a soup is one model)."""
    rows = []
    soups = sorted(k for k in results if k.startswith("soup-"))
    for setting in ["base", *SETTINGS, *soups]:
        runs = [v for k, v in results.items() if k == setting or k.startswith(f"{setting}-s")]
        if not runs:
            continue

        def stat(get):
            vals = [get(r) for r in runs if get(r) is not None]
            if not vals:
                return None
            return {"mean": statistics.mean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0, "n": len(vals)}

        rows.append({"setting": setting, "seeds": len(runs),
                     **{c: stat(lambda r, c=c: r["bfcl"][c]) for c in CATEGORIES},
                     "non_live_ast": stat(lambda r: r["non_live_ast"]), "heldout": stat(lambda r: r["heldout"]),
                     "humaneval": stat(lambda r: r["humaneval"]), "humaneval_logprob": stat(lambda r: r.get("humaneval_logprob"))})
    out = Path(cfg.results)
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "results.json", {"config": asdict(cfg), "models": results, "table": rows})
    cols = [*CATEGORIES, "non_live_ast", "heldout", "humaneval", "humaneval_logprob"]

    def cell(s, scale=100):
        if s is None:
            return "–"
        return f"{scale * s['mean']:.{1 if scale == 100 else 3}f}" + (f" ± {scale * s['std']:.{1 if scale == 100 else 3}f}" if s["n"] > 1 else "")

    md = ["| setting | seeds | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    md += [f"| {r['setting']} | {r['seeds']} | " + " | ".join(cell(r[c], 1 if c == "humaneval_logprob" else 100) for c in cols) + " |" for r in rows]
    (out / "results.md").write_text("\n".join(md) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4))
    width = 0.8 / max(1, len(rows))
    for i, r in enumerate(rows):
        xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(cols))]
        ys = [100 * r[c]["mean"] if r[c] else 0 for c in cols]
        errs = [100 * r[c]["std"] if r[c] else 0 for c in cols]
        ax.bar(xs, ys, width, yerr=errs, label=r["setting"], capsize=2)
    ax.set_xticks(range(len(cols)), cols, rotation=15)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, ncol=3)
    ax.set_title("SmolLM2-135M-Instruct, open data, CPU (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(out / "results.png", dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fc-open", default=None, help="The open data (default: the copy bundled with the package, funreason.data.open_dir()).")
    ap.add_argument("--out", default=None, help="Models, checkpoints, result files (default: runs/replication in this checkout).")
    ap.add_argument("--results", default=None, help="Figures, committed (default: bench/results/replication).")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--steps", type=int, default=ReplicationConfig.steps)
    ap.add_argument("--bfcl-limit", type=int, default=ReplicationConfig.bfcl_limit)
    ap.add_argument("--humaneval-limit", type=int, default=ReplicationConfig.humaneval_limit)
    ap.add_argument("--joined", type=float, default=ReplicationConfig.joined,
                    help="Share of joined rows in the mix (two requests as one, both calls): BFCL's parallel kinds.")
    ap.add_argument("--irrelevance", type=float, default=ReplicationConfig.irrelevance,
                    help="Share of irrelevance rows in the mix (no function fits: the answer declines).")
    ap.add_argument("--check-calls", action="store_true",
                    help="Drop mix records whose reference calls do not fit their tools (FCDR's call check; `data mix` does by default).")
    ap.add_argument("--sample-rows", type=int, default=ReplicationConfig.sample_rows,
                    help="Rows of the bundled synthetic sample (funreason sample) added to the training rows.")
    ap.add_argument("--no-fit-rows", type=int, default=ReplicationConfig.no_fit_rows,
                    help="One-function irrelevance rows from the sample generator (a request the one offered "
                         "function cannot serve; the answer declines) added to the training rows: BFCL irrelevance's shape.")
    ap.add_argument("--parallel-rows", type=int, default=ReplicationConfig.parallel_rows,
                    help="One-sentence parallel rows from the sample generator (several values, one call each) added to the training rows.")
    ap.add_argument("--phrased-rows", type=int, default=ReplicationConfig.phrased_rows,
                    help="Rows from the sample generator whose values are said in everyday words and written as the "
                         "function's description asks ('2.5 million' as 2500000, 'Denver' as 'Denver, CO').")
    ap.add_argument("--optional-rows", type=int, default=ReplicationConfig.optional_rows,
                    help="Rows from the sample generator that pass an optional parameter when the request names its "
                         "value ('using the newton method') and leave it out when not.")
    ap.add_argument("--asked-rows", type=int, default=ReplicationConfig.asked_rows,
                    help="The same as --optional-rows on 18 other tools, the value asked for in passing "
                         "('a large mushroom', 'including seasonality').")
    ap.add_argument("--max-length", type=int, default=ReplicationConfig.max_length,
                    help="Longest training row in tokens; longer rows are left out (and counted). Most Seal-Tools "
                         "multi-call rows need about 1,400.")
    ap.add_argument("--lora", type=int, default=ReplicationConfig.lora,
                    help="LoRA rank (0: full fine-tuning of all 135M weights; give it a smaller --learning-rate).")
    ap.add_argument("--learning-rate", type=float, default=ReplicationConfig.learning_rate,
                    help="Peak learning rate (1e-3 is the LoRA runs' setting; the full fine-tuning runs used 1e-4).")
    ap.add_argument("--lora-layers", type=int, default=ReplicationConfig.lora_layers,
                    help="LoRA on the last N decoder layers only (0: all 30). More layers learn more and cost more "
                         "time a step: the backward pass goes further down.")
    ap.add_argument("--bf16", action="store_true",
                    help="Train with bf16 products and fp32 weights (funreason train --bf16): faster on long batches on a CPU with avx512_bf16 or AMX.")
    ap.add_argument("--guided", action="store_true",
                    help="Evaluate under schema-guided decoding (a call list keeps to the entry's functions, parameters "
                         "and types); the models trained in the same --out are reused, the scores go to eval_guided/.")
    ap.add_argument("--soup", action="store_true",
                    help="Also average each trained setting's seeds into one model (funreason model average) and evaluate it.")
    ap.add_argument("--only", nargs="*", default=None, help="Only these settings (base, sft_raw, …) this time.")
    ap.add_argument("--quick", action="store_true",
                    help="A smoke run in minutes: base and sft_raw, seed 0, 3 steps, 2 BFCL entries per category, 2 held-out "
                         "rows per source, 2 HumanEval problems, in runs/replication-quick (results beside it, not committed).")
    args = ap.parse_args()
    if args.lora == 0 and args.lora_layers:  # full fine-tuning trains every layer: the option would be dropped
        ap.error(f"--lora-layers {args.lora_layers} places LoRA adapters; with --lora 0 (full fine-tuning) give --lora-layers 0")
    if args.fc_open is None:
        from funreason.data import open_dir

        args.fc_open = str(open_dir())
    if args.quick:
        args.out = args.out or str(ROOT / "runs" / "replication-quick")
        args.results = args.results or str(Path(args.out) / "results")
        args.seeds, args.steps, args.bfcl_limit, args.humaneval_limit = [0], 3, 2, 2
        args.only = args.only or ["base", "sft_raw"]
    args.out = args.out or str(ROOT / "runs" / "replication")
    args.results = args.results or ReplicationConfig.results
    # every option but --only and --quick is a field of the config under the same name, so a new option
    # cannot be parsed and then left out of the run (and of the recorded settings)
    cfg = ReplicationConfig(**{k: v for k, v in vars(args).items() if k not in ("only", "quick")})
    if args.quick:
        cfg.heldout_per_source = 2
    res = Path(cfg.results)
    res.mkdir(parents=True, exist_ok=True)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    recorded = res / "config.json"
    # seeds are not a setting: each seed's models are results of their own, so a run may add a seed
    # nor is --soup: a soup is one more model, kept under a name of its own
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("out", "results", "fc_open", "seeds", "soup")}
    # a setting added to the script after a run was recorded held its default in that run
    defaults = {k: v for k, v in asdict(ReplicationConfig(fc_open="", out="")).items() if k in settings}
    old = json.loads(recorded.read_text()) if recorded.exists() else {}
    mix_recorded = old.pop("mix_sha256", None)
    seeds_recorded = old.pop("seeds", [])
    if old and {**defaults, **old} != settings:
        sys.exit(f"error: {res} holds results made with other settings ({recorded}); use another --results or the same settings")
    model, data, raw, heldout = prepare(cfg)
    # the same settings build the same mix only while the mix's code is the same: the digest of the
    # rows the results were made on keeps a changed mix from being scored beside them
    mix_sha = hashlib.sha256("".join(file_sha256(p) for p in (data, raw, heldout)).encode()).hexdigest()
    if mix_recorded not in (None, mix_sha):
        sys.exit(f"error: the mix in {Path(cfg.out) / 'mix'} is not the one the results in {res} were made on (the mix's "
                 "code or data changed since); use another --out and --results")
    _write(recorded, {**settings, "seeds": sorted({*seeds_recorded, *cfg.seeds}), "mix_sha256": mix_sha})
    results_file = res / "models.json"
    results: dict[str, Any] = json.loads(results_file.read_text()) if results_file.exists() else {}
    wanted = set(args.only) if args.only else {"base", *SETTINGS}

    def done(name: str, path: str, **extra: Any) -> None:
        if name not in results:
            results[name] = {**evaluate(cfg, name, path, heldout), **extra}
            _write(results_file, results)
            summarise(cfg, results)

    if "base" in wanted:
        done("base", model)
    for seed in cfg.seeds:
        for setting in ["srml_fixed", "sft_cot", "sft_raw", "srml_self"]:
            name = f"{setting}-s{seed}"
            needed_for_sr = setting == "srml_fixed" and "srml_sr" in wanted and f"srml_sr-s{seed}" not in results
            if (setting in wanted and name not in results) or needed_for_sr:  # an evaluated model is not trained again
                path = train_setting(cfg, setting, seed, model, data, raw)
                if setting in wanted:
                    done(name, path)
            if needed_for_sr:
                done(f"srml_sr-s{seed}", self_refine(cfg, seed, str(trained_model(cfg, setting, seed)), data, heldout))
    if cfg.soup and len(set(cfg.seeds)) < 2:
        log("no soup: --soup averages the models of two or more --seeds")
    for setting in SETTINGS if cfg.soup and len(set(cfg.seeds)) > 1 else []:
        name, folder, models = soup(cfg, setting)
        if setting not in wanted or name in results:
            continue
        missing = [str(m) for m in models if not (m / "config.json").exists()]
        if missing:
            log(f"no {name}: its seeds' models are not under --out ({', '.join(missing)}); train them here first")
            continue
        log(f"averaging {len(models)} seeds of {setting} into {folder}")
        from funreason.models.average import AverageConfig, average_models  # mergekit: the optional extra funreason[soup]

        average_models(AverageConfig(models=[str(m) for m in models], out=str(folder)), log=log)
        done(name, str(folder), soup_of=[str(m) for m in models])
    summarise(cfg, results)
    print((res / "results.md").read_text())


if __name__ == "__main__":
    main()
