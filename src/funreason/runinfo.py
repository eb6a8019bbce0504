"""Which run an output folder belongs to, so resumed results are never another run's.

Invariant: result files in a folder (evaluation answers, FCDR rows) are extended, re-scored or
reused only by the run that wrote them: the same input, the same model (a local folder by a fingerprint of its weight and config files, not only by
its name, since a retrained model keeps its path) and the same generation settings. `claim` writes
`run.json` the first time and refuses a different run, or result files with no `run.json`, with
one line that says what differs and the way out.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

RUN_FILE = "run.json"
_SAMPLE = 1 << 20  # bytes hashed at each end of a file: a retrained model differs everywhere


class RunMismatch(ValueError):
    """The folder holds results of another run."""


def model_identity(model: str) -> dict[str, str]:
    """The model as results record it: a hub id or endpoint name as given; a local folder by its
    resolved path and a fingerprint of its weights and configs (size, first and last MiB of each).
    A reference that names a local folder which is not there is refused here (FileNotFoundError)."""
    from funreason.models.ref import check_model_ref

    check_model_ref(model)
    path = Path(model)
    if not path.is_dir():
        return {"model": model}
    digest = hashlib.sha256()
    for f in sorted(p for p in path.iterdir() if p.is_file() and p.suffix in (".safetensors", ".bin", ".json", ".jinja")):
        size = f.stat().st_size
        digest.update(f"{f.name}:{size}:".encode())
        with open(f, "rb") as fh:
            digest.update(fh.read(_SAMPLE))
            if size > 2 * _SAMPLE:
                fh.seek(-_SAMPLE, 2)
                digest.update(fh.read(_SAMPLE))
    return {"model": str(path.resolve()), "fingerprint": digest.hexdigest()[:16]}


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read a MiB at a time (inputs run to gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def claim(out: Path, run: dict[str, Any], results: list[Path], write: bool = True) -> None:
    """Make `out` the folder of `run`, or raise RunMismatch when its results belong to another.
    `write=False` checks without recording (the other ranks of a multi-process run)."""
    from funreason.formats.jsonl import write_text_atomic

    path = out / RUN_FILE
    run = json.loads(json.dumps(run))  # as it reads back from the file (tuples become lists)
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise RunMismatch(f"{path} cannot be read ({e}); delete {out} to start over, or choose another --out") from None
        if old != run:
            keys = sorted(k for k in set(old) | set(run) if old.get(k) != run.get(k))
            diff = "; ".join(f"{k}: {old.get(k)!r} there, {run.get(k)!r} now" for k in keys)
            raise RunMismatch(f"{out} holds results of another run ({diff}); choose another --out, "
                              f"or delete {out} to start over")
        return
    found = [p.name for p in results if p.exists()]
    if found:
        raise RunMismatch(f"{out} holds results ({', '.join(found[:3])}) that do not say which model made them; "
                          f"choose another --out, or delete {out} to start over")
    if write:
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(run, indent=2) + "\n")
