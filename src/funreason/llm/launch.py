"""An inference engine launched as a child process for one model, used, and stopped.

`self-refine --rollout-server 'vllm serve {model} --port {port}'` starts an OpenAI-compatible
engine on the round's model, waits until `/v1/models` answers, generates through it and stops it
before training (which needs the accelerator back). The invariant: **an engine never outlives the
`with` block that started it** — on a normal exit, an exception, Ctrl-C (KeyboardInterrupt) and
SIGTERM to this process (turned into SystemExit while an engine runs, so the block's exit runs),
and also when this process dies without cleaning up (SIGKILL, a crash): the command runs under a
keeper (`funreason.llm.keeper`) that leads the engine's process group and ends the whole group,
whatever the command forked, when this process's end of its stdin pipe closes. Stopping signals
the whole group (vLLM's workers too): SIGTERM, then SIGKILL after `stop_timeout`.

The engine gets an API key in its environment (`FUNREASON_API_KEY`, `VLLM_API_KEY`): one given
(`api_key`) or a fresh random one, and every request to it carries that key. So a key the user's
shell exports for another purpose does not lock this process out, and the engine is not open to
anyone who can reach its port. An engine that still answers 401 (its command names a key of its
own) is reported at once. Its output goes to a log file named in every error.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from string import Formatter
from typing import Any

from funreason.errors import BackendError

PLACEHOLDERS = {"model", "port"}


def check_template(template: str) -> list[str]:
    """The command's words; ValueError unless it names `{model}` and `{port}` and nothing else,
    each bare (no format spec or conversion: `{port:x}` would launch on another port, `{model!r}`
    quote the path) and `{model}` as a word of its own: a path pasted inside a word such as
    `sh -c '… {model} …'` would reach a shell unquoted."""
    try:
        words = shlex.split(template)
        fields = [(w, name, spec, conv) for w in words for _, name, spec, conv in Formatter().parse(w) if name is not None]
    except ValueError as e:
        raise ValueError(f"engine command {template!r}: {e}") from None
    names = {name for _, name, _, _ in fields}
    for word, name, spec, conv in fields:
        if spec or conv:
            raise ValueError(f"engine command {template!r}: write {{{name}}} bare, without a format spec or conversion")
        if name == "model" and word != "{model}":
            raise ValueError(f"engine command {template!r}: {{model}} must be a word of its own (not inside {word!r}), "
                             "so that a model path is passed as one argument and never reaches a shell")
    if names != PLACEHOLDERS:
        raise ValueError(f"engine command {template!r} must contain {{model}} and {{port}} (and no other placeholder; "
                         f"it has {sorted(names) or 'none'}), e.g. 'vllm serve {{model}} --port {{port}}'")
    return words


def visible_devices(template: str) -> set[str] | None:
    """The GPUs a template's `env CUDA_VISIBLE_DEVICES=…` prefix gives its engine; None when it names none."""
    words = check_template(template)
    if words[0] != "env":
        return None
    for w in words[1:]:
        if "=" not in w or w.startswith("-"):
            break
        name, value = w.split("=", 1)
        if name == "CUDA_VISIBLE_DEVICES":
            return {d.strip() for d in value.split(",") if d.strip()}
    return None


