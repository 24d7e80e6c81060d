"""What the widgets run in napari thread workers, and the model they share.

The functions here run in a worker thread: they import torch (through the engine)
only when called, translate running out of memory into an error that says what to
change, and leave the GUI thread at least one CPU core.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import sys
import threading
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psygnal import Signal

from napari_cellseg.errors import CellsegError
from napari_cellseg.model_file import BUILTIN_MODELS

if TYPE_CHECKING:
    import numpy as np

    from napari_cellseg.config import TrainConfig
    from napari_cellseg.inference.predictor import Predictor, PredictProgress
    from napari_cellseg.segmentation.settings import SegmentationSettings
    from napari_cellseg.training.events import Event
    from napari_cellseg.training.inputs import TrainData

__all__ = [
    "CurrentModel",
    "current_model",
    "training_events",
    "predict_maps",
    "predict_measured",
    "predict_files",
    "predict_blockwise",
    "gui_threads",
    "start_worker",
    "report",
]


def gui_threads() -> int:
    """Torch threads for work started from napari: every core but one, which stays with the GUI."""
    return max(1, (os.cpu_count() or 2) - 1)


def _yield_cpu_to_gui() -> None:
    """Give the calling worker thread (and the torch threads it starts) the lowest priority.

    Linux sets nice values per thread, so the GUI thread and the canvas' rendering win
    the CPU whenever they need it; elsewhere this does nothing.
    """
    import torch

    torch.set_num_threads(gui_threads())
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def report(exc: BaseException) -> None:
    """Show an error as a napari notification: a user's mistake as its message, others in full."""
    from napari.utils.notifications import notification_manager, show_error

    if isinstance(exc, CellsegError):
        show_error(str(exc))
    else:
        notification_manager.receive_error(type(exc), exc, exc.__traceback__)


class _Notify(logging.Handler):
    """Shows the package's warnings (data the user should know about) as notifications."""

    def emit(self, record: logging.LogRecord) -> None:
        from napari.utils.notifications import show_warning

        show_warning(self.format(record))


def _notify_warnings() -> None:
    """Route the package's log warnings to napari notifications (set up once)."""
    logger = logging.getLogger("napari_cellseg")
    if not any(isinstance(h, _Notify) for h in logger.handlers):
        logger.addHandler(_Notify(logging.WARNING))


def start_worker(func: Callable, *args: Any, **connections: Callable):
    """Run ``func(*args)`` in a napari thread worker; errors become notifications.

    ``connections`` map worker signals (yielded, returned, finished, errored) to slots,
    connected before the thread starts.  (napari 0.9's workers do not relay errors
    themselves, and superqt's default re-raises them in the GUI thread.)
    """
    from napari.qt.threading import create_worker

    _notify_warnings()
    worker = create_worker(func, *args, _start_thread=False, _ignore_errors=True)
    worker.errored.connect(report)
    for signal, slot in connections.items():
        getattr(worker, signal).connect(slot)
    worker.start()
    return worker


class WorkerError(Exception):
    """A RuntimeError raised in a worker, re-raised as this so napari reports it.

    (superqt's generator worker takes a RuntimeError for a deleted worker and only warns.)
    """


@contextlib.contextmanager
def _reported_errors(fix: str) -> Iterator[None]:
    """Turn running out of memory into a CellsegError naming ``fix``; keep other errors visible."""
    from napari_cellseg.device import is_out_of_memory

    try:
        yield
    except (MemoryError, RuntimeError) as exc:
        if is_out_of_memory(exc):
            detail = f" ({str(exc).splitlines()[0]})" if str(exc) else ""
            raise CellsegError(f"Out of memory{detail}. {fix}") from None
        raise WorkerError(str(exc)) from exc


def training_events(
    cfg: TrainConfig, data: TrainData | None, stop: threading.Event
) -> Iterator[Event]:
    """Run the training engine, re-yielding its events (for a napari thread worker)."""
    from napari_cellseg.training.loop import train

    _yield_cpu_to_gui()
    with _reported_errors("Lower 'batch' or 'im_dim' (Advanced), or train on a GPU."):
        yield from train(cfg, data=data, stop=stop)


def predict_maps(
    yaml_path: str, image: np.ndarray, diameter: float = 0.0, tta: bool = False
) -> Generator[PredictProgress, None, tuple]:
    """Object and boundary maps of ``image`` with model ``yaml_path``, yielding tile progress.

    ``tta``: test-time augmentation (a copy of the cached predictor, sharing its network).
    """
    _yield_cpu_to_gui()
    with _reported_errors("Predict on a smaller image or lower 'tile_batch'."):
        return (yield from _predictor(yaml_path, tta).iter_predict(image, diameter))


