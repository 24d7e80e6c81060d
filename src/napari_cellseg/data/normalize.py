"""Intensity normalisation of the network input."""

from __future__ import annotations

import numpy as np

__all__ = ["normalize_image", "count_nonfinite", "percentiles", "scale_to_range", "PERCENTILES"]

PERCENTILES = (1.0, 99.8)

_HISTOGRAM_RANGE = 1 << 20
"""Integer slices spanning fewer values than this get their percentiles from a histogram."""


def normalize_image(image: np.ndarray) -> np.ndarray:
    """Map each 2D slice's 1st..99.8th percentile to 0..1 (values outside are kept).

    Parameters
    ----------
    image
        ``(H, W)`` or ``(..., H, W)``; every 2D slice is normalised on its own.

    Returns
    -------
    ndarray of float32, the shape of ``image``
        A slice whose percentiles coincide is scaled by its min..max instead, and a
        constant slice becomes all zeros (never NaN).  Pixels that are not finite (NaN,
        infinite) are left out of the statistics and become 0, the background's level.
    """
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.view(np.uint8)
    slices = image.reshape(-1, *image.shape[-2:])
    out = np.empty(slices.shape, np.float32)
    for page, result in zip(slices, out, strict=True):
        finite = np.isfinite(page) if page.dtype.kind == "f" else None
        if finite is not None and finite.all():
            finite = None
        values = page if finite is None else page[finite]
        if not values.size:  # nothing finite: all background
            result[...] = 0
            continue
        lo, hi = percentiles(values, PERCENTILES)
        if hi <= lo:
            lo, hi = float(values.min()), float(values.max())
        scale_to_range(page, lo, hi, out=result)
    return out.reshape(image.shape)


def scale_to_range(
    page: np.ndarray, lo: float, hi: float, out: np.ndarray | None = None
) -> np.ndarray:
    """``(page - lo) / (hi - lo)`` as float32, non-finite pixels 0: how every image is
    scaled, in memory (:func:`normalize_image`) or block by block with the whole image's
    ``lo`` and ``hi`` (the same float operations, so a block gets the same values).

    >>> scale_to_range(np.array([[2, 4], [6, 10]], np.uint8), 2.0, 10.0)
    array([[0.  , 0.25],
           [0.5 , 1.  ]], dtype=float32)
    """
    out = np.empty(page.shape, np.float32) if out is None else out
    np.subtract(page, lo, out=out, dtype=np.float64, casting="unsafe")
    out *= np.float32(1 / (hi - lo) if hi > lo else 1.0)
    if page.dtype.kind == "f":
        out[~np.isfinite(page)] = 0
    return out


def count_nonfinite(image: np.ndarray) -> int:
    """Pixels of ``image`` that are NaN or infinite (0 for integer images).

    >>> count_nonfinite(np.array([[1.0, np.nan], [np.inf, 2.0]]))
    2
    """
    image = np.asarray(image)
    return int(np.count_nonzero(~np.isfinite(image))) if image.dtype.kind in "fc" else 0


def percentiles(page: np.ndarray, q: tuple[float, ...]) -> tuple[float, ...]:
    """``np.percentile(page, q)`` (linear interpolation), from a histogram for integer data.

    Counting the values of an 8- or 16-bit image is exact and several times faster
    than the partial sort :func:`numpy.percentile` does.

    >>> page = np.arange(101, dtype=np.uint8).reshape(1, 101)
    >>> percentiles(page, (1.0, 99.5))
    (1.0, 99.5)
    """
    low = int(page.min()) if page.dtype.kind in "ui" else 0
    if page.dtype.kind not in "ui" or int(page.max()) - low >= _HISTOGRAM_RANGE:
        return tuple(float(v) for v in np.percentile(page, q))
    cumulative = np.cumsum(np.bincount((page.ravel() - low).astype(np.intp, copy=False)))
    values = []
    for position in np.asarray(q) / 100 * (page.size - 1):
        rank = int(position)
        below, above = np.searchsorted(cumulative, [rank, rank + 1], side="right")
        above = min(above, len(cumulative) - 1)
        values.append(low + float(below + (position - rank) * (above - below)))
    return tuple(values)