def shared_gpus_warning(rollout: str | None, judge: str | None) -> str | None:
    """A sentence when two engines that run at the same time (self-refine's rollout and judge
    engines) may land on the same GPUs: each needs an `env CUDA_VISIBLE_DEVICES=…` prefix, disjoint."""
    if not (rollout and judge):
        return None
    a, b = visible_devices(rollout), visible_devices(judge)
    if a is not None and b is not None and not a & b:
        return None
    return ("the rollout and judge engines run at the same time, and their commands do not give them disjoint GPUs: "
            "on a GPU machine start each with its own, e.g. --rollout-server 'env CUDA_VISIBLE_DEVICES=0,1,2,3 vllm serve …' "
            "--judge-server 'env CUDA_VISIBLE_DEVICES=4,5,6,7 vllm serve …'")


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` now (the OS's pick)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


KEEPER = Path(__file__).with_name("keeper.py")  # run by file (`python -P`): nothing of this package to import
KEY_VARIABLES = ("FUNREASON_API_KEY", "VLLM_API_KEY")  # where `funreason serve` and `vllm serve` read a key


class LaunchedEngine:
    """`with LaunchedEngine(template, model, log_file) as engine:` → `engine.url`, `engine.served_model`,
    `engine.api_key` (the key every request to it must carry)."""

    def __init__(self, template: str, model: str, log_file: Path, *, start_timeout: float = 900.0, stop_timeout: float = 30.0,
                 log: Callable[[str], None] = print, api_key: str | None = None):
        self.words = check_template(template)
        self.api_key = api_key or secrets.token_urlsafe(24)
        self.model, self.log_file, self.log = model, Path(log_file), log
        self.start_timeout, self.stop_timeout = start_timeout, stop_timeout
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.served_model = ""
        self._old_sigterm: Any = None

    def __enter__(self) -> "LaunchedEngine":
        self._catch_sigterm()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _catch_sigterm(self) -> None:
        if threading.current_thread() is threading.main_thread():
            def to_exit(signum: int, frame: Any) -> None:
                raise SystemExit(128 + signum)

            self._old_sigterm = signal.signal(signal.SIGTERM, to_exit)

    def _start(self) -> None:
        port = free_port()
        argv = [w.format(model=self.model, port=port) for w in self.words]
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as out:
            out.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} $ {shlex.join(argv)}\n".encode())
            out.flush()
            if shutil.which(argv[0]) is None:
                raise BackendError(f"could not start the engine `{shlex.join(argv)}`: no such program {argv[0]!r}")
            env = {**os.environ, **{name: self.api_key for name in KEY_VARIABLES}}
            try:  # the keeper's stdin is the pipe whose end here tells it this process is gone
                self.proc = subprocess.Popen([sys.executable, "-P", str(KEEPER), str(self.stop_timeout), "--", *argv],
                                             stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, env=env,
                                             start_new_session=True)
            except OSError as e:
                raise BackendError(f"could not start the engine `{shlex.join(argv)}`: {e}") from None
        self.url = f"http://127.0.0.1:{port}"
        self.log(f"engine: started `{shlex.join(argv)}` (pid {self.proc.pid}), leader of its process group; "
                 f"waiting for {self.url}/v1/models · log {self.log_file}")
        t0 = time.monotonic()
        while True:
            code = self.proc.poll()
            if code is not None:
                raise BackendError(f"the engine exited with code {code} before it answered; its log: {self.log_file}\n{self.tail()}")
            name = self._served_model()
            if name:
                self.served_model = name
                self.log(f"engine: ready in {time.monotonic() - t0:.0f}s, serving {name!r}")
                return
            if time.monotonic() - t0 > self.start_timeout:
                raise BackendError(f"the engine did not answer {self.url}/v1/models within {self.start_timeout:.0f}s "
                                   f"(stopped); its log: {self.log_file}\n{self.tail()}")
            time.sleep(0.5)

    def _served_model(self) -> str | None:
        """The served model's name once the engine answers; None while it is not up yet. An engine
        that refuses the key (401, 403) will not come round: BackendError at once."""
        request = urllib.request.Request(self.url + "/v1/models", headers={"Authorization": f"Bearer {self.api_key}"})
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                data = json.loads(resp.read())
            return str(data["data"][0]["id"])
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                raise BackendError(f"the engine at {self.url} wants an API key it was not given (HTTP {e.code} on /v1/models): "
                                   f"its command names a key of its own (e.g. --api-key); give that key with --engine-api-key, "
                                   f"or drop it from the command (the engine gets one in {' and '.join(KEY_VARIABLES)}); "
                                   f"its log: {self.log_file}") from None
            return None
        except (OSError, ValueError, KeyError, IndexError, TypeError, urllib.error.URLError):
            return None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to the engine's process group, SIGKILL after `stop_timeout`; idempotent."""
        proc, self.proc = self.proc, None
        try:
            if proc is not None and proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()  # the keeper reads end-of-file: it ends the group too
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(self.stop_timeout + 5)  # the keeper's own SIGKILL comes at stop_timeout
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                self.log(f"engine: stopped (pid {proc.pid})")
            if proc is not None:
                with contextlib.suppress(ProcessLookupError):  # workers the engine left behind in its group
                    os.killpg(proc.pid, signal.SIGKILL)
        finally:
            if self._old_sigterm is not None:
                signal.signal(signal.SIGTERM, self._old_sigterm)
                self._old_sigterm = None


class ModelEngines:
    """The generation engine of one model at a time, in-process (`LocalEngine`) or launched from
    `launch` (a `LaunchedEngine` with a `RemoteEngine` client). `get(model)` reuses the open engine
    when it serves that model and closes it otherwise; `close()` (before training, and at the end)
    frees it. One object per run, used as a context manager."""

    def __init__(self, launch: str | None = None, *, batch: int = 16, log_dir: Path | None = None,
                 log: Callable[[str], None] = print, start_timeout: float = 900.0, api_key: str | None = None):
        if launch:
            check_template(launch)
        self.launch, self.batch, self.log_dir, self.log, self.start_timeout = launch, batch, log_dir, log, start_timeout
        self.api_key = api_key  # the key the launched command's engine wants (None: a fresh one per launch)
        self.model: str | None = None
        self.engine: Any = None
        self._launched: LaunchedEngine | None = None

    def get(self, model: str) -> Any:
        if self.engine is not None and self.model == model:
            return self.engine
        self.close()
        if self.launch:
            from funreason.chat import load_tokenizer
            from funreason.llm.http import RemoteEngine

            log_file = (self.log_dir or Path(".")) / "engine.log"
            launched = LaunchedEngine(self.launch, model, log_file, start_timeout=self.start_timeout, log=self.log,
                                      api_key=self.api_key).__enter__()
            self._launched = launched
            # the prompt is rendered here with the model's own template, exactly as for local generation
            self.engine = RemoteEngine(launched.url, launched.served_model, load_tokenizer(model), concurrency=4 * self.batch,
                                       api_key=launched.api_key)
        else:
            from funreason.llm.local import LocalEngine

            self.engine = LocalEngine.from_pretrained(model, max_batch=self.batch)
        self.model = model
        return self.engine

    def close(self) -> None:
        engine, launched = self.engine, self._launched
        self.engine = self._launched = self.model = None
        try:
            if engine is not None:
                engine.close()
        finally:
            if launched is not None:
                launched.stop()

    def __enter__(self) -> "ModelEngines":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
