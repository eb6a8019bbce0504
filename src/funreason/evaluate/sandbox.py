"""Run untrusted Python (model-written code) in a subprocess sandbox.

Each program runs in a fresh temporary directory, in its own process session, with an empty
environment (no inherited secrets), and with limits: wall time, CPU time, address space, file
size, open files, and, when started as root, as the unprivileged `nobody` user with a process
cap (so a fork bomb stops at the cap and the program cannot touch files outside its directory);
`nobody` needs a Python it may run, so a system interpreter is used when ours lives in a private
folder (the programs need only the standard library).
Whatever it leaves running is killed. The verdict says why a program failed.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

NOBODY = 65534


@dataclass
class Limits:
    timeout_s: float = 10.0
    memory_bytes: int = 2 << 30
    max_processes: int = 64
    file_bytes: int = 16 << 20
    open_files: int = 64


# a program's verdict kinds: what summaries count (the reason sentence may be reworded freely)
PASSED, TIMEOUT, OOM, CPU, FAILED, SANDBOX = "passed", "timeout", "oom", "cpu", "failed", "sandbox"


@dataclass
class Verdict:
    passed: bool
    reason: str  # "passed", "timed out after Ns", "out of memory", "failed: <last error line>"
    kind: str = PASSED  # one of the kinds above


def _drop_privileges_and_limit(limits: Limits, as_nobody: bool):
    def apply() -> None:
        os.setsid()
        cpu = int(limits.timeout_s) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if as_nobody:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))

    return apply


def run_python(program: str, limits: Limits | None = None) -> Verdict:
    """Run `program` with the limits; it passes when it exits 0.

    A supervisor process (this module run as a script) becomes the child subreaper, runs the
    program, kills what it leaves behind and reaps it all, so no zombie outlives the run."""
    limits = limits or Limits()
    request = json.dumps({"program": program, "limits": asdict(limits)})
    try:
        done = subprocess.run([sys.executable, "-m", "funreason.evaluate.sandbox"], input=request.encode(),
                              capture_output=True, timeout=limits.timeout_s + 30)
        return Verdict(**json.loads(done.stdout.decode().strip().splitlines()[-1]))
    except (subprocess.TimeoutExpired, ValueError, IndexError, TypeError) as e:
        return Verdict(False, f"sandbox failure: {type(e).__name__}", SANDBOX)


def _supervise(program: str, limits: Limits) -> Verdict:
    _become_subreaper()
    python = sys.executable
    as_nobody = False
    if os.geteuid() == 0:
        python = _world_readable_python()
        as_nobody = python is not None
        python = python or sys.executable
    workdir = tempfile.mkdtemp(prefix="funreason-sandbox-")
    try:
        if as_nobody:
            os.chown(workdir, NOBODY, NOBODY)
        path = os.path.join(workdir, "program.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(program)
        env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
        # stderr goes to a file, not a pipe: a child that outlives the program cannot hold it open
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(
                # -I: no environment, no user site; -S: no site-packages, only the standard library
                [python, "-I", "-S", path],
                cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                preexec_fn=_drop_privileges_and_limit(limits, as_nobody), close_fds=True,
            )
            try:
                proc.wait(timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                return Verdict(False, f"timed out after {limits.timeout_s:g}s", TIMEOUT)
            finally:
                _kill_group(proc.pid)
                _kill_strays(workdir)
                _reap()
            err.seek(0, os.SEEK_END)
            err.seek(max(0, err.tell() - 4096))
            text = err.read().decode("utf-8", "replace").strip()
        if proc.returncode == 0:
            return Verdict(True, "passed")
        if "MemoryError" in text or proc.returncode == -signal.SIGKILL and not text:
            return Verdict(False, "out of memory", OOM)
        if proc.returncode == -signal.SIGXCPU:
            return Verdict(False, "CPU time limit", CPU)
        last = text.splitlines()[-1] if text else f"exit code {proc.returncode}"
        return Verdict(False, f"failed: {last[:300]}", FAILED)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _become_subreaper() -> None:
    """Orphans of the program get this process as parent, so they can be reaped (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _reap() -> None:
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.01)


@functools.lru_cache(maxsize=None)
def _world_readable_python() -> str | None:
    """A Python that `nobody` may run: ours if its path is open to all, else a system one."""
    for candidate in (sys.executable, getattr(sys, "_base_executable", ""), "/usr/bin/python3", "/usr/local/bin/python3"):
        if candidate and os.path.exists(candidate) and _open_to_all(os.path.realpath(candidate)):
            return os.path.realpath(candidate)
    return None


def _open_to_all(path: str) -> bool:
    if not os.stat(path).st_mode & stat.S_IXOTH:
        return False
    d = os.path.dirname(path)
    while d and d != "/":
        if not os.stat(d).st_mode & stat.S_IXOTH:
            return False
        d = os.path.dirname(d)
    return True


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_strays(workdir: str) -> None:
    """Processes that left the group (setsid) still run in the sandbox's folder: kill those."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/cwd").startswith(workdir):
                os.kill(int(entry), signal.SIGKILL)
        except OSError:
            continue


if __name__ == "__main__":
    req = json.loads(sys.stdin.read())
    print(json.dumps(asdict(_supervise(req["program"], Limits(**req["limits"])))))
