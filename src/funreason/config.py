"""Verb configs from YAML and the command line: one loader, the values typed as the command line types them.

Invariant: `load_config(Config, path, given)` returns a `Config` whose every field holds a value of
the field's declared type, or raises `ValueError` naming the file and the key. The file's values
come first, the options given on the command line (`given`, only those the user typed) override
them, and every default is the dataclass's own, written once. YAML reads `2e-5` as the string
"2e-5" (YAML 1.1 wants a dot in a float), so numbers written as strings are parsed the way the
command line parses them; anything else of the wrong type (a list for an int, "yes please" for a
bool, an unknown key, also in a nested section such as refine's `teacher:`) is refused before
any model or data is loaded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import types
import typing
from dataclasses import fields
from pathlib import Path
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}
_NUMBERS = {int: "a whole number", float: "a number"}


def _coerce(kind: Any, value: Any, source: str = "") -> Any:
    """`value` as `kind` (int, float, bool, str, one of them `| None`, a list or tuple of them, or a
    nested config dataclass); ValueError when it is not one."""
    args = typing.get_args(kind)
    if dataclasses.is_dataclass(kind):
        if isinstance(value, kind):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"expected a section of settings, got {value!r}")
        return from_mapping(kind, value, source)
    if typing.get_origin(kind) in (list, tuple):
        if isinstance(value, str) and typing.get_origin(kind) is list:
            value = [value]  # one endpoint, one file: a list of one
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"expected a list, got {value!r}")
        if typing.get_origin(kind) is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ValueError(f"expected {len(args)} values, got {value!r}")
            return tuple(_coerce(a, v, source) for a, v in zip(args, value))
        return typing.get_origin(kind)(_coerce(args[0], v, source) for v in value) if args else list(value)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _coerce(inner[0], value, source)
        raise ValueError(f"cannot read a value of type {kind}")
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"expected true or false, got {value!r}")
    if kind in _NUMBERS:
        # an int is a valid float, a float is not a valid int; a bool is neither
        number = None
        if isinstance(value, (float, int)) and not isinstance(value, bool) and (kind is float or isinstance(value, int)):
            number = kind(value)
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                number = kind(value.strip())
        if number is None:
            raise ValueError(f"expected {_NUMBERS[kind]}, got {value!r}")
        if not math.isfinite(number):  # `--lr inf` would train a model of NaNs and exit 0
            raise ValueError(f"expected a finite number, got {value!r}")
        return number
    if kind is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"expected text, got {value!r}")
    if kind is Any or kind is dict or typing.get_origin(kind) is dict:
        if typing.get_origin(kind) is dict and not isinstance(value, dict):
            raise ValueError(f"expected a mapping, got {value!r}")
        return value
    raise ValueError(f"cannot read a value of type {kind}")


def _default(f: dataclasses.Field) -> Any:
    """Field `f`'s default value (its factory called), or None when it has none."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def from_mapping(cls: type[T], data: dict[str, Any], source: str, base: T | None = None) -> T:
    """`cls(**data)` with unknown keys refused and each value typed as its field; errors name `source`.
    With `base`, the settings replace those of `base` instead: a nested section (self-refine's
    `train:`) starts from its field's own default, not from its class's, so setting one key of it
    keeps the others the verb chose (a round's learning rate, say)."""
    hints = typing.get_type_hints(cls)
    by_name = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(by_name))
    if unknown:
        raise ValueError(f"{source}: unknown settings {', '.join(unknown)} (known: {', '.join(sorted(by_name))})")
    typed = {}
    for key, value in data.items():
        try:
            kind = hints[key]
            if dataclasses.is_dataclass(kind) and isinstance(value, dict):
                typed[key] = from_mapping(kind, value, f"{source}: {key}", base=_default(by_name[key]))
            else:
                typed[key] = _coerce(kind, value, f"{source}: {key}")
        except ValueError as e:
            if str(e).startswith(f"{source}: {key}"):  # a nested section named itself already
                raise
            raise ValueError(f"{source}: {key}: {e}") from None
    return dataclasses.replace(base, **typed) if base is not None else cls(**typed)  # type: ignore[type-var]


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping of settings in the YAML file `path`; ValueError naming the file otherwise. A key
    given twice in one mapping is refused with its line: YAML would keep the last one silently."""
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if isinstance(key, (str, int, float, bool)) and key in seen:
                    raise yaml.YAMLError(f"line {key_node.start_mark.line + 1}: {key!r} is given twice")
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    try:
        data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=Loader) or {}
    except OSError as e:
        raise ValueError(f"{path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start})") from None
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def load_config(cls: type[T], path: str | Path | None, given: dict[str, Any]) -> T:
    """`cls` from the YAML file `path` (if any), overridden by `given`: the settings given on the
    command line, by field name; a dotted name (`teacher.endpoints`) sets a nested section's field."""
    data = read_yaml(path) if path else {}
    for key, value in given.items():
        *parents, leaf = key.split(".")
        section = data
        for p in parents:
            section = section.setdefault(p, {})
            if not isinstance(section, dict):
                raise ValueError(f"{path}: {p}: expected a section of settings")
        section[leaf] = value
    return from_mapping(cls, data, str(path) if path else "the command line")


