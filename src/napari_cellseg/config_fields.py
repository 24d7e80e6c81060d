"""The fields of the settings dataclasses: help, choices, range; and their check.

Each field of :mod:`napari_cellseg.config` is made by :func:`setting`, which keeps its
help text, its allowed values and its widget section in the field's metadata;
:func:`validate` checks every field against them when a settings object is made, so a
value is refused with its name, its range and its meaning wherever it comes from (a
flag, a YAML file, a dock, the Python API).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import field
from typing import Any

from napari_cellseg.errors import ConfigError

__all__ = ["setting", "validate", "base_type"]


def setting(
    default: Any,
    help: str,
    *,
    choices: tuple | None = None,
    advanced: bool = False,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    below: float | None = None,
):
    """A dataclass field carrying its help text, allowed values (``choices``, or a range:
    ``minimum``/``maximum`` inclusive, ``above``/``below`` exclusive) and widget section."""
    bounds = {"minimum": minimum, "above": above, "maximum": maximum, "below": below}
    metadata = {"help": help, "choices": choices, "advanced": advanced}
    metadata["bounds"] = {k: v for k, v in bounds.items() if v is not None}
    return field(default=default, metadata=metadata)


def validate(cfg: Any) -> None:
    """Check every field of a settings dataclass: its type, its choices, its range.

    Raises
    ------
    ConfigError
        Naming the setting, its value, what it may be and what it means.
    """
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        base, nullable = base_type(hints[f.name])
        if value is None and nullable:
            continue
        _check_type(f.name, value, base)
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(
                f"Setting '{f.name}' is {value!r}; choose one of {', '.join(map(str, choices))}."
            )
        bounds = f.metadata.get("bounds") or {}
        if bounds and not _within(value, bounds):
            raise ConfigError(
                f"Setting '{f.name}' is {value!r}; give {_range_text(bounds, base)} "
                f"({f.metadata['help']})."
            )


def base_type(hint: Any) -> tuple[type, bool]:
    """The base type of an annotation and whether it admits None."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(a for a in args if a is not type(None)), type(None) in args
    return hint, False


_KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def _check_type(name: str, value: Any, base: type) -> None:
    if base is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value)
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, base)
    if not ok:
        raise ConfigError(f"Setting '{name}' is {value!r}; it must be {_KINDS[base]}.")


def _within(value: float, bounds: dict) -> bool:
    checks = {
        "minimum": lambda b: value >= b,
        "above": lambda b: value > b,
        "maximum": lambda b: value <= b,
        "below": lambda b: value < b,
    }
    return all(checks[kind](bound) for kind, bound in bounds.items())


def _range_text(bounds: dict, base: type) -> str:
    """``a whole number of 1 or more``, ``a number from 0 to 1``, ``a number above 0``, ..."""
    parts = []
    low = bounds.get("minimum", bounds.get("above"))
    high = bounds.get("maximum", bounds.get("below"))
    if "minimum" in bounds and high is not None:
        parts.append(f"from {low:g}")
    elif "minimum" in bounds:
        parts.append(f"of {low:g} or more")
    elif "above" in bounds:
        parts.append(f"above {low:g}")
    if "maximum" in bounds:
        parts.append(f"{'to' if 'minimum' in bounds else 'up to'} {high:g}")
    elif "below" in bounds:
        parts.append(f"below {high:g}" if "minimum" not in bounds else f"to below {high:g}")
    return f"{_KINDS[base]} {' '.join(parts)}"
