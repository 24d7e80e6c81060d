"""The Qt-free blob functions behind the blob inspector, on hand-drawn label images."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cellseg.analysis.blobs import (
    crop_box,
    find_blobs,
    split_blob,
    split_values,
    summarize,
)
from napari_cellseg.data.labels import median_object_area
from napari_cellseg.errors import DataError


@pytest.fixture
def labels() -> np.ndarray:
    """Two blobs (4 and 6 pixels) and three objects (4, 6 and 2 pixels)."""
    lab = np.zeros((8, 10), np.uint16)
    lab[0:2, 0:2] = 1  # blob A: 4 px
    lab[5:7, 6:9] = 1  # blob B: 6 px
    lab[0:2, 5:7] = 2  # object of 4 px
    lab[3:5, 0:3] = 3  # object of 6 px
    lab[7, 0:2] = 4  # object of 2 px
    return lab


def test_find_blobs_measures_each_region(labels):
    components, blobs = find_blobs(labels)
    assert [b.id for b in blobs] == [1, 2]
    assert [b.area for b in blobs] == [4, 6]
    assert blobs[0].bbox == (slice(0, 2), slice(0, 2))
    assert blobs[1].bbox == (slice(5, 7), slice(6, 9))
    # median object area of (4, 6, 2) is 4 -> 1 and 1.5 cells
    assert [b.cells for b in blobs] == [1.0, 1.5]
    assert blobs[1].centre == (5.5, 7.0)
    assert blobs[1].extent == (2, 3)
    assert components.dtype == np.int32
    assert np.array_equal(components == 2, (labels == 1) & (np.arange(10) >= 5)[None, :])


def test_diagonal_pixels_join_but_slices_do_not():
    stack = np.zeros((2, 4, 4), np.uint8)
    stack[0, 0, 0] = stack[0, 1, 1] = 1  # diagonal neighbours: one blob
    stack[1, 0, 0] = 1  # same place, next slice: another blob
    _, blobs = find_blobs(stack)
    assert [(b.area, b.bbox[0]) for b in blobs] == [(2, slice(0, 1)), (1, slice(1, 2))]
    assert np.isnan(blobs[0].cells)  # no objects to compare with


def test_blob_value_is_a_setting(labels):
    _, blobs = find_blobs(labels, blob_label=3)
    assert [b.area for b in blobs] == [6]


def test_median_object_area_counts_each_slice():
    stack = np.zeros((2, 3, 3), np.int32)
    stack[0, 0, :] = 2  # 3 px
    stack[1, :, :2] = 2  # same value, 6 px in the next slice
    stack[1, 0, 2] = 1  # blob, not an object
    assert median_object_area(stack) == 4.5
    assert median_object_area(stack, blob_label=None) == 3.0  # areas 3, 1, 6


def test_summary_share(labels):
    _, blobs = find_blobs(labels)
    summary = summarize(labels, blobs)
    assert (summary.n_blobs, summary.blob_pixels, summary.annotated_pixels) == (2, 10, 22)
    assert summary.share == pytest.approx(10 / 22)
    assert summarize(np.zeros((2, 2), int), []).share == 0.0


def test_crop_box_clips_to_the_image():
    assert crop_box((slice(1, 3), slice(7, 9)), (8, 10), 3) == (slice(0, 6), slice(4, 10))


def test_split_blob_covers_the_blob_and_leaves_no_small_fragment():
    inst = np.array([[5, 5, 5, 0, 7, 9, 9, 9, 3]])
    blob = np.array([[True] * 8 + [False]])
    # 7 (1 px) is under min_size: its pixel and the gap join the nearest cells; 3 is outside
    assert split_blob(inst, blob, min_size=2).tolist() == [[1, 1, 1, 1, 2, 2, 2, 2, 0]]


def test_a_blob_without_objects_becomes_one_cell():
    blob = np.zeros((3, 4), bool)
    blob[1, 1:3] = True
    assert split_blob(np.zeros((3, 4), int), blob, min_size=5).tolist() == blob.astype(int).tolist()


def test_split_values_uses_new_label_values(labels):
    proposal = np.zeros((3, 4), np.int32)
    proposal[1, 1:3] = 1
    proposal[2, 1:3] = 2
    box = (slice(4, 7), slice(5, 9))
    indices, values = split_values(labels, box, proposal)
    assert [idx.tolist() for idx in indices] == [[5, 5, 6, 6], [6, 7, 6, 7]]
    assert values.tolist() == [5, 5, 6, 6]  # labels.max() is 4
    assert values.dtype == labels.dtype


def test_split_values_refuses_overflow():
    labels = np.full((2, 2), 255, np.uint8)
    with pytest.raises(DataError, match="uint8.*Convert datatype"):
        split_values(labels, (slice(0, 2), slice(0, 2)), np.ones((2, 2), np.int32))
