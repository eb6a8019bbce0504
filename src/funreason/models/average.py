"""Model soups: the weight mean of several fine-tunes of one base model, as one checkpoint folder.

`average_models(cfg)` writes the mean of several fine-tunes of one base model (a "model soup",
Wortsman et al. 2022: e.g. one recipe trained with two seeds), uniform or with a weight per input,
as another such folder; the averaging itself is mergekit's linear merge (weights divided by their
sum). Invariants: the inputs share one architecture (their
`config.json` equal but for bookkeeping keys) and one tokenizer (its files byte-equal), and no two
hold the same weights, or nothing is written; the folder appears whole or not at all, and records
the SHA-256 of every input's weights (with its weight, when not uniform), so averaging the same
inputs with the same weights again into it is a no-op and a folder holding anything else is refused.
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from funreason.config import cli
from funreason.errors import FunReasonError
from funreason.formats.jsonl import atomic_folder
from funreason.progress import no_tqdm
from funreason.runinfo import file_sha256


class ModelAverageError(FunReasonError, ValueError):
    """Checkpoints that cannot be averaged (or a folder that must not be written); the message names which and why."""


AVERAGE_MARKER = "funreason-average.json"  # written last into a finished averaged folder
# config keys that are bookkeeping, not architecture: two fine-tunes of one base may differ in them
_CONFIG_BOOKKEEPING = {"_name_or_path", "transformers_version", "dtype", "torch_dtype", "use_cache"}
# the files that make the tokenizer and its chat template: the average takes the first input's, so
# the inputs must agree on them or the averaged model would be served with a template some were not trained on
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json", "tokenizer.model")


@dataclass
class AverageConfig:
    """Every setting of `funreason model average`."""

    models: list[str] = field(default_factory=list, metadata=cli(
        "Checkpoint folders to average: two or more full fine-tunes of one base model (e.g. `funreason train` OUT/final of two seeds).",
        argument=True, required=True))
    out: str = field(default="", metadata=cli("Folder for the averaged checkpoint.", "--out", "-o", required=True))
    weights: list[float] = field(default_factory=list, metadata=cli(
        "Comma-separated weights, one per checkpoint in the order given, divided by their sum (default: equal).", csv=True))

    def validate(self) -> "AverageConfig":
        if len(self.models) < 2:
            raise ValueError("give two or more checkpoint folders to average")
        if not self.out:
            raise ValueError("--out is required")
        if self.weights and len(self.weights) != len(self.models):
            raise ValueError(f"--weights gives {len(self.weights)} weights for {len(self.models)} checkpoints; give one per checkpoint")
        if any(not (w > 0 and math.isfinite(w)) for w in self.weights):
            raise ValueError(f"--weights {','.join(map(str, self.weights))}: each weight must be a positive number")
        return self

    @property
    def shares(self) -> list[float]:
        """Each input's share of the mean, in the order given; empty for the uniform mean (no
        weights, or all equal: recorded as the uniform mean it is)."""
        return [w / sum(self.weights) for w in self.weights] if len(set(self.weights)) > 1 else []


@dataclass(frozen=True)
class Averaged:
    """What `average_models` did: the folder, its inputs and whether it was already there."""

    out: Path
    models: tuple[str, ...]
    reused: bool
    seconds: float


def _weights(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors"))


def _read_config(folder: Path) -> dict:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelAverageError(f"{folder}: cannot read config.json ({e})") from None
    if not isinstance(config, dict):
        raise ModelAverageError(f"{folder}/config.json: not a JSON model config")
    return {k: v for k, v in config.items() if k not in _CONFIG_BOOKKEEPING}


def _check_inputs(models: list[Path]) -> list[dict]:
    """Each input's record (path, weights digest), or ModelAverageError naming the input that does not fit."""
    first, records, seen = models[0], [], {}
    for m in models:
        if not m.is_dir():
            raise ModelAverageError(f"{m}: no such checkpoint folder")
        if (m / "adapter_config.json").exists() and not (m / "config.json").exists():
            raise ModelAverageError(f"{m}: a LoRA adapter, not a full checkpoint; average the merged models (`funreason train` writes OUT/final merged)")
        if not (m / "config.json").exists() or not _weights(m):
            raise ModelAverageError(f"{m}: not a checkpoint folder (needs config.json and .safetensors weights)")
    base = _read_config(first)
    for m in models[1:]:
        other = _read_config(m)
        for key in sorted(set(base) | set(other)):
            if base.get(key) != other.get(key):
                raise ModelAverageError(f"{m}: {key} is {other.get(key)!r}, {first} has {base.get(key)!r}; "
                                        "only fine-tunes of one base model (one architecture) can be averaged")
        for name in _TOKENIZER_FILES:
            a, b = first / name, m / name
            if a.exists() != b.exists() or (a.exists() and not filecmp.cmp(a, b, shallow=False)):
                raise ModelAverageError(f"{m}: {name} differs from {first}'s; the inputs must share one tokenizer and chat template")
    for m in models:
        digest = hashlib.sha256("".join(file_sha256(w) for w in _weights(m)).encode()).hexdigest()
        if digest in seen:
            raise ModelAverageError(f"{m} holds the same weights as {seen[digest]}; each input must count once")
        seen[digest] = m
        records.append({"path": str(m.resolve()), "weights_sha256": digest})
    return records


