"""Which run an output folder belongs to, so resumed results are never another run's.

Invariant: result files in a folder (evaluation answers, FCDR rows) are extended, re-scored or
reused only by the run that wrote them: the same input, the same model (a local folder by the
SHA-256 of every byte of its weight and config files, not only by its name, since a retrained model
keeps its path) and the same generation settings. A file's digest is cached under its path, size,
modification time and inode, so a 15 GB checkpoint is read once, and any rewrite reads it again. `claim` writes
`run.json` the first time and refuses a different run, or result files with no `run.json`, with
one line that says what differs and the way out.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

RUN_FILE = "run.json"
MODEL_FILES = (".safetensors", ".bin", ".json", ".jinja", ".model", ".txt")  # weights, configs, tokenizer, template


class RunMismatch(ValueError):
    """The folder holds results of another run."""


def model_identity(model: str) -> dict[str, str]:
    """The model as results record it: a hub id or endpoint name as given; a local folder by its
    resolved path and a fingerprint of the full digests of its weight, config and tokenizer files.
    A reference that names a local folder which is not there is refused here (FileNotFoundError)."""
    from funreason.models.ref import check_model_ref

    check_model_ref(model)
    path = Path(model)
    if not path.is_dir():
        return {"model": model}
    digest = hashlib.sha256()
    for f in sorted(p for p in path.iterdir() if p.is_file() and p.suffix in MODEL_FILES):
        digest.update(f"{f.name}:{cached_sha256(f)}\n".encode())
    return {"model": str(path.resolve()), "fingerprint": digest.hexdigest()[:16]}


def cached_sha256(path: Path) -> str:
    """`file_sha256(path)`, remembered in the user cache under the file's resolved path, size,
    modification time and inode: unchanged, a large checkpoint is not read again; rewritten in any
    way (a retrained model saved in place), it is. A cache that cannot be written is only slower."""
    from funreason.formats.jsonl import write_text_atomic
    from funreason.models.get import cache_dir

    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}".encode()).hexdigest()[:32]
    entry = cache_dir() / "digests" / key
    try:
        known = entry.read_text(encoding="ascii").strip()
        if len(known) == 64:
            return known
    except OSError:
        pass
    digest = file_sha256(path)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(entry, digest + "\n")
    except OSError:
        pass
    return digest


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read a MiB at a time (inputs run to gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def claim(out: Path, run: dict[str, Any], results: list[Path], write: bool = True) -> None:
    """Make `out` the folder of `run` (for its verb), or raise RunMismatch when its results belong to
    another run. The evaluation verbs (`eval …`) may share one folder, each with its own record, so
    `eval compare` reads a model's BFCL and HumanEval results from one place; any other verb needs
    the folder to itself. The writing process also takes the folder's lock until the verb that
    claimed it returns (`releases_folders`): a second writer at the same time is refused. `write=False` checks without recording or locking
    (the other ranks of a multi-process run)."""
    from funreason.formats.jsonl import write_text_atomic

    path = out / RUN_FILE
    run = json.loads(json.dumps(run))  # as it reads back from the file (tuples become lists)
    verb = str(run.get("verb", ""))
    if write and path.parent.is_dir():
        lock(out)
    records = read_records(path, out)
    if verb in records:
        old = records[verb]
        if old != run:
            keys = sorted(k for k in set(old) | set(run) if old.get(k) != run.get(k))
            diff = "; ".join(f"{k}: {old.get(k)!r} there, {run.get(k)!r} now" for k in keys)
            raise RunMismatch(f"{out} holds results of another run of {verb} ({diff}); choose another --out, "
                              f"or delete {out} to start over")
        return
    others = [v for v in records if not (shares_folder(v) and shares_folder(verb))]
    if others:
        raise RunMismatch(f"{out} is a `{others[0]}` output folder; choose another --out for `{verb}`")
    found = [p.name for p in results if p.exists()]
    if found:
        raise RunMismatch(f"{out} holds results ({', '.join(found[:3])}) that do not say which model made them; "
                          f"choose another --out, or delete {out} to start over")
    if write:
        out.mkdir(parents=True, exist_ok=True)
        lock(out)
        records[verb] = run
        body = records[verb] if len(records) == 1 else {"runs": records}
        write_text_atomic(path, json.dumps(body, indent=2) + "\n")


def shares_folder(verb: str) -> bool:
    """Whether `verb`'s results can sit beside other verbs' in one folder: the evaluation verbs'."""
    return verb.startswith("eval ")


def read_records(path: Path, out: Path) -> dict[str, dict[str, Any]]:
    """The runs recorded in `path` by verb: one run as its own object (as every verb writes it
    alone), several under `runs`."""
    if not path.exists():
        return {}
    try:
        held = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RunMismatch(f"{path} cannot be read ({e}); delete {out} to start over, or choose another --out") from None
    if isinstance(held, dict) and isinstance(held.get("runs"), dict):
        return held["runs"]
    if isinstance(held, dict):
        return {str(held.get("verb", "")): held}
    raise RunMismatch(f"{path} is not a run record; delete {out} to start over, or choose another --out")


_LOCKS: dict[Path, Any] = {}  # run folders this process holds, with their open lock files


def lock(out: Path) -> None:
    """Hold `out`'s lock (an exclusive `flock` on `OUT/.lock`) until the verb returns (or this process
    ends), or raise RunMismatch when another process holds it: two writers would interleave their
    results."""
    import fcntl
    import os

    key = out.resolve()
    if key in _LOCKS:
        return
    out.mkdir(parents=True, exist_ok=True)
    handle = open(out / ".lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RunMismatch(f"{out} is being written by {holder}; wait for it to finish, or choose another --out") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    _LOCKS[key] = handle


def releases_folders(verb: F) -> F:
    """Release, when `verb` returns or raises, the folder locks taken during the call: a verb called
    from Python (a notebook, a test, `self-refine` calling `train`) must not keep its folder from
    the next process. Locks held before the call stay held (nested verbs release only their own)."""
    if inspect.iscoroutinefunction(verb):
        @functools.wraps(verb)
        async def awaited(*args: Any, **kwargs: Any) -> Any:
            with _locks_taken_inside():
                return await verb(*args, **kwargs)
        return awaited  # type: ignore[return-value]

    @functools.wraps(verb)
    def called(*args: Any, **kwargs: Any) -> Any:
        with _locks_taken_inside():
            return verb(*args, **kwargs)
    return called  # type: ignore[return-value]


@contextlib.contextmanager
def _locks_taken_inside() -> Iterator[None]:
    """Close, on leaving, the locks taken inside the block (closing the file drops its flock)."""
    before = set(_LOCKS)
    try:
        yield
    finally:
        for key in [k for k in _LOCKS if k not in before]:
            _LOCKS.pop(key).close()
