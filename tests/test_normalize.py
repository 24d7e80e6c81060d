"""Percentile normalisation: the histogram shortcut gives numpy's percentiles exactly."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cellseg.data.normalize import PERCENTILES, normalize_image, percentiles

RNG = np.random.default_rng(0)
PAGES = {
    "uint8": RNG.integers(0, 256, (50, 70)).astype(np.uint8),
    "uint16": RNG.integers(0, 65536, (40, 33)).astype(np.uint16),
    "int16 negative": RNG.integers(-500, 500, (40, 33)).astype(np.int16),
    "int64 wide": RNG.integers(0, 2**40, (20, 20)),
    "float32": RNG.normal(size=(20, 30)).astype(np.float32),
    "uint8 two values": np.eye(10, dtype=np.uint8) * 255,
    "one column": RNG.integers(0, 3, (7, 1)),
}


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("q", [PERCENTILES, (0.0, 100.0), (50.0,), (33.3, 66.6)])
def test_percentiles_equal_numpys(name, q):
    page = PAGES[name]
    np.testing.assert_allclose(percentiles(page, q), np.percentile(page, q), rtol=1e-12)


def reference(image):
    """The definition, in float64 with numpy's percentiles."""
    image = np.asarray(image, np.float64)
    out = np.empty_like(image)
    for index in np.ndindex(image.shape[:-2]):
        page = image[index]
        lo, hi = np.percentile(page, PERCENTILES)
        if hi <= lo:
            lo, hi = page.min(), page.max()
        out[index] = (page - lo) / (hi - lo if hi > lo else 1.0)
    return out


@pytest.mark.parametrize(
    "image",
    [
        *PAGES.values(),
        RNG.integers(0, 4096, (3, 30, 40)).astype(np.uint16),  # a stack: per slice
        np.zeros((5, 5), np.uint8),  # constant: all zeros
        np.full((4, 4), 7.5),
        RNG.random((30, 30)) > 0.9,  # bool
    ],
)
def test_normalize_image_matches_the_definition(image):
    out = normalize_image(image)
    assert out.dtype == np.float32 and out.shape == image.shape
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, reference(image), rtol=1e-5, atol=1e-6)


def test_pixels_that_are_not_numbers_do_not_poison_their_slice():
    from napari_cellseg.data.normalize import normalize_image

    image = np.arange(100, dtype=np.float32).reshape(10, 10)
    clean = normalize_image(image)
    image[0, 0], image[5, 5] = np.nan, np.inf
    dirty = normalize_image(image)
    assert np.isfinite(dirty).all() and dirty[0, 0] == dirty[5, 5] == 0.0  # background
    keep = np.ones(image.shape, bool)
    keep[0, 0] = keep[5, 5] = False
    np.testing.assert_allclose(dirty[keep], clean[keep], atol=0.02)  # the others as before
    assert (normalize_image(np.full((4, 4), np.nan)) == 0).all()
