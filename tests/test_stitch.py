"""Stitching the 2D objects of a z-stack's slices into 3D objects."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cellseg.analysis.matching import iou_matrix
from napari_cellseg.data.synthetic import make_nuclei_stack
from napari_cellseg.segmentation.stitching import stitch_slices


def per_slice(labels: np.ndarray) -> np.ndarray:
    """3D labels as segmenting slice by slice numbers them: every 2D piece its own value."""
    out = np.zeros(labels.shape, np.int32)
    for z, page in enumerate(labels):
        values = np.unique(page[page > 0])
        table = np.zeros(int(page.max()) + 1, np.int32)
        table[values] = np.arange(1, len(values) + 1) + out.max()
        out[z] = table[page]
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("min_overlap", [0.25, 0.5, 0.75])
def test_the_slices_of_synthetic_nuclei_become_the_nuclei(seed, min_overlap):
    _, truth = make_nuclei_stack((16, 160, 160), seed=seed)
    pieces = per_slice(truth)
    stitched = stitch_slices(pieces, min_overlap)
    n_true = len(np.unique(truth)) - 1
    assert n_true > 20 and pieces.max() > 4 * n_true  # nuclei span several slices
    iou, _, _ = iou_matrix(truth, stitched, ignore_label=None)
    assert iou.shape == (n_true, n_true)  # as many objects as nuclei ...
    assert (iou.max(axis=1) == 1).all()  # ... and each one exactly


def test_a_cap_on_a_touching_neighbour_starts_its_own_object():
    labels = np.zeros((3, 1, 12), np.int32)
    labels[0, 0, 0:8] = 5  # nucleus A, wide at its centre slice
    labels[1, 0, 1:7] = 6  # A narrower one slice up
    labels[1, 0, 7:9] = 7  # the bottom cap of nucleus B, on A: all of it over A's slice below
    labels[2, 0, 6:10] = 8  # B grows
    stitched = stitch_slices(labels, 0.5)[:, 0]
    a, b = stitched[0, 0], stitched[1, 7]
    assert a != b and (stitched[1, 1:7] == a).all() and (stitched[2, 6:10] == b).all()


def test_small_overlaps_stay_apart_and_values_skip_the_blob_label():
    labels = np.zeros((2, 1, 10), np.int32)
    labels[0, 0, 0:4] = 3
    labels[1, 0, 3:10] = 9  # one pixel in common: 1/7 of it, 1/4 of the smaller object
    assert stitch_slices(labels, 0.5, skip_label=1)[:, 0].tolist() == [
        [2, 2, 2, 2, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 3, 3, 3, 3, 3, 3, 3],
    ]
    assert stitch_slices(labels, 0.25, skip_label=1)[1, 0, 3] == 2


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"\(Z, H, W\)"):
        stitch_slices(np.zeros((4, 4), np.int32), 0.5)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        stitch_slices(np.zeros((2, 4, 4), np.int32), 0.0)
