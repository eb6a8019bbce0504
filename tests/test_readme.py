"""Every command in the README, dry-run: `funreason …` and `accelerate launch … -m funreason.cli …`
lines are parsed by the real command-line parser (the verb exists, every option exists, values
parse, required options are given, and a verb's config takes the values given: right types, known
keys) without running; accelerate config files must exist. Other programs (vllm, make, and the
jq / shuf / cat / head lines that prepare a data file) are listed explicitly, so a new kind of
command cannot slip through."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer.main

from funreason.cli import app
from funreason.config import load_config

ROOT = Path(__file__).resolve().parents[1]
EXTERNAL = {"vllm", "make"}  # make demo / make test run in CI; vLLM is the user's server
# standard tools that only cut, join or select rows of data files between two funreason commands
PLUMBING = {"jq", "shuf", "cat", "head"}


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" # ")[0].strip() if not line.lstrip().startswith("#") else ""
            if line:
                commands.append(line)
    return commands


def dry_run(args: list[str]) -> str:
    """Parse like `funreason ARGS` would, down to the leaf command; returns its path."""
    cmd = typer.main.get_command(app)
    ctx = cmd.make_context("funreason", list(args))
    path = []
    while hasattr(cmd, "resolve_command"):
        protected = getattr(ctx, "_protected_args", None) or getattr(ctx, "protected_args", None) or []
        rest = [*protected, *ctx.args]
        name, cmd, rest = cmd.resolve_command(ctx, rest)
        assert cmd is not None, f"unknown command in {args}"
        path.append(name)
        ctx = cmd.make_context(name, rest, parent=ctx)
    assert not ctx.args, f"unexpected arguments {ctx.args} in {args}"
    if hasattr(cmd.callback, "config"):  # a verb built from its config dataclass: the values must make one
        cls, given, required = cmd.callback.config
        values = given({k: v for k, v in ctx.params.items() if k != "config"})
        assert not [k for k in required if k not in values] or ctx.params.get("config"), f"{args}: missing {required}"
        load_config(cls, None, values)
    return " ".join(path)


COMMANDS = readme_commands()


def test_the_readme_has_the_two_setup_commands_and_a_walkthrough():
    assert COMMANDS[:2] == ["make demo", "make test"]
    verbs = {c.split()[1] for c in COMMANDS if c.startswith("funreason ")}
    assert {"refine", "self-refine", "eval", "serve", "stats", "plot"} <= verbs
    assert sum(c.startswith("accelerate launch") for c in COMMANDS) >= 2


@pytest.mark.parametrize("line", COMMANDS)
def test_readme_command_parses(line):
    argv = shlex.split(line)
    if argv[0] in EXTERNAL:
        assert argv[:2] in (["make", "demo"], ["make", "test"]) or argv[:2] == ["vllm", "serve"], line
        return
    if argv[0] == "funreason":
        assert dry_run(argv[1:])
        return
    if argv[0] == ".venv/bin/python" and argv[1].startswith("bench/"):  # a benchmark: it exists, takes these options
        script = (ROOT / argv[1]).read_text(encoding="utf-8")
        for option in (a for a in argv[2:] if a.startswith("--")):
            assert f'"{option}"' in script, f"{argv[1]} has no option {option}"
        return
    if argv[0] in PLUMBING:  # one tool, its output to a file: no verb hides behind && or ;
        assert not {"&&", ";", "|", "funreason"} & set(argv) and argv[-2] == ">", line
        return
    assert argv[:2] == ["accelerate", "launch"], f"a README command this test does not know: {line}"
    config = argv[argv.index("--config_file") + 1]
    assert (ROOT / config).exists(), config
    i = argv.index("-m")
    assert argv[i + 1] == "funreason.cli", line
    assert dry_run(argv[i + 2 :]) == "train"


def test_dry_run_catches_wrong_commands():
    for bad in (["trian"], ["train", "--no-such-option", "1"], ["eval", "bfcl", "--limit", "many"], ["self-refine", "--data", "x"]):
        with pytest.raises(Exception):
            dry_run(bad)
