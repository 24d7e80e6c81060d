"""Instance labels as ImageJ/Fiji ROIs: one polygon per object, for Fiji's ROI Manager.

Each outline runs along the pixel edges of its object (the polygon Fiji's *Create
Selection* traces), so Fiji measures the same area as the label image holds.  An object
with a hole is outlined on the outside; one in pieces (after hand editing) gives one
polygon per piece.  In a stack, a ROI sits on its slice (ImageJ's position, from 1) and
is named ``<slice>-<label>``; in an image it is named by its label.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from napari_cellseg.data.labels import sequential_labels
from napari_cellseg.io_utils import atomic_write

__all__ = ["outlines", "label_rois", "write_rois"]

# the directions of travel along pixel edges, (dy, dx): inside on the right
_RIGHT, _DOWN, _LEFT, _UP = (0, 1), (1, 0), (0, -1), (-1, 0)
_TURNS = {_RIGHT: _DOWN, _DOWN: _LEFT, _LEFT: _UP, _UP: _RIGHT}  # a right turn


def outlines(mask: np.ndarray) -> list[np.ndarray]:
    """The outer outlines of a 2D mask's 4-connected pieces: (N, 2) arrays of (x, y)
    pixel-corner vertices, clockwise on screen, one per piece.

    >>> outlines(np.array([[0, 1, 1], [0, 1, 0]], bool))[0].tolist()
    [[1, 0], [3, 0], [3, 1], [2, 1], [2, 2], [1, 2]]
    """
    pieces, n = ndimage.label(mask)
    result = []
    for index, box in enumerate(ndimage.find_objects(pieces), start=1):
        piece = np.pad(pieces[box] == index, 1)
        loops = [_trace(edges, start) for edges, start in _loops(piece)]
        outer = max(loops, key=_area)  # the holes' loops run the other way round
        result.append(outer + [box[1].start - 1, box[0].start - 1])
    return result


def _loops(piece: np.ndarray):
    """The edge map (start vertex -> directions) of the piece and each loop's first vertex."""
    edges: dict[tuple[int, int], list[tuple[int, int]]] = {}
    top = ~piece[:-1] & piece[1:]  # the top edge of an inside pixel, at row r + 1
    bottom = piece[:-1] & ~piece[1:]
    left = ~piece[:, :-1] & piece[:, 1:]
    right = piece[:, :-1] & ~piece[:, 1:]
    # each edge starts at the pixel corner (y, x) + offset of its crossing's index (y, x)
    for crossing, offset, way in (
        (top, (1, 0), _RIGHT), (bottom, (1, 1), _LEFT), (left, (1, 1), _UP), (right, (0, 1), _DOWN)
    ):  # fmt: skip
        for y, x in zip(*np.nonzero(crossing), strict=True):
            edges.setdefault((y + offset[0], x + offset[1]), []).append(way)
    while edges:
        yield edges, next(iter(edges))


def _trace(edges: dict, start: tuple[int, int]) -> np.ndarray:
    """Follow (and use up) the edges of one loop from ``start``: its corner vertices (x, y)."""
    vertex, heading, corners = start, None, []
    while heading is None or vertex != start:
        ways = edges[vertex]
        # where two loops touch at a corner, turn right: each loop stays a simple polygon
        way = _TURNS[heading] if heading and _TURNS[heading] in ways else ways[0]
        ways.remove(way)
        if not ways:
            del edges[vertex]
        if way != heading:
            corners.append((vertex[1], vertex[0]))
        heading = way
        vertex = (vertex[0] + way[0], vertex[1] + way[1])
    return np.array(corners, np.int64)


def _area(polygon: np.ndarray) -> float:
    """Signed area (shoelace): positive for a clockwise loop on screen (y down)."""
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def label_rois(labels: np.ndarray) -> list:
    """The ``roifile.ImagejRoi`` polygons of every object of (H, W) or (Z, H, W) labels."""
    from roifile import ROI_TYPE, ImagejRoi

    stack = labels.ndim == 3
    rois = []
    for z, page in enumerate(labels.reshape(-1, *labels.shape[-2:])):
        index, values = sequential_labels(page)  # any label values, even huge ones
        index = index.reshape(page.shape)
        for i, (value, box) in enumerate(zip(values, ndimage.find_objects(index), strict=True)):
            for k, points in enumerate(outlines(index[box] == i + 1)):
                name = f"{z + 1:04d}-{value}" if stack else str(value)
                points = points + [box[1].start, box[0].start]
                roi = ImagejRoi.frompoints(
                    points,
                    name=name + (f"-{k + 1}" if k else ""),
                    position=z if stack else None,  # 0-based: stored from 1
                )
                roi.roitype = ROI_TYPE.TRACED  # as Fiji's wand and Create Selection make
                rois.append(roi)
    return rois


def write_rois(path: str | Path, labels: np.ndarray) -> Path:
    """Write the objects of ``labels`` as an ImageJ ROI set (``.zip``) atomically."""
    from roifile import roiwrite

    rois = label_rois(np.asarray(labels))
    return atomic_write(path, lambda tmp: roiwrite(tmp, rois, mode="w"))
