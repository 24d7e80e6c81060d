"""Label image utilities: count, size and renumber objects (numpy only).

Convention: 0 is background, ``blob_label`` (1 by default; None: no blobs) marks blob
regions, every other value is one object (in a stack ``(Z, H, W)`` one per slice unless
the objects are 3D).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "count_objects",
    "count_instances",
    "object_areas",
    "median_object_area",
    "median_diameter",
    "sequential_labels",
    "spans_slices",
]


def count_objects(labels: np.ndarray, blob_label: int | None = None) -> int:
    """Distinct non-zero values of ``labels`` other than ``blob_label``.

    >>> count_objects(np.array([0, 1, 2, 2, 5]), blob_label=1)
    2
    """
    values = np.unique(labels)
    objects = values != 0
    if blob_label is not None:
        objects &= values != blob_label
    return int(np.count_nonzero(objects))


def count_instances(labels: np.ndarray, blob_label: int | None) -> int:
    """Objects of predicted labels, numbered 1, 2, ... past the blob value.

    >>> count_instances(np.array([0, 2, 3]), 1), count_instances(np.array([0, 1, 2]), None)
    (2, 2)
    """
    top = int(labels.max(initial=0))
    return top - (blob_label is not None and top > blob_label)


def object_areas(labels: np.ndarray, blob_label: int | None = 1) -> np.ndarray:
    """Pixel count of every object of every 2D slice (a value on several slices counts
    once per slice).

    >>> object_areas(np.array([[0, 1, 2, 2], [3, 3, 3, 4]]))
    array([2, 3, 1])
    """
    labels = np.asarray(labels)
    areas = []
    for page in labels.reshape(-1, *labels.shape[-2:]):
        flat, values = sequential_labels(page)  # values of any size (uint32 near 4e9)
        counts = np.bincount(flat, minlength=len(values) + 1)[1:]
        if blob_label is not None:
            counts = counts[values != blob_label]
        areas.append(counts[counts > 0])
    return np.concatenate(areas) if areas else np.empty(0, np.int64)


def median_object_area(labels: np.ndarray, blob_label: int | None = 1) -> float:
    """Median pixel count of the objects (per 2D slice); NaN when there are none.

    >>> median_object_area(np.array([[0, 1, 2, 2], [3, 3, 3, 4]]))
    2.0
    """
    areas = object_areas(labels, blob_label)
    return float(np.median(areas)) if areas.size else float("nan")


def median_diameter(labels: np.ndarray, ignore_label: int | None = 1) -> float | None:
    """Median equivalent diameter in pixels of the objects (None: no objects), from the
    median area of :func:`object_areas`: ``2 sqrt(area / pi)``.

    >>> labels = np.zeros((20, 20), int); labels[2:12, 2:12] = 2
    >>> round(median_diameter(labels), 1)
    11.3
    """
    areas = object_areas(labels, ignore_label)
    if not areas.size:
        return None
    return float(2 * np.sqrt(np.median(areas) / np.pi))


def sequential_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels renumbered 1, 2, ... in the order of their values (flat, int64), and those values.

    >>> sequential_labels(np.array([[0, 7], [3, 7]]))
    (array([0, 2, 1, 2]), array([3, 7]))
    """
    flat = labels.ravel()
    if flat.size and int(flat.max()) < 4 * flat.size + 1024:  # a lookup table of the values
        present = np.zeros(int(flat.max()) + 1, bool)
        present[flat] = True
        present[0] = False
        table = np.cumsum(present) * present
        return table[flat], np.flatnonzero(present)
    values, inverse = np.unique(flat, return_inverse=True)
    if values.size and values[0] == 0:
        return inverse.astype(np.int64), values[1:]
    return inverse.astype(np.int64) + 1, values


def spans_slices(labels: np.ndarray) -> bool:
    """Whether an object of a (Z, H, W) stack is on more than one slice (3D objects).

    >>> spans_slices(np.array([[[2, 0]], [[3, 3]]])), spans_slices(np.array([[[2]], [[2]]]))
    (False, True)
    """
    if labels.ndim != 3:
        return False
    values = np.concatenate([np.unique(page[page > 0]) for page in labels])
    return len(values) > len(np.unique(values))
