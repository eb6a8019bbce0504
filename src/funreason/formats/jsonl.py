"""Raw rows from JSONL / JSON-array files, each with its location (`file:line` or `file[index]`).

Bad lines (not UTF-8, not JSON, over the size limit) come back as `SchemaError`s in the stream
rather than being raised, so a caller can reject them one by one and carry on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from funreason.errors import SchemaError

DEFAULT_MAX_LINE_BYTES = 1 << 20  # 1 MiB: far above any real function-calling row


class BadLine(SchemaError):
    """A line that is not a JSON row; `raw` keeps its text so nothing is lost."""

    def __init__(self, reason: str, where: str, raw: str):
        super().__init__(reason, where)
        self.raw = raw


def iter_json_rows(
    path: str | os.PathLike, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Iterator[tuple[str, Any]]:
    """Yield (where, row) for each row; `row` is a `BadLine` for a line that cannot be read.

    A file whose first non-blank byte is `[` is read as one JSON array (xLAM-60k ships so);
    otherwise as JSON Lines. Blank lines are skipped (they hold no row).
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(4096).lstrip()
    if head.startswith(b"["):
        yield from _iter_array(path)
    else:
        yield from _iter_lines(path, max_line_bytes)


def _iter_array(path: Path) -> Iterator[tuple[str, Any]]:
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise SchemaError(f"not valid UTF-8 (byte {e.start})", str(path)) from None
    except (ValueError, RecursionError) as e:
        raise SchemaError(f"not a valid JSON array ({e})", str(path)) from None
    if not isinstance(data, list):
        raise SchemaError("top-level JSON value is not an array", str(path))
    for i, row in enumerate(data):
        yield f"{path}[{i}]", row


def _iter_lines(path: Path, max_line_bytes: int) -> Iterator[tuple[str, Any]]:
    with open(path, "rb") as f:
        lineno = 0
        while True:
            line = f.readline(max_line_bytes + 1)
            if not line:
                return
            lineno += 1
            where = f"{path}:{lineno}"
            if len(line) > max_line_bytes and not line.endswith(b"\n"):
                size = len(line) + _skip_rest_of_line(f)
                yield where, BadLine(
                    f"line is {size / (1 << 20):.1f} MiB, over the {max_line_bytes / (1 << 20):.1f} MiB"
                    " limit (raise it with --max-line-mb)",
                    where,
                    raw=line[:1000].decode("utf-8", "backslashreplace") + "...",
                )
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as e:
                yield where, BadLine(
                    f"not valid UTF-8 (byte {e.start} of the line)",
                    where,
                    raw=line.decode("utf-8", "backslashreplace").rstrip("\n"),
                )
                continue
            if not text.strip():
                continue
            try:
                yield where, json.loads(text)
            except (ValueError, RecursionError) as e:
                yield where, BadLine(f"invalid JSON ({str(e)[:120]})", where, raw=text.rstrip("\n"))


def _skip_rest_of_line(f) -> int:
    skipped = 0
    while True:
        chunk = f.readline(1 << 20)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


def _temp_name(path: Path) -> Path:
    # one name per process: two ranks of one torchrun job writing the same file must not rename
    # each other's half-written temporary away
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a whole file under a temporary name, then rename it: a failed write leaves no partial file."""
    path = Path(path)
    tmp = _temp_name(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_jsonl_atomic(path: str | os.PathLike, rows: Iterable[Any]) -> None:
    """`rows` as JSON lines (UTF-8 as it is, not escaped), written whole or not at all."""
    write_text_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


@contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[IO[str]]:
    """A text file written under a temporary name and renamed to `path` when the block ends without
    an error: a failed or interrupted write (bad input, a full disk) leaves no partial file."""
    path = Path(path)
    tmp = _temp_name(path)
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_folder(path: str | os.PathLike, *, replace: bool = False) -> Iterator[Path]:
    """A folder (a model checkpoint) built under a temporary name beside `path` and renamed to it
    when the block ends without an error: a failed or interrupted build leaves no folder that looks
    finished. What is at `path` then goes: with `replace`, whatever it holds (the caller has made
    sure it may); without, it must be an empty folder, else the rename fails and nothing is lost."""
    import shutil
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp's 0o700 would keep the model from anyone else on the machine
        yield tmp
        if replace:
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.rmdir()
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def cut_torn_line(path: Path) -> None:
    """Remove a last line without its newline (a write killed midway), so appending resumes cleanly."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        data = f.read()
        if not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


class AppendLog:
    """The one resumable append-only result file (FCDR's outcomes, rollouts, BFCL answers, HumanEval
    samples): opening it cuts a last line torn by a crash, `rows` are the finished rows, and each
    `append` is one `write` of one whole line on an O_APPEND file, so a crash leaves at most one
    torn line, which the next open cuts.

    `with AppendLog(path) as log: done = {r["id"] for r in log.rows}; log.append({...})`"""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        cut_torn_line(self.path)
        self.rows = read_finished_rows(self.path)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def append(self, row: Any) -> None:
        if self._fd is None:
            raise ValueError(f"{self.path}: the log is closed")
        os.write(self._fd, (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "AppendLog":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def append_jsonl(f, row: Any) -> None:
    """Write one row as one line and flush it, so a crash never leaves half a row behind
    unless the process dies inside this single `write`."""
    f.write(json.dumps(row, ensure_ascii=False) + "\n")
    f.flush()


def read_finished_rows(path: str | os.PathLike) -> list[Any]:
    """The rows of an append-only output file; a line that does not parse (torn by a crash in the
    middle of a write) is skipped, so its work is done again."""
    rows = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    continue
    return rows
