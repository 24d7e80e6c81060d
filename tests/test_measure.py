"""Per-object measurements: areas, centroids and intensities equal the masks' own."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cellseg.engine.measure import measure_objects, table_csv


def test_stack_rows_per_object_and_page():
    labels = np.zeros((2, 10, 12), np.int32)
    labels[0, 1:4, 2:6] = 7  # 12 pixels
    labels[1, 5:10, 0:2] = 7  # the same value on another page: its own row
    labels[1, 0:2, 10:12] = 3
    image = np.arange(labels.size, dtype=np.uint16).reshape(labels.shape)
    table = measure_objects(labels, image)
    assert list(table) == ["label", "page", "area", "centroid_y", "centroid_x", "mean_intensity"]
    rows = list(zip(*(table[k].tolist() for k in ("label", "page", "area")), strict=True))
    assert rows == [(7, 0, 12), (3, 1, 4), (7, 1, 10)]
    for label, page, centroid_y, centroid_x, mean in zip(
        table["label"],
        table["page"],
        table["centroid_y"],
        table["centroid_x"],
        table["mean_intensity"],
        strict=True,
    ):
        ys, xs = np.nonzero(labels[page] == label)
        assert (centroid_y, centroid_x) == pytest.approx((ys.mean(), xs.mean()))
        assert mean == pytest.approx(image[page][ys, xs].mean())


def test_no_objects_give_an_empty_table_with_a_header():
    table = measure_objects(np.zeros((4, 4), np.int32), np.ones((4, 4)))
    assert all(len(v) == 0 for v in table.values()) and "page" not in table
    assert table_csv(table) == "label,area,centroid_y,centroid_x,mean_intensity\n"


def test_any_label_values():
    labels = np.array([[0, 2**40, 2**40], [5, 0, 0]], np.int64)
    table = measure_objects(labels, np.ones(labels.shape))
    assert table["label"].tolist() == [5, 2**40] and table["area"].tolist() == [1, 2]


def test_shapes_and_values_must_fit():
    with pytest.raises(ValueError, match="differ in shape"):
        measure_objects(np.zeros((4, 4), np.int32), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="non-negative integers"):
        measure_objects(np.full((4, 4), -1), np.zeros((4, 4)))
