"""Per-object measurements of a blockwise result: the in-memory columns, block by block.

Each block adds its objects' pixel counts, coordinate sums and second moments and
intensity sums to running totals indexed by the (global) label; the columns follow from
the totals, so an object split over several blocks gets one row, measured whole.
"""

from __future__ import annotations

import numpy as np

from napari_cellseg.analysis.measure import ellipse_columns

__all__ = ["measure_blockwise"]

_SUMS = ("area", "y", "x", "yy", "xx", "yx", "intensity", "edge")


def measure_blockwise(labels, image, grid, objects: int, read) -> dict[str, np.ndarray]:
    """The measurement table (``analysis.measure`` columns) of the ``objects`` labelled
    2, 3, ... in the (zarr) ``labels`` of the lazy ``image``, read block by block with
    ``read(region)`` over the blocks of ``grid``."""
    size = objects + 2
    totals = {name: np.zeros(size) for name in _SUMS}
    height, width = grid.shape
    for index in range(len(grid)):
        core = grid.core(index)
        block = np.asarray(labels[core]).astype(np.int64)
        rows, cols = np.nonzero(block)
        if not rows.size:
            continue
        values = block[rows, cols]
        y, x = rows + core[0].start, cols + core[1].start  # in the whole image
        pixels = read(image[core])[rows, cols].astype(np.float64)
        edge = (y == 0) | (x == 0) | (y == height - 1) | (x == width - 1)
        weights = {
            "area": None, "y": y, "x": x, "yy": y * y, "xx": x * x, "yx": y * x,
            "intensity": pixels, "edge": edge,
        }  # fmt: skip
        for name, weight in weights.items():
            totals[name] += np.bincount(values, weight, minlength=size)[:size]
    area = totals["area"][2:]
    present = area > 0
    label = np.arange(2, size)[present]
    area = area[present]
    t = {name: totals[name][2:][present] for name in _SUMS}
    cy, cx = t["y"] / area, t["x"] / area
    moments = t["yy"] / area - cy * cy, t["xx"] / area - cx * cx, t["yx"] / area - cy * cx
    return {
        "label": label,
        "area": area.astype(np.int64),
        "centroid_y": cy,
        "centroid_x": cx,
        "mean_intensity": t["intensity"] / area,
        "integrated_intensity": t["intensity"],
        "equivalent_diameter": np.sqrt(4 * area / np.pi),
        **ellipse_columns(*(np.maximum(m, 0) if i < 2 else m for i, m in enumerate(moments))),
        "touches_edge": t["edge"] > 0,
    }
