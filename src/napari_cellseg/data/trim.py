"""Bring images to the network's ``im_dim x im_dim`` input and map results back.

Methods (the seed's ``trim_method``):

- ``resize``: scale to ``im_dim`` (bilinear with anti-aliasing for images, nearest
  neighbour for labels); :func:`untrim` scales back to the original size.
- ``padding``: pad with zeros, centred; :func:`untrim` cuts the padding off again.
- ``reflect``: pad with the mirrored image (``numpy.pad`` mode ``reflect``), centred.

``padding`` and ``reflect`` can only enlarge: :func:`trim` raises for a side longer
than ``im_dim``.  The training Dataset then takes ``im_dim`` crops first
(:func:`crop_starts` lists the windows covering an image, :func:`random_start` draws
one); prediction tiles such images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_cellseg.errors import DataError

__all__ = ["TrimInfo", "trim", "untrim", "resize_to", "crop_starts", "random_start", "METHODS"]

METHODS = ("resize", "padding", "reflect")


@dataclass(frozen=True)
class TrimInfo:
    """What :func:`untrim` needs: the method, the original size and the padding."""

    method: str
    shape: tuple[int, int]
    pad: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))


def resize_to(array: np.ndarray, shape: tuple[int, int], order: int) -> np.ndarray:
    """Resize the last two axes to ``shape`` slice by slice (smoothed first when shrinking).

    ``order`` 1 interpolates linearly (float result); ``order`` 0 takes the nearest
    value and keeps the dtype (labels).
    """
    from skimage.transform import resize

    if array.shape[-2:] == tuple(shape):
        return array.copy()
    slices = array.reshape((-1, *array.shape[-2:]))
    smaller = shape[0] < array.shape[-2] or shape[1] < array.shape[-1]
    out = np.stack(
        [
            resize(s, shape, order=order, preserve_range=True, anti_aliasing=order > 0 and smaller)
            for s in slices
        ]
    )
    dtype = array.dtype if order == 0 else np.result_type(array.dtype, np.float32)
    return out.reshape((*array.shape[:-2], *shape)).astype(dtype)


def trim(
    array: np.ndarray, im_dim: int, method: str, *, order: int = 1
) -> tuple[np.ndarray, TrimInfo]:
    """Bring the last two axes of ``array`` to ``im_dim x im_dim``.

    Parameters
    ----------
    array
        ``(..., H, W)``.
    im_dim
        Target height and width.
    method
        ``resize``, ``padding`` or ``reflect``.
    order
        Interpolation order for ``resize``: 1 for images, 0 for labels (keeps their
        values and dtype).  Ignored by the padding methods.

    Returns
    -------
    trimmed : ndarray, shape ``(..., im_dim, im_dim)``
    info : TrimInfo
        Pass it to :func:`untrim` to map a result back to the input geometry.

    Raises
    ------
    DataError
        For ``padding``/``reflect`` when H or W exceeds ``im_dim`` (crop or tile first).
    """
    shape = tuple(array.shape[-2:])
    if method == "resize":
        return resize_to(array, (im_dim, im_dim), order), TrimInfo(method, shape)
    if method not in METHODS:
        raise DataError(f"trim_method is {method!r}; choose one of {', '.join(METHODS)}.")
    if max(shape) > im_dim:
        raise DataError(
            f"An image of {shape[0]}x{shape[1]} pixels is larger than im_dim {im_dim}: "
            f"trim_method '{method}' can only enlarge. Crop or tile it to {im_dim} pixels, "
            "or use trim_method 'resize' or a larger im_dim."
        )
    pad = tuple(((im_dim - n) // 2, im_dim - n - (im_dim - n) // 2) for n in shape)
    widths = [(0, 0)] * (array.ndim - 2) + list(pad)
    mode = "constant" if method == "padding" else "reflect"
    return np.pad(array, widths, mode=mode), TrimInfo(method, shape, pad)


def untrim(array: np.ndarray, info: TrimInfo, *, order: int = 1) -> np.ndarray:
    """Map ``array`` (``(..., im_dim, im_dim)``) back to the geometry :func:`trim` started from.

    ``padding``/``reflect`` cut the padding off (exact); ``resize`` resizes back with
    interpolation ``order`` (0 for labels).
    """
    if info.method == "resize":
        return resize_to(array, info.shape, order)
    (top, _), (left, _) = info.pad
    return array[..., top : top + info.shape[0], left : left + info.shape[1]].copy()


def crop_starts(shape: tuple[int, int], im_dim: int) -> list[tuple[int, int]]:
    """Top-left corners of the fewest ``im_dim`` windows covering an image, evenly spread.

    A side no longer than ``im_dim`` has the single start 0 (the window is then the
    whole side).
    """
    starts = []
    for n in shape:
        count = -(-n // im_dim)
        starts.append(np.linspace(0, max(n - im_dim, 0), count).round().astype(int).tolist())
    return [(y, x) for y in starts[0] for x in starts[1]]


def random_start(shape: tuple[int, int], im_dim: int, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left corner of a random ``im_dim`` window (0 along a side no longer than ``im_dim``)."""
    return tuple(int(rng.integers(0, max(n - im_dim, 0) + 1)) for n in shape)