def average_models(cfg: AverageConfig, log: Callable[[str], None] = lambda _m: None) -> Averaged:
    """The uniform mean of `cfg.models`' weights as a checkpoint folder at `cfg.out` (see the module's invariants)."""
    try:  # an optional extra: said in one line before any weights are read
        from mergekit.config import MergeConfiguration
        from mergekit.merge import run_merge
        from mergekit.options import MergeOptions
    except ImportError:
        raise ModelAverageError("model average needs mergekit, an optional extra: pip install 'funreason[soup]'") from None
    t0 = time.perf_counter()
    models = [Path(m) for m in cfg.models]
    out = Path(cfg.out)
    log(f"checking {len(models)} checkpoints")
    records = _check_inputs(models)
    identity = {"method": "uniform mean (mergekit linear merge)", "inputs": sorted(r["weights_sha256"] for r in records)}
    shares = cfg.shares
    if shares:  # each input's share, by the SHA-256 of its weights (the order given is not the identity)
        for r, w in zip(records, shares):
            r["weight"] = round(w, 6)
        identity = {"method": "weighted mean (mergekit linear merge)",
                    "inputs": sorted([r["weights_sha256"], r["weight"]] for r in records)}
    try:
        held = json.loads((out / AVERAGE_MARKER).read_text())
    except (OSError, ValueError):
        held = None
    if held is not None and {k: held.get(k) for k in identity} == identity:
        log(f"{out} already holds this average")
        return Averaged(out, tuple(cfg.models), True, time.perf_counter() - t0)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        what = "another average" if held is not None else "something else"
        raise ModelAverageError(f"{out} exists and holds {what}; choose another --out")
    first = json.loads((models[0] / "config.json").read_text(encoding="utf-8"))
    dtype = first.get("dtype") or first.get("torch_dtype") or "float32"
    merge = MergeConfiguration.model_validate({
        "merge_method": "linear", "dtype": dtype if dtype in ("float32", "bfloat16", "float16") else "float32",
        # each path as a structured reference: given as a string, mergekit reads "a+b" as a model with
        # a LoRA and "a@b" as a revision, so a folder such as runs/soup+asked would not be found
        "models": [{"model": {"model": {"path": str(m)}}, "parameters": {"weight": r.get("weight", 1.0)}}
                   for m, r in zip(models, records)]})
    with atomic_folder(out) as tmp:  # `out` is absent or empty, checked above
        log(f"averaging {len(models)} checkpoints with mergekit")
        try:
            with no_tqdm():
                run_merge(merge, str(tmp), options=MergeOptions(copy_tokenizer=True, quiet=True, write_model_card=False))
        except Exception as e:  # mergekit's own refusal (an architecture it does not know, a tensor it cannot write)
            raise ModelAverageError(f"mergekit could not average {', '.join(map(str, models))}: {e}") from e
        (tmp / "PROVENANCE.md").write_text(_average_provenance(records), encoding="utf-8")
        (tmp / AVERAGE_MARKER).write_text(json.dumps({**identity, "models": records}, indent=2))
    log(f"averaged checkpoint in {out}")
    return Averaged(out, tuple(cfg.models), False, time.perf_counter() - t0)


def _average_provenance(records: list[dict]) -> str:
    lines = "".join(f"- `{r['path']}` (weights SHA-256 `{r['weights_sha256']}`" + (f", weight {r['weight']}" if "weight" in r else "") + ")\n"
                    for r in records)
    mean = "mean, with the weight shown for each," if any("weight" in r for r in records) else "uniform mean"
    return (
        "# Averaged checkpoint\n\n"
        f"Made by `funreason model average`: the {mean} of the weights of {len(records)} checkpoints\n"
        "(mergekit's linear merge); tokenizer, chat template and config are the first input's, which all share.\n\n"
        f"{lines}"
    )
