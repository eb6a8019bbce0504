"""Verb configs from YAML: one loader, the values typed as the command line types them.

Invariant: `load_yaml(Config, path)` returns a `Config` whose every field holds a value of the
field's declared type, or raises `ValueError` naming the file and the key. YAML reads `2e-5` as
the string "2e-5" (YAML 1.1 wants a dot in a float), so numbers written as strings are parsed
the way the command line parses them; anything else of the wrong type (a list for an int, "yes
please" for a bool, an unknown key) is refused before any model or data is loaded.
"""

from __future__ import annotations

import types
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}
_NUMBERS = {int: "a whole number", float: "a number"}


def _coerce(kind: Any, value: Any) -> Any:
    """`value` as `kind` (int, float, bool, str, or one of them `| None`); ValueError when it is not one."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _coerce(inner[0], value)
        raise ValueError(f"cannot read a value of type {kind}")
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"expected true or false, got {value!r}")
    if kind in _NUMBERS:
        # an int is a valid float, a float is not a valid int; a bool is neither
        if isinstance(value, (float, int)) and not isinstance(value, bool) and (kind is float or isinstance(value, int)):
            return kind(value)
        if isinstance(value, str):
            try:
                return kind(value.strip())
            except ValueError:
                pass
        raise ValueError(f"expected {_NUMBERS[kind]}, got {value!r}")
    if kind is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"expected text, got {value!r}")
    return value  # other field types (lists, nested configs) are the caller's to check


def from_mapping(cls: type[T], data: dict[str, Any], source: str) -> T:
    """`cls(**data)` with unknown keys refused and each value typed as its field; errors name `source`."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{source}: unknown settings {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    typed = {}
    for key, value in data.items():
        try:
            typed[key] = _coerce(hints[key], value)
        except ValueError as e:
            raise ValueError(f"{source}: {key}: {e}") from None
    return cls(**typed)


def load_yaml(cls: type[T], path: str | Path) -> T:
    """The config of `cls` written in the YAML file `path` (a mapping of its field names)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return from_mapping(cls, data, str(path))
