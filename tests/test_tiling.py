"""Blending of overlapping tiles: normalised weights, a weighted mean of the tiles."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cellseg.inference.tiling import Blender, blend_ramp, tile_positions


@pytest.mark.parametrize(("shape", "tile", "overlap"), [((100, 75), 32, 8), ((64, 64), 32, 0)])
def test_weights_sum_to_one_at_every_pixel(shape, tile, overlap):
    positions = tile_positions(shape, tile, overlap)
    blender = Blender(1, shape, positions, tile, overlap)
    for y, x in positions:
        blender.add(np.full((1, tile, tile), 0.7, np.float32), y, x)
    np.testing.assert_allclose(blender.result(), 0.7, rtol=1e-6)


def test_blend_is_the_ramp_weighted_mean_of_the_tiles():
    shape, tile, overlap = (90, 120), 40, 12
    positions = tile_positions(shape, tile, overlap)  # the last tiles overlap more
    rng = np.random.default_rng(0)
    tiles = rng.random((len(positions), 2, tile, tile)).astype(np.float32)
    blender = Blender(2, shape, positions, tile, overlap)
    window = np.outer(blend_ramp(tile, overlap), blend_ramp(tile, overlap))
    total, weight = np.zeros((2, *shape)), np.zeros(shape)
    for prediction, (y, x) in zip(tiles, positions, strict=True):
        blender.add(prediction, y, x)
        total[:, y : y + tile, x : x + tile] += prediction * window
        weight[y : y + tile, x : x + tile] += window
    np.testing.assert_allclose(blender.result(), total / weight, rtol=1e-5)
    # a pixel only one tile covers keeps that tile's value exactly
    assert blender.result()[0, 0, 0] == tiles[0, 0, 0, 0]
