"""Driving the generators that report progress (predictions, blockwise runs) to the end."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

__all__ = ["drive"]


def drive(generator: Generator, progress: Callable[[Any], object] | None = None):
    """Run ``generator`` to the end, passing each value it yields to ``progress``; return
    its return value (what ``yield from`` gives)."""
    while True:
        try:
            record = next(generator)
        except StopIteration as finished:
            return finished.value
        if progress is not None:
            progress(record)
