"""Pass 1 of a blockwise run as tasks: here one by one, or on a dask.distributed cluster.

A :class:`BlockTask` holds everything a worker needs (the image's path, the model's,
the grid, the intensity range), so that it pickles; each process loads the model and
opens the image once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from napari_cellseg.bigimage.sources import LazyImage, open_lazy
from napari_cellseg.bigimage.zarr_output import task_arrays, writing
from napari_cellseg.data.normalize import scale_to_range
from napari_cellseg.errors import DataError
from napari_cellseg.segmentation.instances import instances

if TYPE_CHECKING:
    from napari_cellseg.bigimage.blockwise import BlockGrid

__all__ = [
    "BlockTask",
    "Cancelled",
    "predictor_key",
    "read_region",
    "register",
    "run_tasks",
    "worker_predictor",
]

CONNECT_TIMEOUT = "20s"
"""How long to try to reach a dask scheduler."""


def read_region(region) -> np.ndarray:
    """A region of a lazy image read here, in this thread (in a dask worker too: the
    blocks are the tasks, not the reads)."""
    if hasattr(region, "compute"):
        region = region.compute(scheduler="synchronous")
    return np.asarray(region)


class Cancelled(DataError):
    def __init__(self, path: Path) -> None:
        super().__init__(
            f"Stopped; '{path}' keeps the finished blocks: run the same command again to go on."
        )


_PREDICTORS: dict[tuple, object] = {}
"""The predictors this process loaded for block tasks, by (model, device, tiling, tta)."""

_IMAGES: dict[tuple, LazyImage] = {}
"""The images this process opened for block tasks, by (path, channel)."""


def register(predictor, image: LazyImage | None = None) -> None:
    """Let this process's tasks use ``predictor`` and ``image`` (already loaded)."""
    _PREDICTORS[predictor_key(predictor)] = predictor
    if image is not None:
        _IMAGES[(str(image.path), image.channel)] = image


def predictor_key(predictor) -> tuple:
    return (
        str(predictor.model_file.path),
        str(predictor.device),
        predictor.tile,
        predictor.overlap,
        predictor.tile_batch,
        predictor.tta,
    )


def worker_predictor(key: tuple):
    """The predictor of ``key``, loaded once per process.  A dask worker loads its own, on
    its own best device (the client's may not exist there)."""
    if key not in _PREDICTORS:
        from napari_cellseg.inference.predictor import load_model

        model, device, tile, overlap, batch, tta = key
        threads = _worker_threads()
        _PREDICTORS[key] = load_model(
            model,
            "auto" if threads else device,
            tile_size=tile,
            tile_overlap=overlap,
            tile_batch=batch,
            tta=tta,
        )
        if threads:
            _share_cores(threads)
    return _PREDICTORS[key]


def _worker_threads() -> int:
    """The threads of the dask worker this runs in; 0 outside one."""
    try:
        from distributed import get_worker

        return get_worker().state.nthreads
    except (ImportError, ValueError):
        return 0


def _share_cores(threads: int) -> None:
    """In a dask worker of ``threads`` threads, give each thread its share of the cores."""
    import torch

    cores = int(os.environ.get("OMP_NUM_THREADS", 0)) or (os.cpu_count() or 1) // threads
    torch.set_num_threads(max(1, cores))


@dataclass(frozen=True)
class BlockTask:
    """Pass 1 of one block, as a dask worker runs it: everything it needs, picklable.

    Block ``number`` is block ``number % len(grid)`` of plane ``number // len(grid)``
    (one plane for a 2D image); ``low`` and ``high`` hold each plane's intensity range.
    """

    source: tuple  # (path, channel) of the image
    predictor: tuple
    settings: dict
    grid: BlockGrid
    low: tuple[float, ...]
    high: tuple[float, ...]
    diameter: float
    output: str

    def __call__(self, number: int) -> int:
        """Predict, segment and write block ``number``; returns it."""
        return self.write(number, *self.segment(number))

    def segment(self, number: int) -> tuple[np.ndarray, np.ndarray]:
        """The labels and maps (objects, boundaries) of block ``number``'s window."""
        predictor = worker_predictor(self.predictor)
        if self.source not in _IMAGES:
            _IMAGES[self.source] = open_lazy(*self.source)
        z, index = divmod(number, len(self.grid))
        window = read_region(_IMAGES[self.source].plane(z)[self.grid.window(index)])
        pixels = scale_to_range(window, self.low[z], self.high[z])
        channels = predictor.config.channels
        objects, boundaries = predictor.predict_normalised(
            np.repeat(pixels[np.newaxis], channels, axis=0), self.diameter
        )
        return instances(objects, boundaries, **self.settings), np.stack([objects, boundaries])

    def write(self, number: int, labels: np.ndarray, maps: np.ndarray) -> int:
        """Write block ``number``'s core and its view of its neighbours; returns it."""
        z, index = divmod(number, len(self.grid))
        with writing(Path(self.output)):
            arrays = task_arrays(Path(self.output), z)
            _write_pass1(arrays, self.grid, index, labels, maps, number)
        return number


