"""What every command-line tool shares: parsers built from the settings, clean error exits."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable

from napari_cellseg.config import add_config_arguments
from napari_cellseg.errors import CellsegError


def build_parser(prog: str, cls: type, description: str, **kwargs) -> argparse.ArgumentParser:
    """An argparse parser with one flag per field of the settings dataclass ``cls``."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_config_arguments(parser, cls, **kwargs)
    return parser


def report_errors(main: Callable[..., int]) -> Callable[..., int]:
    """Turn a user-caused error into a one-paragraph message and exit code 2 (no traceback)."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except CellsegError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return wrapper
