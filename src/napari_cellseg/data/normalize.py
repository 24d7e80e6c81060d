"""Intensity normalisation of the network input."""

from __future__ import annotations

import numpy as np

__all__ = ["normalize_image", "PERCENTILES"]

PERCENTILES = (1.0, 99.8)


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
        constant slice becomes all zeros (never NaN).
    """
    image = np.asarray(image, dtype=np.float64)
    lo, hi = np.percentile(image, PERCENTILES, axis=(-2, -1), keepdims=True)
    low, high = image.min(axis=(-2, -1), keepdims=True), image.max(axis=(-2, -1), keepdims=True)
    flat = hi <= lo
    lo, hi = np.where(flat, low, lo), np.where(flat, high, hi)
    scale = np.where(hi > lo, hi - lo, 1.0)
    return ((image - lo) / scale).astype(np.float32)
