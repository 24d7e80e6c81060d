"""What every command-line tool shares: parsers built from the settings, clean error exits."""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator

from napari_cellseg.config_io import add_config_arguments
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
        _show_notes()
        try:
            return main(*args, **kwargs)
        except CellsegError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return wrapper


class _Stderr(logging.Handler):
    """Writes each record to the ``sys.stderr`` of the moment (pytest swaps it per test)."""

    def emit(self, record: logging.LogRecord) -> None:
        _note(self.format(record))


def _note(text: str) -> None:
    """A line on the stderr of the moment, above any progress bar."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stderr)


def _show_notes() -> None:
    """Print the package's warnings (and worse) as ``note: ...`` lines on stderr, once."""
    logger = logging.getLogger("napari_cellseg")
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        handler = _Stderr(logging.WARNING)
        handler.setFormatter(logging.Formatter("note: %(message)s"))
        logger.addHandler(handler)


class ProgressBars:
    """tqdm bars on stderr for the pipeline's progress records: files, and tiles of each file.

    Pass :meth:`update` as the ``progress`` callback of
    :func:`napari_cellseg.pipeline.predict_folder`; use as a context manager.
    """

    def __init__(self, desc: str) -> None:
        self.desc, self.files, self.tiles = desc, None, None

    def __enter__(self) -> ProgressBars:
        return self

    def __exit__(self, *exc) -> None:
        for bar in (self.tiles, self.files):
            if bar is not None:
                bar.close()

    def update(self, record) -> None:
        """Advance the bars by one record (ImageStarted or PredictProgress)."""
        from tqdm import tqdm

        from napari_cellseg.pipeline import ImageStarted

        if isinstance(record, ImageStarted):
            if self.tiles is not None:
                self.tiles.close()
            if self.files is None:
                self.files = tqdm(total=record.total, unit="image", desc=self.desc, file=sys.stderr)
            else:
                self.files.update()
            self.tiles = tqdm(unit="tile", desc=record.name[:24], leave=False, file=sys.stderr)
        else:
            self.tiles.total = record.total  # the diameter estimate may add passes
            self.tiles.update(record.done - self.tiles.n)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set ``stop`` on SIGTERM (what schedulers such as SLURM send before a kill) and on
    the first Ctrl-C, so a run finishes its batch and saves; a second Ctrl-C interrupts."""

    def ask_to_stop(signum, _frame) -> None:
        if signum == signal.SIGINT and stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        name = signal.Signals(signum).name
        print(f"{name}: stopping after the current batch (Ctrl-C again: at once)", file=sys.stderr)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, ask_to_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
