"""Every command in the README and in docs/*.md, dry-run: `funreason …` and `accelerate launch … -m
funreason.cli …` lines are parsed by the real command-line parser (the verb exists, every option
exists, values parse, required options are given, and a verb's config takes the values given: right
types, known keys) without running; accelerate config files must exist; benchmark scripts must exist
and take the options given; vLLM's parser plugins must be modules of the package. Other programs
(vllm, make, and the jq / shuf / cat / head lines that prepare a data file) are listed explicitly,
so a new kind of command cannot slip through. The documentation site builds with
`mkdocs build --strict`."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
import yaml

from funreason.cli import app
from funreason.config import load_config

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXTERNAL = {"vllm", "make"}  # make targets run in CI or by hand; vLLM is the user's server
MAKE_TARGETS = {"demo", "test", "test-fast", "docs", "bench", "install"}
# standard tools that only cut, join or select rows of data files between two funreason commands
PLUMBING = {"jq", "shuf", "cat", "head"}


def commands(path: Path) -> list[str]:
    """The commands of a Markdown file's ```bash blocks, continuation lines joined, comments cut."""
    text = path.read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" # ")[0].strip() if not line.lstrip().startswith("#") else ""
            if line:
                found.append(line)
    return found


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


README = commands(ROOT / "README.md")
COMMANDS = [(f"{path.relative_to(ROOT)}:{i}", line) for path in DOCUMENTS for i, line in enumerate(commands(path), 1)]


def test_the_readme_has_the_two_setup_commands_and_a_walkthrough():
    assert README[:2] == ["make demo", "make test"]
    verbs = {argv[1] for argv in (without_env(shlex.split(c))[1] for c in README) if argv[0] == "funreason"}
    assert {"refine", "self-refine", "eval", "serve", "stats", "plot"} <= verbs
    assert sum(without_env(shlex.split(c))[1][:2] == ["accelerate", "launch"] for c in README) >= 2


def test_the_readme_stays_a_users_document():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    assert not re.search(r"\b[a-z-]+(th|st|nd|rd) try\b", text, re.I), "a numbered try belongs in experiments/"
    assert not re.search(r"\bruns/", text), "a runs/ folder exists only on the machine that made it"


def check_bench(argv: list[str], line: str) -> None:
    """A benchmark script: it is in the checkout and takes the options given."""
    script = ROOT / argv[1]
    assert script.is_file(), (
        f"{argv[1]} is not in this checkout ({line!r}): the maintained benchmarks live in "
        "bench/perf/, bench/agreement/ and bench/replication/; fix the path in the document"
    )
    text = script.read_text(encoding="utf-8")
    for option in (a for a in argv[2:] if a.startswith("--")):
        assert f'"{option}"' in text, f"{argv[1]} has no option {option}"


def check_vllm(argv: list[str], line: str) -> None:
    """`vllm serve`: the parser plugins it names are modules of this package."""
    assert argv[:2] == ["vllm", "serve"], line
    for flag in ("--reasoning-parser-plugin", "--tool-parser-plugin"):
        if flag in argv:
            module = argv[argv.index(flag) + 1]
            assert module.startswith("funreason."), line
            file = ROOT / "src" / (module.replace(".", "/") + ".py")
            assert file.is_file(), f"{flag} {module}: there is no {file.relative_to(ROOT)} in this checkout"


def without_env(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """A command's leading `VAR=value` words (as a shell reads them) and the command itself."""
    env = {}
    while argv and re.match(r"^[A-Z_][A-Z0-9_]*=", argv[0]):
        name, value = argv[0].split("=", 1)
        env[name], argv = value, argv[1:]
    return env, argv


def gpus(value: str | None) -> set[str] | None:
    return None if value is None else {d for d in value.split(",") if d}


def test_engines_that_run_at_once_are_on_disjoint_gpus():
    """Review M5: the README's teacher (the judge until self-refinement ends) held GPUs 0-3 by
    default while training asked for all 8, and the self-refinement page launched the rollout and
    judge engines, which run at the same time, on the same GPUs."""
    from funreason.llm.launch import visible_devices

    walkthrough = [without_env(shlex.split(c)) for c in README]
    teacher = [env for env, argv in walkthrough if argv[:3] == ["vllm", "serve", "Qwen/QwQ-32B"]]
    assert teacher and gpus(teacher[0].get("CUDA_VISIBLE_DEVICES")), "the README's teacher names no GPUs"
    held = gpus(teacher[0]["CUDA_VISIBLE_DEVICES"])
    for env, argv in walkthrough:  # what trains or refines while the teacher is up
        if argv[:2] == ["accelerate", "launch"] or argv[:2] == ["funreason", "self-refine"]:
            mine = gpus(env.get("CUDA_VISIBLE_DEVICES"))
            assert mine and not mine & held, f"{' '.join(argv[:4])}… shares the teacher's GPUs {sorted(held)}"
            if "--num_processes" in argv:
                assert int(argv[argv.index("--num_processes") + 1]) == len(mine)
    both = [shlex.split(line) for _, line in COMMANDS if "--rollout-server" in line and "--judge-server" in line]
    assert both
    for argv in both:
        rollout = visible_devices(argv[argv.index("--rollout-server") + 1])
        judge = visible_devices(argv[argv.index("--judge-server") + 1])
        assert rollout and judge and not rollout & judge, f"rollout {rollout} and judge {judge} engines share GPUs"


@pytest.mark.parametrize("line", [c for _, c in COMMANDS], ids=[where for where, _ in COMMANDS])
def test_documented_command_parses(line):
    _, argv = without_env(shlex.split(line))
    if argv[0] == "make":
        assert len(argv) == 2 and argv[1] in MAKE_TARGETS, line
        return
    if argv[0] == "vllm":
        check_vllm(argv, line)
        return
    if argv[0] == "funreason":
        assert dry_run(argv[1:])
        return
    if argv[0] == ".venv/bin/python" and argv[1].startswith("bench/"):
        check_bench(argv, line)
        return
    if argv[0] in PLUMBING:  # one tool, its output to a file: no verb hides behind && or ;
        assert not {"&&", ";", "|", "funreason"} & set(argv) and argv[-2] == ">", line
        return
    assert argv[:2] == ["accelerate", "launch"], f"a documented command this test does not know: {line}"
    config = argv[argv.index("--config_file") + 1]
    assert (ROOT / config).exists(), config
    i = argv.index("-m")
    assert set(argv[2:i]) <= {"--config_file", config, "--num_processes", *map(str, range(1, 65))}, line
    assert argv[i + 1] == "funreason.cli", line
    assert dry_run(argv[i + 2 :]) == "train"


def test_dry_run_catches_wrong_commands():
    for bad in (["trian"], ["train", "--no-such-option", "1"], ["eval", "bfcl", "--limit", "many"], ["self-refine", "--data", "x"]):
        with pytest.raises(Exception):
            dry_run(bad)


def test_every_docs_page_is_in_the_site_navigation():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    pages = {page for entry in config["nav"] for page in entry.values()}
    assert pages == {path.name for path in DOCUMENTS[1:]}


def test_the_documentation_builds_in_strict_mode(tmp_path):
    try:
        import mkdocs  # noqa: F401
    except ImportError:
        pytest.fail("mkdocs is not installed: install the docs extra (pip install -e '.[docs]')")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", "mkdocs.yml", "-d", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8").count("SRMLLoss") > 0
