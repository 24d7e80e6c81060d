"""Objects of a z-stack in 3D: the 2D instances of neighbouring slices linked by overlap.

The network segments a stack slice by slice (:func:`napari_cellseg.segmentation.instances.instances`
gives every object of every slice its own value).  In a z-stack, a nucleus spans several
slices; :func:`stitch_slices` gives its pieces one value, as Cellpose's
``stitch_threshold`` does, with one difference: two objects of neighbouring slices are
linked when their overlap covers at least ``min_overlap`` of the *smaller* one, not when
their intersection over union is high enough.  A nucleus' outline shrinks fast towards
its top and bottom, so the IoU of its last two slices is low (on the synthetic stacks of
:func:`~napari_cellseg.data.synthetic.make_nuclei_stack`, linking by IoU >= 0.25 leaves
32-40 % more objects than there are nuclei, caps cut off; by overlap, none).  The links
are one-to-one, taken by decreasing IoU, so a nucleus continues into its own next slice
rather than into a neighbour that it touches or that lies on it.  A stack of unrelated
pages (a time series, a multipage TIFF of separate fields) must not be stitched.
"""

from __future__ import annotations

import numpy as np

from napari_cellseg.data.labels import sequential_labels
from napari_cellseg.errors import DataError

__all__ = ["stitch_slices"]


def stitch_slices(
    labels: np.ndarray, min_overlap: float, skip_label: int | None = None
) -> np.ndarray:
    """(Z, H, W) per-slice labels as 3D objects, numbered 1, 2, ... (int32).

    An object of slice z takes the value of an object of slice z - 1 when their overlap
    is at least ``min_overlap`` of the smaller one's area (one-to-one, by decreasing
    IoU), else a new value; ``skip_label`` is a value no object takes (the blob value).
    ``min_overlap`` must be in (0, 1].

    >>> labels = np.array([[[2, 2, 0, 3]], [[5, 5, 0, 0]], [[0, 0, 0, 7]]])
    >>> stitch_slices(labels, 0.5, skip_label=1)[:, 0]
    array([[2, 2, 0, 3],
           [2, 2, 0, 0],
           [0, 0, 0, 4]], dtype=int32)
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise DataError(f"stitching needs a (Z, H, W) stack of labels, not {labels.shape}")
    if not 0 < min_overlap <= 1:
        raise DataError(f"min_overlap must be in (0, 1], not {min_overlap}")
    out = np.zeros(labels.shape, np.int32)
    numbers = _Numbers(skip_label)
    below = np.zeros(1, np.int32)  # the values of slice z - 1's objects, by their index
    below_index = np.zeros(labels[0].size, np.int64)  # ... and each of its pixels' index
    for z, page in enumerate(labels):
        index, found = sequential_labels(page)
        values = np.zeros(len(found) + 1, np.int32)
        for lower, upper in _links(below_index, index, len(below) - 1, min_overlap):
            values[upper] = below[lower]
        for upper in np.flatnonzero(values[1:] == 0) + 1:
            values[upper] = numbers.next()
        out[z] = values[index].reshape(page.shape)
        below, below_index = values, index
    return out


def _links(lower: np.ndarray, upper: np.ndarray, n_lower: int, min_overlap: float):
    """One-to-one (lower, upper) index pairs that overlap by ``min_overlap`` of the smaller
    one, by decreasing IoU."""
    n_upper = int(upper.max(initial=0))
    both = (lower > 0) & (upper > 0)
    pairs, inter = np.unique(lower[both] * (n_upper + 1) + upper[both], return_counts=True)
    lo, up = np.divmod(pairs, n_upper + 1)
    area_lo = np.bincount(lower, minlength=n_lower + 1)[lo]
    area_up = np.bincount(upper, minlength=n_upper + 1)[up]
    overlap = inter / np.minimum(area_lo, area_up)
    iou = inter / (area_lo + area_up - inter)
    taken_lo, taken_up = set(), set()
    for k in np.argsort(-iou, kind="stable"):
        if overlap[k] >= min_overlap and lo[k] not in taken_lo and up[k] not in taken_up:
            taken_lo.add(lo[k])
            taken_up.add(up[k])
            yield int(lo[k]), int(up[k])


class _Numbers:
    """1, 2, 3, ... passing over ``skip``."""

    def __init__(self, skip: int | None) -> None:
        self.last, self.skip = 0, skip

    def next(self) -> int:
        self.last += 1 + (self.last + 1 == self.skip)
        return self.last