def predict_measured(
    yaml_path: str, image: np.ndarray, diameter: float = 0.0, tta: bool = False
) -> Generator[PredictProgress, None, tuple]:
    """:func:`predict_maps` and, with ``tta``, the instances of the 8 symmetries, which the
    objects' confidence takes their agreement from (:mod:`napari_cellseg.analysis.
    confidence`; the progress bar runs again for them); else None."""
    from napari_cellseg.analysis.confidence import iter_augmented_instances

    maps = yield from predict_maps(yaml_path, image, diameter, tta)
    if not tta:
        return (*maps, None)
    with _reported_errors("Predict on a smaller image or lower 'tile_batch'."):
        predictor = _predictor(yaml_path, tta)
        return (*maps, (yield from iter_augmented_instances(predictor, image, diameter)))


def _predictor(yaml_path: str, tta: bool) -> Predictor:
    """A copy of the cached predictor of ``yaml_path`` (sharing its network) with ``tta``."""
    predictor = copy.copy(current_model.predictor(yaml_path))
    predictor.tta = tta
    return predictor


def predict_blockwise(
    yaml_path: str, image, output: str, tta: bool, options: dict
) -> Generator[tuple[int, int], None, object]:
    """Segment a large image block by block into the OME-Zarr ``output``, yielding (steps
    done, steps); ``options`` go to :func:`~napari_cellseg.bigimage.blockwise.iter_blockwise`.

    Quitting the worker stops after the block in progress; the finished blocks are kept.
    """
    from napari_cellseg.bigimage.blockwise import iter_blockwise

    _yield_cpu_to_gui()
    with _reported_errors("Lower the block size (the command line's --block_size)."):
        return (yield from iter_blockwise(image, _predictor(yaml_path, tta), output, **options))


def predict_files(
    yaml_path: str, folder: str, output: str, options: dict, segmentation: SegmentationSettings
) -> Generator[tuple[int, int], None, int]:
    """Predict every image of ``folder`` into files in ``output``, yielding (done, total).

    ``options``: PredictConfig settings (diameter, tta, ...); ``segmentation``: the
    settings to segment with.  Returns the number of images.
    """
    from napari_cellseg.config import PredictConfig
    from napari_cellseg.pipeline import ImageStarted, predict_folder

    _yield_cpu_to_gui()
    settings = PredictConfig(config=yaml_path, test_data=folder, output=output, **options)
    total = 0

    def count(record) -> None:
        nonlocal total
        if isinstance(record, ImageStarted):
            total = record.total

    with _reported_errors("Predict smaller images or lower 'tile_batch'."):
        results = predict_folder(settings, segmentation=segmentation, progress=count)
        for done, _result in enumerate(results, start=1):
            yield done, total
    return total


class CurrentModel:
    """The model the widgets work with: the one just trained or the one last picked.

    ``changed`` is emitted with the yaml path whenever it changes; loaded predictors
    are cached per file and modification time (loading happens in worker threads).
    """

    changed = Signal(str)

    def __init__(self) -> None:
        self.path = str(BUILTIN_MODELS["nuclei"])  # until the user picks or trains one
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, float], Predictor] = {}

    def set(self, path: str | Path) -> None:
        """Make ``path`` (a model yaml) the current model."""
        path = str(path)
        if path != self.path:
            self.path = path
            self.changed.emit(path)

    def connect_while_alive(self, qobject, slot: Callable[[str], Any]) -> None:
        """Call ``slot(path)`` on every change until the Qt object ``qobject`` is destroyed."""
        self.changed.connect(slot)
        qobject.destroyed.connect(lambda *_: self.changed.disconnect(slot, missing_ok=True))

    def predictor(self, yaml_path: str) -> Predictor:
        """The loaded model of ``yaml_path``, reloaded when the file changed."""
        from napari_cellseg.inference.predictor import load_model

        if not yaml_path:
            raise CellsegError("No model chosen: pick a model .yaml file or train one first.")
        key = (yaml_path, os.path.getmtime(yaml_path) if os.path.exists(yaml_path) else 0.0)
        with self._lock:
            if key not in self._cache:
                self._cache = {key: load_model(yaml_path)}
            return self._cache[key]


current_model = CurrentModel()
"""Shared by the training, predict and blob widgets (and the model yaml reader)."""