def cli(help: str, *flags: str, envvar: str | None = None, csv: bool = False, argument: bool = False,
        parse: Any = None, required: bool = False) -> dict[str, Any]:
    """A config field's command-line form, as `field(metadata=cli(...))`: its help, its flags
    (default `--field-name`), an environment variable, `csv` for a list given as `a,b,c`,
    `argument` for a positional one, `parse` to turn the typed text into the field's value,
    `required` for a setting the verb cannot run without (given here or in the YAML file; the
    config's `validate` refuses its absence). Fields without it are set in the YAML file only."""
    return {"cli": {"help": help, "flags": flags, "envvar": envvar, "csv": csv, "argument": argument, "parse": parse, "required": required}}


# --- the command line ---------------------------------------------------------------------------

CONFIG_HELP = "A YAML file with any of the settings below (by their field names); options given here override it."


def settings(cls: type[T], path: str | Path | None, given: dict[str, Any]) -> T:
    """`load_config(...)` validated: the config a verb runs with."""
    return load_config(cls, path, given).validate()  # type: ignore[attr-defined]


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _parameter(key: str, f: Any, owner: Any, flags: tuple[str, ...] = (), help: str | None = None,
               envvar: str | None = None) -> tuple[Any, dict]:
    """The Typer parameter of config field `f` (`key`: its dotted path), None unless given; `owner`
    is a default instance of the field's dataclass, whose value the help shows as the default."""
    import inspect

    import typer

    meta = f.metadata["cli"]
    kind = typing.get_type_hints(type(owner))[f.name]
    inner = [a for a in typing.get_args(kind) if a is not type(None)] if typing.get_origin(kind) in (typing.Union, types.UnionType) else [kind]
    kind = inner[0]
    text = help or meta["help"]
    default = getattr(owner, f.name)
    shown = ("," if meta["csv"] or isinstance(default, list) else "/").join(map(str, default)) if isinstance(default, (list, tuple)) else default
    if shown not in (None, "", []) and not meta["argument"]:
        text += f" (default: {shown})"
    if meta["required"]:
        text += " (required, here or in --config)"
    flags = flags or meta["flags"] or ("--" + f.name.replace("_", "-"),)
    if kind is bool and not meta["argument"]:
        flags = tuple(fl if "/" in fl or not fl.startswith("--") else f"{fl}/--no-{fl[2:]}" for fl in flags)
    if typing.get_origin(kind) is list and not meta["csv"]:
        annotation: Any = typing.Optional[list[str]]
    else:
        annotation = typing.Optional[str] if meta["csv"] or meta["parse"] or typing.get_origin(kind) else typing.Optional[kind]
    if meta["argument"]:
        spec = typer.Argument(None, help=text, metavar=f.name.upper(), show_default=False)  # the config's validate() says when it is missing
    else:
        spec = typer.Option(None, *flags, help=text, envvar=envvar or meta["envvar"], show_default=False)
    return inspect.Parameter(key.replace(".", "__"), inspect.Parameter.KEYWORD_ONLY, default=spec, annotation=annotation), meta


def command(group: Any, name: str, cls: type, *, fail: Callable[[str], Any], nested: dict[str, dict[str, tuple]] | None = None) -> Any:
    """Register `fn(cfg, **extra)` as command `name`: its options are `cls`'s fields marked with
    `config.cli`, the fields of its nested sections named in `nested` (field → (flags, help[, envvar])), and
    `--config FILE.yaml`; each is None unless given, so the file and the dataclass defaults fill the
    rest. `fn` gets the validated config and its own extra options; a bad setting goes to `fail`
    (one line) before anything runs."""
    import inspect

    import typer

    def wrap(fn: Any) -> Any:
        params, metas, owner = [], {}, cls()  # the instance: nested sections' defaults (a round's training) are its values
        for f in fields(cls):
            if "cli" in f.metadata:
                p, metas[f.name] = _parameter(f.name, f, owner)
                params.append(p)
        for section, chosen in (nested or {}).items():
            sub = getattr(owner, section)
            for f in fields(sub):
                if f.name in chosen:
                    p, metas[f"{section}__{f.name}"] = _parameter(f"{section}.{f.name}", f, sub, *chosen[f.name])
                    params.append(p)
        hints = typing.get_type_hints(fn)  # the verb's own options, with their annotations resolved (not strings)
        extra = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints.get(p.name, p.annotation))
                 for p in list(inspect.signature(fn).parameters.values())[1:]]
        config = inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=typer.Option(None, "--config", help=CONFIG_HELP),
                                   annotation=typing.Optional[Path])

        def given(kw: dict[str, Any]) -> dict[str, Any]:
            """The settings typed on the command line (popped from `kw`), by dotted field name."""
            out = {}
            for key, meta in metas.items():
                value = kw.pop(key)
                if value is not None and value != []:
                    out[key.replace("__", ".")] = _csv(value) if meta["csv"] else meta["parse"](value) if meta["parse"] else value
            return out

        def run(**kw: Any) -> Any:
            try:
                cfg = settings(cls, kw.pop("config"), given(kw))
            except (ValueError, OSError) as e:
                return fail(str(e))
            return fn(cfg, **kw)

        required = [key.replace("__", ".") for key, meta in metas.items() if meta["required"]]
        run.config = (cls, given, required)  # type: ignore[attr-defined]  # for a dry run: the values typed, unvalidated

        positional_first = sorted(params, key=lambda p: p.default.__class__.__name__ != "ArgumentInfo")
        run.__signature__ = inspect.Signature(positional_first + [config] + extra)  # type: ignore[attr-defined]
        run.__doc__ = fn.__doc__
        group.command(name)(run)
        return fn

    return wrap

