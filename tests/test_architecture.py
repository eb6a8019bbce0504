"""The package's layering, checked on the source: each module imports only modules on its own floor
or below (docs/architecture.md), and none reaches into another module's private names."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "funreason"

# the floors, lowest first: the record and call syntax; readers, writers and rendering; data, models,
# inference and training; the paper's stages that use them; self-refinement; the demo and the CLI
FLOORS = [
    {"errors", "schema", "calls", "fit", "config", "progress", "markdown", "plots"},
    {"formats", "chat"},
    {"runinfo", "data", "llm", "train", "models"},
    {"fcdr", "evaluate", "serve"},
    {"selfrefine"},
    {"demo", "cli", "__init__"},
]


def floor(module: str) -> int:
    top = (module.split(".") + ["__init__"])[1]
    return next(i for i, names in enumerate(FLOORS) if top in names)


def modules() -> dict[str, ast.Module]:
    found = {}
    for path in SRC.rglob("*.py"):
        name = ".".join(("funreason", *path.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")
        found[name] = ast.parse(path.read_text(encoding="utf-8"))
    return found


def imports(tree: ast.Module) -> list[tuple[str, list[str], int]]:
    """Every `from funreason… import …` of a module, at any depth (function-level imports count too)."""
    return [(n.module, [a.name for a in n.names], n.lineno) for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module and n.module.split(".")[0] == "funreason"]


def test_every_module_has_a_floor_and_imports_none_above_it():
    found = modules()
    assert len(found) > 60
    upward = [f"{name}:{line} imports {target} (floor {floor(target)} > {floor(name)})"
              for name, tree in found.items() for target, _, line in imports(tree) if floor(target) > floor(name)]
    assert not upward, "\n".join(upward)


def test_no_module_imports_another_modules_private_names():
    private = [f"{name}:{line} imports {target}.{n}" for name, tree in modules().items()
               for target, names, line in imports(tree) for n in names if n.startswith("_")]
    assert not private, "\n".join(private)


def test_the_checks_catch_what_they_look_for():
    upward = ast.parse("from funreason.cli import app\nfrom funreason.formats.jsonl import _private\n")
    (target, _, _), (_, names, _) = imports(upward)
    assert floor(target) > floor("funreason.schema") and names == ["_private"]
