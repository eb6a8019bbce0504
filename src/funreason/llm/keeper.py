"""The keeper of a launched engine: `python keeper.py STOP_TIMEOUT -- ENGINE ARGV...`.

`LaunchedEngine` starts this script (standard library only, so it starts in milliseconds) in a new
session; the keeper leads that session's process group and runs the engine command inside it.
The invariant: **the engine's whole process group ends when the launcher goes away**, whatever
the engine command forks (`bash -c`, `conda run`, `uv run`, `srun`, vLLM's workers) and however
the launcher died. The keeper's stdin is a pipe whose only writer is the launcher, so it reads
end-of-file when the launcher closes it or dies, even by SIGKILL: the kernel closes a dead
process's files, with no race at start-up and no tie to the thread that forked (unlike
PR_SET_PDEATHSIG, which only reaches the direct child). It also ends the group on SIGTERM (the
launcher's stop) and when the engine exits by itself (what it left behind goes too).

Ending the group: SIGTERM to every member, then SIGKILL to the group after STOP_TIMEOUT if any
member is left. The keeper is the group's leader and leaves it last, so the group id cannot be
taken by an unrelated process while it signals. Its exit status is the engine's (128 + signal
when a signal ended the engine), so the launcher reads the engine's code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time


def members(pgid: int) -> list[int]:
    """The other live processes of group `pgid` (Linux /proc; elsewhere the empty list, and the
    keeper only waits for the engine before killing the group)."""
    me, found = os.getpid(), []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for name in entries:
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # a zombie holds nothing
            found.append(int(name))
    return found


def end_group(engine: subprocess.Popen, stop_timeout: float) -> None:
    """SIGTERM to the group, SIGKILL to it after `stop_timeout` if anyone is left (the keeper too)."""
    pgid = os.getpgid(0)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + stop_timeout
    while time.monotonic() < deadline:
        engine.poll()  # reap the engine so it does not count as a member
        if engine.returncode is not None and not members(pgid):
            return
        time.sleep(0.1)
    os.killpg(pgid, signal.SIGKILL)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: keeper.py STOP_TIMEOUT -- ENGINE ARGV...", file=sys.stderr)
        return 2
    stop_timeout, command = float(argv[0]), argv[2:]
    ended = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: ended.set())
    signal.signal(signal.SIGINT, lambda *_: ended.set())
    if os.getpgid(0) != os.getpid():  # started outside a session of its own: make the group
        os.setpgid(0, 0)
    try:
        engine = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    except OSError as e:
        print(f"could not start the engine {command!r}: {e}", file=sys.stderr, flush=True)
        return 127

    def launcher_gone() -> None:
        try:  # the raw descriptor, not sys.stdin: a buffered reader's lock would trouble the exit
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        ended.set()

    threading.Thread(target=launcher_gone, daemon=True).start()
    while not ended.is_set() and engine.poll() is None:
        ended.wait(0.2)
    end_group(engine, stop_timeout)
    code = engine.wait()
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    status = main(sys.argv[1:])
    sys.stderr.flush()
    os._exit(status)  # no interpreter shutdown: the stdin thread may still be reading
