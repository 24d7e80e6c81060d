"""Instance labels as ImageJ ROIs: outlines along pixel edges, read back as Fiji would."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.path import Path as Polygon
from roifile import ROI_TYPE, roiread

from napari_cellseg.analysis.rois import label_rois, outlines, write_rois
from napari_cellseg.data.synthetic import make_nuclei


def filled(polygon: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The pixels whose centres lie inside ``polygon`` ((x, y) pixel-corner vertices)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    centres = np.column_stack([xx.ravel() + 0.5, yy.ravel() + 0.5])
    return Polygon(polygon).contains_points(centres).reshape(shape)


def shoelace(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def test_every_outline_holds_exactly_its_objects_pixels(tmp_path):
    _, labels = make_nuclei((160, 200), seed=3)  # touching nuclei, some on the border
    path = write_rois(tmp_path / "cells_rois.zip", labels)
    rois = roiread(path)
    values = sorted(set(np.unique(labels)) - {0})
    assert [roi.name for roi in rois] == [str(v) for v in values] and len(values) > 15
    for roi, value in zip(rois, values, strict=True):
        mask = labels == value
        polygon = roi.coordinates()
        assert roi.roitype == ROI_TYPE.TRACED and roi.position == 0
        assert shoelace(polygon) == mask.sum()  # Fiji measures the label's area
        assert np.array_equal(filled(polygon, labels.shape), mask)


def test_holes_pinches_and_pieces():
    ring = np.zeros((7, 7), bool)
    ring[1:6, 1:6] = True
    ring[3, 3] = False  # a hole: outlined on the outside
    ring[1, 1] = False  # and a notch
    (outline,) = outlines(ring)
    assert shoelace(outline) == 24  # the 5 x 5 square less the notch, hole and all
    pinch = np.array([[1, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 1], [0, 0, 0, 0]], bool)
    # the hole at (1, 1) touches the outside at one corner; (2, 3) is a piece of its own
    shapes = outlines(pinch)
    assert sorted(shoelace(p) for p in shapes) == [1, 7]
    main = pinch.copy()
    main[2, 3] = False
    assert np.array_equal(filled(max(shapes, key=shoelace), pinch.shape), main)


def test_stack_rois_sit_on_their_slices():
    labels = np.zeros((3, 8, 8), np.int32)
    labels[0, 1:3, 1:3] = 5
    labels[2, 4:7, 2:5] = 5  # the same object (stitched) two slices up
    labels[2, 0:2, 6:8] = 9
    rois = label_rois(labels)
    assert [(roi.name, roi.position) for roi in rois] == [
        ("0001-5", 1), ("0003-5", 3), ("0003-9", 3),
    ]  # fmt: skip
    assert shoelace(rois[1].coordinates()) == 9


def test_a_label_in_two_pieces_gives_two_rois():
    labels = np.zeros((6, 6), np.int64)
    labels[0:2, 0:2] = 2**40  # any value
    labels[4:6, 4:6] = 2**40
    rois = label_rois(labels)
    assert [roi.name for roi in rois] == [str(2**40), f"{2**40}-2"]
    assert [shoelace(roi.coordinates()) for roi in rois] == [4, 4]


@pytest.mark.parametrize("shape", [(5, 5), (2, 5, 5)])
def test_no_objects_no_rois(shape):
    assert label_rois(np.zeros(shape, np.int32)) == []
