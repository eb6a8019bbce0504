"""A model reference checked before anything loads: a local folder that is not there is refused at once.

Every verb that takes `--model` calls `check_model_ref` first, so a mistyped path is one line, not
a minute of the hub client retrying it as a model id.
"""

from __future__ import annotations

import json
from pathlib import Path


def check_model_ref(name: str) -> None:
    """Refuse, at once, a model reference that names a local folder which is not there (or holds no
    model), instead of handing it to the hub client, which retries a path for most of a minute. A
    reference is local when it exists, starts with `/`, `.` or `~`, or has more than one `/` (a hub
    id is `org/name`)."""
    path = Path(name).expanduser()
    local = path.exists() or name.startswith(("/", ".", "~")) or name.count("/") > 1 or name.endswith("/")
    if not local:
        return
    if not path.is_dir():
        raise FileNotFoundError(f"{name}: no such model folder (a hub id is written org/name)")
    if not ((path / "config.json").exists() or (path / "adapter_config.json").exists()):
        raise FileNotFoundError(f"{name}: not a model folder (no config.json); give a checkpoint folder such as a `funreason train` OUT/final")
    config = path / "config.json" if (path / "config.json").exists() else path / "adapter_config.json"
    try:
        ok = isinstance(json.loads(config.read_text(encoding="utf-8")), dict)
    except (OSError, ValueError):
        ok = False
    if not ok:
        raise FileNotFoundError(f"{name}: not a model folder ({config.name} is not a JSON model config)")
