"""Synthetic nuclei: deterministic, label convention, connected objects, written data sets."""

import numpy as np
from scipy import ndimage

from napari_cellseg.data.io import read_folder
from napari_cellseg.data.synthetic import make_nuclei, make_nuclei_stack, write_dataset


def test_same_seed_same_image_other_seed_other_image():
    first, second = make_nuclei(seed=4), make_nuclei(seed=4)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[1], make_nuclei(seed=5)[1])


def test_label_convention_and_connected_objects():
    for seed in range(5):
        image, labels = make_nuclei((200, 200), blobs=1, seed=seed)
        assert image.dtype == np.uint8 and labels.dtype == np.uint16
        assert image.shape == labels.shape == (200, 200)
        values = np.unique(labels)
        assert values[0] == 0 and values[1] == 1  # background and one blob
        np.testing.assert_array_equal(values[2:], np.arange(2, len(values)))  # 2.. no gaps
        assert 15 < len(values) - 2 < 45
        for value in values[1:]:
            assert ndimage.label(labels == value)[1] == 1, f"label {value} is split"
        # nuclei are brighter than the background
        assert image[labels > 0].mean() > image[labels == 0].mean() + 30


def test_sizes_and_touching_nuclei():
    _, labels = make_nuclei((200, 200), seed=1)
    areas = np.bincount(labels.ravel())[2:]
    radius = np.sqrt(areas / np.pi)
    assert 6 <= np.median(radius) <= 16 and radius.max() <= 16.5
    # some nuclei touch another one (a pixel next to a pixel of another label)
    right, left = labels[:, 1:], labels[:, :-1]
    assert ((right != left) & (right > 1) & (left > 1)).any()


def test_blobs_are_clusters_larger_than_a_nucleus():
    _, labels = make_nuclei((200, 200), blobs=2, seed=0)
    blobs, n = ndimage.label(labels == 1)
    assert n == 2
    areas = np.bincount(labels.ravel())
    assert np.bincount(blobs.ravel())[1:].min() > 2 * np.median(areas[2:])  # >= 3 nuclei
    _, none = make_nuclei((200, 200), seed=0)
    assert not (none == 1).any()


def test_write_dataset_png_and_multipage(tmp_path):
    folder = write_dataset(tmp_path / "png", 3, shape=(40, 50), blobs=1, seed=9)
    stacks = read_folder(folder)
    assert [s.image.shape for s in stacks] == [(1, 40, 50)] * 3
    image, labels = make_nuclei((40, 50), blobs=1, seed=(9, 2))
    np.testing.assert_array_equal(stacks[2].image[0], image)
    np.testing.assert_array_equal(stacks[2].labels[0], labels)

    (stack,) = read_folder(write_dataset(tmp_path / "tif", 3, shape=(40, 50), multipage=True))
    assert stack.image.shape == stack.labels.shape == (3, 40, 50)
    assert stack.labels.dtype == np.uint16


def test_a_stack_of_ellipsoidal_nuclei():
    image, labels = make_nuclei_stack((12, 128, 120), seed=3)
    assert image.shape == labels.shape == (12, 128, 120)
    assert image.dtype == np.uint8 and labels.dtype == np.uint16
    values = np.unique(labels)[1:]
    assert values.tolist() == list(range(2, len(values) + 2)) and len(values) > 8
    extents = []
    for value in values:
        mask = labels == value
        assert ndimage.label(mask)[1] == 1  # one connected region in 3D
        extents.append(np.flatnonzero(mask.any(axis=(1, 2))).size)
    assert min(extents) >= 1 and np.median(extents) >= 4  # most span several slices
    inside, outside = image[labels > 0].mean(), image[labels == 0].mean()
    assert inside > 3 * outside  # bright nuclei on a dark background
    again = make_nuclei_stack((12, 128, 120), seed=3)
    assert np.array_equal(again[0], image) and np.array_equal(again[1], labels)
