"""trim / untrim: each method's geometry, exact inverses, crops for large images."""

import numpy as np
import pytest

from napari_cellseg.data.trim import METHODS, crop_starts, random_start, trim, untrim
from napari_cellseg.errors import DataError


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", [(2, 37, 20), (31, 31), (1, 32, 9)])
def test_untrim_restores_geometry_and_padding_restores_values(method, shape):
    rng = np.random.default_rng(0)
    image = rng.random(shape, dtype=np.float32)
    trimmed, info = trim(image, 32 if max(shape) <= 32 else 40, method)
    assert trimmed.shape == (*shape[:-2], trimmed.shape[-1], trimmed.shape[-1])
    restored = untrim(trimmed, info)
    assert restored.shape == image.shape
    if method != "resize":
        np.testing.assert_array_equal(restored, image)


def test_padding_is_centred_with_zeros_and_reflect_mirrors():
    image = np.arange(1, 10, dtype=np.float32).reshape(3, 3)
    padded, info = trim(image, 6, "padding")
    assert info.pad == ((1, 2), (1, 2))  # odd remainder goes after
    np.testing.assert_array_equal(padded[1:4, 1:4], image)
    assert padded.sum() == image.sum()
    reflected, _ = trim(image, 6, "reflect")
    np.testing.assert_array_equal(reflected[1], [2, 1, 2, 3, 2, 1])
    np.testing.assert_array_equal(reflected[0], [5, 4, 5, 6, 5, 4])  # mirrored row 1


def test_resize_labels_keep_dtype_and_values():
    labels = np.zeros((37, 21), np.uint16)
    labels[5:20, 3:15] = 2
    labels[20:35, 10:20] = 9
    trimmed, info = trim(labels, 64, "resize", order=0)
    assert trimmed.dtype == np.uint16 and trimmed.shape == (64, 64)
    assert set(np.unique(trimmed)) == {0, 2, 9}
    back = untrim(trimmed, info, order=0)
    assert back.shape == labels.shape and back.dtype == np.uint16
    assert (back == labels).mean() > 0.95


def test_resize_image_keeps_range_as_float():
    image = np.full((50, 50), 200, np.uint8)
    trimmed, _ = trim(image, 32, "resize")
    assert trimmed.dtype == np.float32
    np.testing.assert_allclose(trimmed, 200, atol=1e-3)


@pytest.mark.parametrize("method", ["padding", "reflect"])
def test_padding_methods_refuse_larger_images(method):
    with pytest.raises(DataError, match="larger than im_dim 32.*resize"):
        trim(np.zeros((33, 10)), 32, method)


def test_crop_starts_cover_the_image_evenly():
    assert crop_starts((520, 696), 256) == [(y, x) for y in (0, 132, 264) for x in (0, 220, 440)]
    assert crop_starts((100, 256), 256) == [(0, 0)]
    assert crop_starts((257, 10), 256) == [(0, 0), (1, 0)]


def test_random_start_stays_inside():
    rng = np.random.default_rng(1)
    starts = {random_start((40, 32), 32, rng) for _ in range(200)}
    assert {y for y, _ in starts} == set(range(9)) and {x for _, x in starts} == {0}
