"""Settings in and out: YAML files and command-line flags, built from the settings dataclasses.

Every flag of ``cellseg train|predict|tune`` and every key of a settings file is a field of
:class:`~napari_cellseg.config.TrainConfig`, :class:`~napari_cellseg.config.PredictConfig`
or :class:`~napari_cellseg.config.TuneConfig`; values are converted and checked here, so a
bad value names its setting and source.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import typing
from collections.abc import Collection
from pathlib import Path
from typing import Any, TypeVar

import yaml

from napari_cellseg.config import PredictConfig, TrainConfig, TuneConfig
from napari_cellseg.config_fields import base_type
from napari_cellseg.errors import ConfigError
from napari_cellseg.io_utils import atomic_write_text

__all__ = [
    "save_yaml",
    "read_yaml_dict",
    "load_yaml",
    "from_dict",
    "add_config_arguments",
    "config_from_args",
]

C = TypeVar("C")


# --- YAML ----------------------------------------------------------------------------------


def save_yaml(cfg: Any, path: str | Path, record: dict | None = None) -> Path:
    """Write every field of ``cfg`` atomically, then a ``record`` mapping of run facts.

    A settings file; a model's yaml is written by :func:`napari_cellseg.model_file.write_model`.
    """
    data = dataclasses.asdict(cfg)
    if record:
        data["record"] = record
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))
    return Path(path)


def read_yaml_dict(path: str | Path) -> dict:
    """Read a YAML mapping with an error naming the file when it is absent or malformed."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Settings file '{path}' does not exist; check the path.")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        reason = "it is not text" if isinstance(exc, UnicodeDecodeError) else exc
        raise ConfigError(
            f"Settings file '{path}' is not valid YAML ({reason}); fix or re-create it."
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"Settings file '{path}' must hold a mapping of setting: value.")
    return data


def load_yaml(path: str | Path, cls: type[C] = TrainConfig, *, strict: bool = False) -> C:
    """Read a settings file (or a model's yaml) into ``cls``.

    Keys ``cls`` does not know are errors when ``strict`` (a hand-written settings file,
    where a typo must not pass silently; a model's record blocks are allowed) and are
    skipped otherwise.
    """
    from napari_cellseg.model_file import MODEL_BLOCKS

    data = read_yaml_dict(path)
    return from_dict(cls, data, source=str(path), strict=strict, ignore=MODEL_BLOCKS)


def from_dict(
    cls: type[C],
    data: dict,
    *,
    source: str = "settings",
    strict: bool = False,
    ignore: Collection[str] = (),
) -> C:
    """Build ``cls`` from a mapping, converting and checking each value.

    Keys ``cls`` does not know (except those in ``ignore``) are errors when ``strict``
    (a hand-written settings file, where a typo must not pass silently) and are skipped
    otherwise.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key in ignore:
            continue
        if key not in fields:
            if strict:
                close = difflib.get_close_matches(key, fields, n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise ConfigError(f"Unknown setting '{key}' in {source}.{hint}")
            continue
        kwargs[key] = _convert(fields[key], value, source)
    return cls(**kwargs)


def _field_type(f: dataclasses.Field) -> tuple[type, bool]:
    """The base type of a field and whether it may be None."""
    return base_type(typing.get_type_hints(_owner_of(f))[f.name])


def _owner_of(f: dataclasses.Field) -> type:
    for cls in (TrainConfig, PredictConfig, TuneConfig):
        if f.name in cls.__dataclass_fields__ and cls.__dataclass_fields__[f.name] is f:
            return cls
    raise KeyError(f.name)


def _convert(f: dataclasses.Field, value: Any, source: str) -> Any:
    base, nullable = _field_type(f)
    if value is None or (nullable and isinstance(value, str) and value.lower() == "none"):
        if nullable:
            return None
        if base is str:
            return ""
        raise ConfigError(f"Setting '{f.name}' in {source} may not be empty.")
    try:
        if base is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
                    raise ValueError(value)
                return value.lower() in ("true", "yes", "1")
            return bool(value)
        if base is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return base(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"Setting '{f.name}' in {source} is {value!r}; it must be {base.__name__}."
        ) from None


# --- command line ---------------------------------------------------------------------------


def add_config_arguments(
    parser: argparse.ArgumentParser, cls: type, *, skip: tuple[str, ...] = ()
) -> None:
    """Add one ``--name`` flag per field of ``cls``, its help text and default from the field.

    Defaults are suppressed in the parsed namespace, so :func:`config_from_args` can tell
    flags given on the command line from those left out.
    """
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        base, nullable = _field_type(f)
        help_text = f"{f.metadata['help']} (default: {f.default!r})".replace("%", "%%")
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": help_text}
        if base is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = base.__name__.upper()
            kwargs["type"] = str if nullable else base
            if f.metadata.get("choices"):
                kwargs["choices"] = f.metadata["choices"]
        flag = "--" + f.name
        aliases = [flag.replace("_", "-")] if "_" in f.name else []
        parser.add_argument(flag, *aliases, dest=f.name, **kwargs)


def config_from_args(cls: type[C], args: argparse.Namespace, *, base: dict | None = None) -> C:
    """Merge defaults, then ``args.args_load_path`` (if any) or ``base``, then the given flags."""
    names = {f.name for f in dataclasses.fields(cls)}
    given = {k: v for k, v in vars(args).items() if k in names}
    data = dict(base or {})
    load_path = given.get("args_load_path")
    ignore: tuple[str, ...] = ()
    if load_path:  # a settings file or a model's yaml, whose record blocks are no settings
        from napari_cellseg.model_file import MODEL_BLOCKS, model_yaml

        data.update(read_yaml_dict(model_yaml(load_path)))
        ignore = MODEL_BLOCKS
    data.update(given)
    source = f"'{load_path}' or the command line" if load_path else "the command line"
    return from_dict(cls, data, source=source, strict=bool(load_path), ignore=ignore)