def run_tasks(task, todo: list, scheduler: str, cancel) -> Iterator:
    """Run ``task`` on each item of ``todo`` here, in order, or on the dask cluster at
    ``scheduler``, as they finish; yield each result.  Once ``cancel`` is set it stops
    (the cluster's tasks are cancelled) without error: the caller says what was kept."""
    if not scheduler:
        yield from _run_here(task, todo, cancel)
        return
    from distributed import Client, as_completed

    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT)
    except OSError as exc:
        raise DataError(
            f"Cannot reach the dask scheduler '{scheduler}' ({exc}): start it with "
            "'dask scheduler' and workers with 'dask worker <address>', or leave --scheduler "
            "out to predict here."
        ) from None
    with client:
        futures = client.map(task, todo, pure=False)
        for future in as_completed(futures):
            result = future.result()
            future.release()  # the client holds one result at a time
            yield result
            if cancel is not None and cancel.is_set():
                client.cancel(futures)
                return


def _run_here(task, todo: list, cancel) -> Iterator:
    """Run ``task`` on each item here; a task that can (a :class:`BlockTask`) writes one
    block while the next is predicted."""
    from concurrent.futures import ThreadPoolExecutor

    if not isinstance(task, BlockTask):
        for item in todo:
            if cancel is not None and cancel.is_set():
                return
            yield task(item)
        return
    with ThreadPoolExecutor(1, thread_name_prefix="cellseg-write") as writer:
        pending = None
        for item in todo:
            if cancel is not None and cancel.is_set():
                break
            result = task.segment(item)
            if pending is not None:
                yield pending.result()
            pending = writer.submit(task.write, item, *result)
        if pending is not None:
            yield pending.result()


def _write_pass1(out, grid: BlockGrid, index: int, labels, maps, number: int) -> None:
    """Write a block's core (maps, labels numbered apart from every other block's, by its
    ``number``) and its view of its neighbours in its plane."""
    core, window = grid.core(index), grid.window(index)
    inner = tuple(
        slice(c.start - w.start, c.stop - w.start) for c, w in zip(core, window, strict=True)
    )
    # a block has fewer labels than its window has pixels, and no window more than this
    offset = np.uint64(number) * np.uint64((grid.block + grid.before + grid.after) ** 2)
    numbered = np.where(labels > 0, labels.astype(np.uint64) + offset, np.uint64(0))
    out.maps[(slice(None), *core)] = maps[(slice(None), *inner)]
    out.provisional[core] = numbered[inner]
    rows, cols = grid.counts
    row, col = divmod(index, cols)
    strip = max(grid.after, 1)
    (y0, y1), (x0, x1) = [(s.start, s.stop) for s in core]
    own = np.zeros(int(labels.max()) + 1, bool)  # the labels of objects in the core
    own[labels[inner]] = True
    own[0] = False
    seen = np.where(own[labels], numbered, np.uint64(0))  # and their pixels in the halo
    if col < cols - 1:  # the right neighbour's first columns
        width = min(grid.after, window[1].stop - x1)
        right = slice(inner[1].stop, inner[1].stop + width)
        start = (col + 1) * strip
        out.seen_from_left[y0:y1, start : start + width] = seen[inner[0], right]
    if row < rows - 1:  # the lower neighbour's first rows
        height = min(grid.after, window[0].stop - y1)
        below = slice(inner[0].stop, inner[0].stop + height)
        start = (row + 1) * strip
        out.seen_from_above[start : start + height, x0:x1] = seen[below, inner[1]]
