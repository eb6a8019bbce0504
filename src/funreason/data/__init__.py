"""Where training data comes from: the bundled files, the open sources, the mix, segment stats, the generator.

`bundled(name)` is a file installed with the package (the sample, the demo's open rows);
`open_dir()` is the copy of the openly licensed function-calling sources the project carries
(`open/PROVENANCE.md` names each repository, commit and licence), so that `funreason data mix`
works on a fresh clone with no argument and nothing outside the checkout is read.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def bundled(name: str) -> Path:
    """A file bundled with the package (`data/bundled/NAME`), e.g. `bundled("sample_xlam.jsonl")`."""
    path = Path(str(resources.files("funreason").joinpath("data", "bundled", name)))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no bundled file {name!r}; the installed package is incomplete")
    return path


def open_dir() -> Path:
    """The carried copy of the open function-calling sources (one folder per source, with its LICENSE)."""
    return Path(str(resources.files("funreason").joinpath("data", "open")))
