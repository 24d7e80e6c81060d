"""Targets from label images, with hand-worked expected values."""

import numpy as np
import pytest

from napari_cellseg.data.labels import count_objects
from napari_cellseg.data.targets import make_targets, remove_blobs, separation_mask, unet_classes


@pytest.fixture
def two_squares() -> np.ndarray:
    """Two touching 4x4 squares (labels 2 and 3) in a 6x10 image."""
    labels = np.zeros((6, 10), np.uint16)
    labels[1:5, 1:5] = 2
    labels[1:5, 5:9] = 3
    return labels


def _grid(rows: list[str]) -> np.ndarray:
    return np.array([[int(c) for c in row] for row in rows], np.uint8)


def test_thin_boundaries_are_the_rim_of_each_object(two_squares):
    objects, boundaries, ignore = make_targets(two_squares, boundary_thickness=1)
    expected_boundaries = _grid(
        [
            "0000000000",
            "0111111110",
            "0100110010",
            "0100110010",
            "0111111110",
            "0000000000",
        ]
    )
    np.testing.assert_array_equal(boundaries, expected_boundaries)
    expected_objects = np.zeros_like(objects)
    expected_objects[2:4, 2:4] = expected_objects[2:4, 6:8] = 1
    np.testing.assert_array_equal(objects, expected_objects)
    assert not ignore.any()
    assert objects.dtype == boundaries.dtype == ignore.dtype == np.uint8


def test_two_pixel_boundaries_cover_4x4_squares(two_squares):
    objects, boundaries, _ = make_targets(two_squares, boundary_thickness=2)
    np.testing.assert_array_equal(boundaries, two_squares > 0)
    assert not objects.any()


def test_touching_boundaries_only_where_objects_meet(two_squares):
    objects, boundaries, _ = make_targets(
        two_squares, boundary_thickness=1, touching_boundaries=True
    )
    expected = np.zeros_like(boundaries)
    expected[1:5, 4:6] = 1
    np.testing.assert_array_equal(boundaries, expected)
    np.testing.assert_array_equal(objects, (two_squares > 0) & ~expected.astype(bool))

    _, thick, _ = make_targets(two_squares, boundary_thickness=2, touching_boundaries=True)
    expected[1:5, 3:7] = 1
    np.testing.assert_array_equal(thick, expected)


def test_lone_object_has_no_touching_boundary_and_image_border_is_no_boundary():
    labels = np.zeros((5, 5), np.int32)
    labels[:3, :3] = 7  # touches the top-left image border
    _, touching, _ = make_targets(labels, boundary_thickness=1, touching_boundaries=True)
    assert not touching.any()
    objects, boundaries, _ = make_targets(labels, boundary_thickness=1)
    expected = np.zeros_like(boundaries)
    expected[:3, 2] = expected[2, :3] = 1
    np.testing.assert_array_equal(boundaries, expected)
    assert objects.sum() == 4


def test_blob_pixels_are_ignored_never_objects_nor_boundaries(two_squares):
    labels = two_squares.copy()
    labels[labels == 3] = 1  # the right square is a blob
    objects, boundaries, ignore = make_targets(labels, boundary_thickness=1)
    np.testing.assert_array_equal(ignore, labels == 1)
    assert not (objects & ignore).any() and not (boundaries & ignore).any()
    # the square beside the blob keeps its full rim (the blob counts as non-object)
    assert boundaries.sum() == 12 and objects.sum() == 4

    objects, boundaries, ignore = make_targets(labels, blob_label=None, boundary_thickness=1)
    assert not ignore.any()
    assert boundaries.sum() == 24 and objects.sum() == 8


def test_unet_classes():
    objects = np.array([[0, 1, 1, 0]], np.uint8)
    boundaries = np.array([[0, 0, 1, 1]], np.uint8)
    np.testing.assert_array_equal(unet_classes(objects, boundaries), [[0, 1, 2, 2]])
    assert unet_classes(objects, boundaries).dtype == np.uint8


def test_remove_blobs_blanks_image_and_labels():
    image = np.array([[5.0, 6.0, 7.0]], np.float32)
    labels = np.array([[0, 1, 2]], np.uint16)
    new_image, new_labels = remove_blobs(image, labels, 1)
    np.testing.assert_array_equal(new_image, [[5.0, 0.0, 7.0]])
    np.testing.assert_array_equal(new_labels, [[0, 0, 2]])
    assert new_image.dtype == np.float32 and new_labels.dtype == np.uint16
    assert labels[0, 1] == 1  # inputs untouched


def test_separation_marks_rims_and_gaps_near_two_objects():
    labels = np.zeros((12, 20), np.uint16)
    labels[2:7, 1:6] = 2
    labels[2:7, 8:13] = 3  # 2 background columns from 2
    labels[2:7, 17:20] = 4  # 4 background columns from 3
    separation = separation_mask(labels)
    # within 3 px (along each axis) of two objects: the facing rims of 2 and 3 and their
    # gap (columns 5..8), the middle of the wider gap (14, 15); rows up to 3 px away
    expected = np.zeros_like(separation)
    expected[:10] = _grid(["00000111100000110000"])[0]
    np.testing.assert_array_equal(separation, expected)
    assert separation.dtype == np.uint8
    top_values = np.where(labels > 0, labels + 65531, 0).astype(np.uint16)  # up to 65535
    np.testing.assert_array_equal(separation_mask(top_values), expected)
    lone = np.where(labels == 2, labels, 0)
    assert not separation_mask(lone).any()


def test_blobs_separate_nothing_and_are_never_separation():
    labels = np.zeros((5, 12), np.uint16)
    labels[:, :4] = 2
    labels[:, 4:8] = 1  # a blob between two objects
    labels[:, 8:] = 3
    assert not separation_mask(labels).any()
    as_object = separation_mask(labels, blob_label=None)
    np.testing.assert_array_equal(as_object[2], _grid(["011111111110"])[0])


def test_count_objects_leaves_out_background_and_blobs():
    labels = np.array([[0, 1, 2], [5, 5, 0]], np.int32)
    assert count_objects(labels) == 3 and count_objects(labels, blob_label=1) == 2
