"""Images larger than memory: predicted and segmented block by block, seamless instances.

1. The intensity range (1st..99.8th percentile) is computed once for the whole image,
   on a strided sample, and the objects' diameter once on its most crowded region
   (:mod:`~napari_cellseg.bigimage.statistics`): every block is scaled alike, as the
   in-memory path scales an image.
2. **Pass 1**, each block with a halo around it: predicted, segmented with the model's
   settings, and its core written to the output (maps; labels numbered apart from every
   other block's).  It also writes what it saw of its right and lower neighbours' edges
   (its halo there, in its own numbers).
3. **Merge**: an object that crosses a block face is seen by both blocks in the strip
   behind the face (as wide as the halo after a block).  Two labels that cover the same
   strip pixels (at least half of the smaller one's pixels there) are one object
   (union-find).
4. **Pass 2**: every block's labels are renumbered: one global label per object, 2, 3,
   ... as annotations are numbered.
5. **Pyramid**: levels of half resolution, down to a side of 1024, so that napari (and
   Fiji/MoBIE, QuPath) show the result without reading it whole.

Each pass records the blocks it finished in the output, so an interrupted run resumes
where it stopped; the completion marker is written last.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_cellseg.bigimage.sources import LazyImage
from napari_cellseg.bigimage.statistics import estimate_diameter, strided_sample
from napari_cellseg.bigimage.tasks import (
    BlockTask,
    Cancelled,
    predictor_key,
    read_region,
    register,
    run_tasks,
)
from napari_cellseg.bigimage.zarr_output import OutputZarr, plane_arrays, writing
from napari_cellseg.generators import drive
from napari_cellseg.segmentation.settings import SegmentationSettings

__all__ = [
    "BlockGrid",
    "BlockwiseResult",
    "iter_blockwise",
    "measure_result",
    "read_region",
    "segment_blockwise",
]

FIRST_LABEL = 2
"""Objects are numbered from 2, as annotations (1 marks blobs)."""


@dataclass(frozen=True)
class BlockGrid:
    """Blocks of ``block`` pixels over an image of ``shape``, each read with ``before``
    more pixels before it (above, left) and ``after`` more after it."""

    shape: tuple[int, int]
    block: int
    before: int
    after: int

    @property
    def counts(self) -> tuple[int, int]:
        return tuple(math.ceil(s / self.block) for s in self.shape)

    def __len__(self) -> int:
        rows, cols = self.counts
        return rows * cols

    def core(self, index: int) -> tuple[slice, slice]:
        """The pixels block ``index`` (raster order) owns."""
        row, col = divmod(index, self.counts[1])
        return tuple(
            slice(i * self.block, min((i + 1) * self.block, size))
            for i, size in zip((row, col), self.shape, strict=True)
        )

    def window(self, index: int) -> tuple[slice, slice]:
        """The pixels block ``index`` is predicted on: its core and the halo around it."""
        return tuple(
            slice(max(s.start - self.before, 0), min(s.stop + self.after, size))
            for s, size in zip(self.core(index), self.shape, strict=True)
        )


def aligned_grid(shape, block: int, halo: int, predictor, diameter: float, reach: int) -> BlockGrid:
    """The blocks whose network tiles fall where the whole image's would.

    The predictor tiles each window from its top-left corner, ``step`` pixels apart,
    the last tile flush with the window's end.  At the model's own scale the block side
    (rounded up so that the blocks along the longer side are about equal: no thin last
    block) and the halo before a block (at least ``halo``) are rounded to multiples of ``step``,
    and the halo after it to ``tile`` plus a multiple of ``step``, the least that
    covers ``reach`` pixels (an object's diameter: an object that crosses the block's
    far face has its centre there, and the next block sees it whole from behind).  Every
    tile that covers a block's pixels is then one of the whole image's tiles, and the
    block's maps are the whole image's maps (the blockwise instances equal the in-memory
    ones); no tile is predicted that covers none of them.  At another scale the windows
    are resampled and ``halo`` is used on both sides.
    """
    from napari_cellseg.inference.tiling import tile_step

    scale = predictor.first_scale(diameter)
    if abs(scale - 1) > 1e-9:
        return BlockGrid(shape, block, halo, halo)
    tile = predictor.tile_side(shape)
    step = tile_step(tile, predictor.overlap, predictor.align)
    count = math.ceil(max(shape) / block)  # blocks along the longer side, as even as
    block = max(step, math.ceil(math.ceil(max(shape) / count) / step) * step)  # steps allow
    before = math.ceil(halo / step) * step
    after = (tile - before) % step
    after += math.ceil(max(reach - after, 0) / step) * step
    return BlockGrid(shape, block, before, after)


@dataclass(frozen=True)
class BlockwiseResult:
    """What a blockwise run wrote."""

    path: Path
    objects: int
    blocks: int
    intensity_range: tuple[float, float]
    diameter: float


def segment_blockwise(
    image: LazyImage,
    predictor,
    output: str | Path,
    *,
    progress: Callable[[int, int], object] | None = None,
    **options,
) -> BlockwiseResult:
    """Run :func:`iter_blockwise`, calling ``progress(done, total)`` after each step."""
    steps = iter_blockwise(image, predictor, output, **options)
    return drive(steps, None if progress is None else lambda step: progress(*step))


def iter_blockwise(
    image: LazyImage,
    predictor,
    output: str | Path,
    *,
    settings: SegmentationSettings | None = None,
    block: int = 2048,
    halo: int = 0,
    diameter: float = 0.0,
    cancel: threading.Event | None = None,
    scheduler: str = "",
) -> Generator[tuple[int, int], None, BlockwiseResult]:
    """Predict and segment a large 2D image (or each plane of a z-stack) block by block
    into an OME-Zarr at ``output``.

    Yields (steps done, steps) after each block of each pass and each pyramid level;
    returns what it wrote.  Closing it between steps stops the run as ``cancel`` does.

    Parameters
    ----------
    predictor : napari_cellseg.inference.predictor.Predictor
    settings
        Segmentation settings (default: the model's).
    block, halo
        Block side and the pixels read around each block (0: three object diameters,
        at least 64).
    diameter
        The objects' diameter for models trained with ``object_diameter`` (0: estimated
        once, on the most crowded region of the (middle) plane).
    cancel
        When set, the run stops after the block in progress; run it again to resume.
    scheduler
        The address of a ``dask.distributed`` scheduler (``tcp://host:8786``) whose
        workers predict the blocks (each loads the model once; they need the input and
        the output at the same paths); empty: this process predicts them one by one,
        with every core on each block.
    """
    settings = settings or predictor.segmentation()
    task, job = _plan(image, predictor, settings, block, halo, diameter, output)
    grid, blocks = task.grid, len(task.grid) * image.planes
    out = OutputZarr(Path(output), grid, job, image.planes)  # a chunk per block
    finished = out.done("pass1"), out.done("pass2")
    levels = out.pyramid_levels()
    total, done = 2 * blocks + levels, len(finished[0]) + len(finished[1])
    yield done, total
    register(predictor, image)  # this process's tasks use them
    todo = [number for number in range(blocks) if number not in finished[0]]
    for number in run_tasks(task, todo, scheduler, cancel):
        out.mark("pass1", {number})
        done += 1
        yield done, total
    if cancel is not None and cancel.is_set():
        raise Cancelled(out.path)
    lookup = _numbering([_merge(out.plane(z), grid) for z in range(image.planes)])
    for number in range(blocks):
        if number not in finished[1]:
            _renumber(out, grid, number, lookup, cancel)
            done += 1
            yield done, total
    for level in range(1, levels + 1):
        out.write_level(level)
        yield done + level, total
    objects = int(lookup[1].max()) - FIRST_LABEL + 1 if len(lookup[1]) else 0
    span = (task.low[0], task.high[0]) if image.planes == 1 else (task.low, task.high)
    out.finish({"objects": objects, "intensity_range": span, "diameter": task.diameter})
    return BlockwiseResult(out.path, objects, blocks, span, task.diameter)


def _plan(image: LazyImage, predictor, settings, block, halo, diameter, output):
    """The pass-1 task of a run (grid, each plane's intensity range, the diameter) and
    the job the output records."""
    samples = [strided_sample(image.plane(z)) for z in range(image.planes)]
    if predictor.config.object_diameter and not diameter:
        middle = image.planes // 2
        diameter = estimate_diameter(image.plane(middle), predictor, samples[middle])
    size = diameter or predictor.config.object_diameter or 20
    halo = halo or max(64, int(3 * size))
    grid = aligned_grid(image.shape, block, halo, predictor, diameter, max(16, math.ceil(size)))
    job = {
        "source": str(image.path),
        "shape": [image.planes, *image.shape] if image.planes > 1 else list(image.shape),
        "block": grid.block,
        "halo": [grid.before, grid.after],
        "model": str(predictor.model_file.path),
        "settings": settings.as_dict(),
    }
    task = BlockTask(
        (str(image.path), image.channel),
        predictor_key(predictor),
        settings.as_dict(),
        grid,
        tuple(sample.low for sample in samples),
        tuple(sample.high for sample in samples),
        diameter,
        str(Path(output)),
    )
    return task, job


def _renumber(out: OutputZarr, grid: BlockGrid, number: int, lookup, cancel) -> None:
    """Pass 2 of one block: its labels renumbered to the global ones."""
    if cancel is not None and cancel.is_set():
        raise Cancelled(out.path)
    z, index = divmod(number, len(grid))
    arrays, core = out.plane(z), grid.core(index)
    with writing(out.path):
        arrays.labels[core] = _apply(lookup, np.asarray(arrays.provisional[core]))
    out.mark("pass2", {number})


def measure_result(result: BlockwiseResult, image: LazyImage, block: int) -> dict:
    """The measurements of every object of a finished run (``analysis.measure`` columns,
    one row per object; a z-stack's with its ``page``), read block by block."""
    import zarr

    from napari_cellseg.bigimage.measure import measure_blockwise

    group = zarr.open_group(str(result.path), mode="r")
    grid = BlockGrid(image.shape, block, 0, 0)
    tables = []
    for z in range(image.planes):
        labels = plane_arrays(group, z).labels
        table = measure_blockwise(labels, image.plane(z), grid, result.objects, read_region)
        if image.planes > 1:  # the page first, as in the in-memory tables of a stack
            table = {"page": np.full(len(table["label"]), z), **table}
        tables.append(table)
    return {key: np.concatenate([t[key] for t in tables]) for key in tables[0]}


def _numbering(planes: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The final label of every provisional one: (provisional ids ascending, their labels
    2, 3, ...), one per object, from each plane's (ids, the id of the object they join)."""
    ids = np.concatenate([plane[0] for plane in planes]) if planes else np.zeros(0, np.uint64)
    roots = np.concatenate([plane[1] for plane in planes]) if planes else np.zeros(0)
    order = np.argsort(ids)
    _, final = np.unique(roots[order], return_inverse=True)
    return ids[order], (final + FIRST_LABEL).astype(np.uint32)


def _merge(out, grid: BlockGrid) -> tuple[np.ndarray, np.ndarray]:
    """Union the labels that two blocks of a plane (``out``: its arrays) saw as one
    object; (provisional ids, the id of the object each joins)."""
    cols = grid.counts[1]
    parent: dict[int, int] = {}

    def find(a: int) -> int:
        while parent.get(a, a) != a:
            parent[a] = parent.get(parent[a], parent[a])
            a = parent[a]
        return a

    ids = set()
    strip = max(grid.after, 1)
    for index in range(len(grid)):
        core = grid.core(index)
        (y0, y1), (x0, x1) = [(s.start, s.stop) for s in core]
        own = np.asarray(out.provisional[core])
        ids.update(np.unique(own).tolist())
        row, col = divmod(index, cols)
        strips = []
        if col:
            width = min(grid.after, x1 - x0)
            seen = out.seen_from_left[y0:y1, col * strip : col * strip + width]
            strips.append((np.asarray(seen), own[:, :width]))
        if row:
            height = min(grid.after, y1 - y0)
            seen = out.seen_from_above[row * strip : row * strip + height, x0:x1]
            strips.append((np.asarray(seen), own[:height]))
        for seen, mine in strips:
            for a, b in _same_objects(seen, mine):
                parent[find(a)] = find(b)
    ids.discard(0)
    provisional = np.array(sorted(ids), dtype=np.uint64)
    return provisional, np.array([find(int(a)) for a in provisional], dtype=np.uint64)


def _same_objects(seen: np.ndarray, mine: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (neighbour's label, own label) covering at least half of the smaller one's
    pixels in the strip both blocks saw, each the other's best match."""
    both = (seen > 0) & (mine > 0)
    if not both.any():
        return []
    pairs, overlap = np.unique(np.stack([seen[both], mine[both]]), axis=1, return_counts=True)
    seen_ids, seen_area = np.unique(seen[seen > 0], return_counts=True)
    mine_ids, mine_area = np.unique(mine[mine > 0], return_counts=True)
    area_a = seen_area[np.searchsorted(seen_ids, pairs[0])]
    area_b = mine_area[np.searchsorted(mine_ids, pairs[1])]
    keep = overlap >= 0.5 * np.minimum(area_a, area_b)
    # one to one: a label that covers two across the face joins only its best match, so
    # two touching objects that one block saw as one are not merged
    best_a, best_b = {}, {}
    for a, b, n in zip(
        pairs[0][keep].tolist(), pairs[1][keep].tolist(), overlap[keep].tolist(), strict=True
    ):
        best_a[a] = max(best_a.get(a, (0, 0)), (n, b))
        best_b[b] = max(best_b.get(b, (0, 0)), (n, a))
    return [(a, b) for a, (_n, b) in best_a.items() if best_b[b][1] == a]


def _apply(lookup: tuple[np.ndarray, np.ndarray], labels: np.ndarray) -> np.ndarray:
    """Renumber provisional labels by ``lookup`` (0 stays 0)."""
    provisional, final = lookup
    out = np.zeros(labels.shape, np.uint32)
    mask = labels > 0
    out[mask] = final[np.searchsorted(provisional, labels[mask])]
    return out
