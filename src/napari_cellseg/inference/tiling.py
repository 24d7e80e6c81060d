"""Overlapping tiles of a large image and their seamless blend (numpy only).

An image larger than the network input is covered by ``tile x tile`` windows that
overlap by at least ``overlap`` pixels, evenly spread, the last flush with the image
edge.  Each tile's prediction is weighted by a window that falls smoothly (sine
squared) to almost 0 over ``overlap`` pixels at the tile border, where a network sees
its zero padding instead of the neighbouring pixels, and the weights are normalised to
sum to 1 at every pixel: the blend is the weighted sum of the tiles.  A pixel covered by
a single tile gets that tile's value exactly.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "tile_step",
    "tile_starts",
    "tile_positions",
    "blend_ramp",
    "Blender",
    "padded_shape",
    "pad_to",
]


def tile_step(tile: int, overlap: int, align: int = 1) -> int:
    """Distance between the starts of neighbouring tiles (a multiple of ``align``).

    >>> tile_step(256, 32, 16)
    224
    """
    return max(align, (tile - overlap) // align * align)


def tile_starts(length: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Starts of windows of ``tile`` pixels covering ``length``, overlapping by ``overlap`` or more.

    Every start is a multiple of ``align`` (so a network's pooling grid stays the one of
    the whole image) when ``length - tile`` is; the last window ends flush with ``length``.

    >>> tile_starts(100, 40, 10)
    [0, 30, 60]
    >>> tile_starts(96, 32, 12, align=8)
    [0, 16, 32, 48, 64]
    >>> tile_starts(40, 40, 10)
    [0]
    """
    if length <= tile:
        return [0]
    step = tile_step(tile, overlap, align)
    count = math.ceil((length - tile) / step) + 1
    return [min(i * step, length - tile) for i in range(count)]


def tile_positions(
    shape: tuple[int, int], tile: int, overlap: int, align: int = 1
) -> list[tuple[int, int]]:
    """Top-left corners of the tiles covering an image of ``shape`` (row-major order)."""
    rows, cols = (tile_starts(n, tile, overlap, align) for n in shape)
    return [(y, x) for y in rows for x in cols]


def blend_ramp(tile: int, overlap: int) -> np.ndarray:
    """The float64 weight along one side of a tile: 1 inside, sine-squared ramps at both ends.

    Every weight is positive, so pixels at the image border (covered by one tile) keep it.

    >>> blend_ramp(8, 2).round(3)
    array([0.146, 0.854, 1.   , 1.   , 1.   , 1.   , 0.854, 0.146])
    """
    if overlap <= 0:
        return np.ones(tile)
    distance = np.minimum(np.arange(tile), np.arange(tile)[::-1]) + 0.5
    return np.sin(np.pi / 2 * np.clip(distance / overlap, 0, 1)) ** 2


class Blender:
    """Sums the weighted tile predictions of ``channels`` maps over an image of ``shape``.

    ``positions`` (a full grid, :func:`tile_positions`) are the tiles that will be added.
    A tile's weight is the outer product of its ramps along the rows and the columns,
    each divided by the sum of the ramps of all tiles at that row or column: the weights
    of the grid's tiles then sum to 1 at every pixel (the sum over the grid is the
    product of the two sums), so no weight map is kept and nothing is divided at the end.
    """

    def __init__(
        self,
        channels: int,
        shape: tuple[int, int],
        positions: list[tuple[int, int]],
        tile: int,
        overlap: int,
    ) -> None:
        self.sum = np.zeros((channels, *shape), np.float32)
        ramp = blend_ramp(tile, overlap)
        self.ramps = []  # per axis: start -> the tile's normalised ramp
        for starts, length in zip(zip(*positions, strict=True), shape, strict=True):
            total = np.zeros(length)
            for start in set(starts):
                total[start : start + tile] += ramp
            self.ramps.append(
                {s: (ramp / total[s : s + tile]).astype(np.float32) for s in set(starts)}
            )

    def add(self, prediction: np.ndarray, y: int, x: int) -> None:
        """Add the ``(channels, tile, tile)`` prediction of the tile at ``(y, x)``."""
        h, w = prediction.shape[-2:]
        window = np.outer(self.ramps[0][y], self.ramps[1][x])
        self.sum[:, y : y + h, x : x + w] += prediction * window

    def result(self) -> np.ndarray:
        """The blended ``(channels, H, W)`` maps (the sum itself: the last call to make)."""
        return self.sum


def padded_shape(shape: tuple[int, int], size: int, multiple: int) -> tuple[int, int]:
    """The shape :func:`pad_to` pads ``shape`` to: at least ``size``, a multiple of ``multiple``."""
    return tuple(max(size, -(-n // multiple) * multiple) for n in shape)


def pad_to(
    array: np.ndarray, size: int, multiple: int, mode: str
) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Pad the last two axes to at least ``size`` and a multiple of ``multiple``.

    A side shorter than ``size`` is padded on both sides (centred, as
    :func:`napari_cellseg.data.trim.trim` pads), a longer one at its end only.
    ``mode`` is a :func:`numpy.pad` mode ("reflect", "constant").  Returns the padded
    array (``array`` itself when it needs no padding) and the crop that undoes the padding.
    """
    pads = []
    for n, m in zip(array.shape[-2:], padded_shape(array.shape[-2:], size, multiple), strict=True):
        pads.append(((m - n) // 2, m - n - (m - n) // 2) if n < size else (0, m - n))
    crop = tuple(
        slice(before, before + n) for (before, _), n in zip(pads, array.shape[-2:], strict=True)
    )
    if not any(before or after for before, after in pads):
        return array, crop
    return np.pad(array, [(0, 0)] * (array.ndim - 2) + pads, mode=mode), crop
