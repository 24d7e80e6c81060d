"""Whole-image statistics of a large image, from a strided sample read once.

Every block is scaled by one intensity range (as the in-memory path scales an image), and
the objects' diameter is estimated once, on the region of the image that holds the most
foreground (a slide's centre may be empty).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from napari_cellseg.bigimage.tasks import read_region
from napari_cellseg.data.normalize import scale_to_range
from napari_cellseg.errors import DataError

__all__ = ["Sample", "strided_sample", "diameter_region", "estimate_diameter"]

log = logging.getLogger(__name__)

SAMPLE_PIXELS = 4_000_000
"""Pixels of the strided sample the statistics are computed on."""

DIAMETER_SAMPLE = 1024
"""Side of the region the objects' diameter is estimated on."""


@dataclass(frozen=True)
class Sample:
    """Every ``stride``-th row and column of an image, and its intensity range."""

    pixels: np.ndarray
    stride: int
    low: float
    high: float


def strided_sample(image) -> Sample:
    """Read every k-th row and column of a (lazy) 2D image, :data:`SAMPLE_PIXELS` pixels at
    most; its range is the 1st..99.8th percentile of the finite pixels (min..max when they
    coincide)."""
    from napari_cellseg.data.normalize import PERCENTILES, percentiles

    stride = max(1, math.ceil(math.sqrt(image.shape[0] * image.shape[1] / SAMPLE_PIXELS)))
    pixels = read_region(image[::stride, ::stride])
    values = pixels[np.isfinite(pixels)] if pixels.dtype.kind == "f" else pixels.ravel()
    if values.size == 0:
        raise DataError("The image holds no finite pixel.")
    low, high = percentiles(values[np.newaxis], PERCENTILES)
    if high <= low:
        low, high = float(values.min()), float(values.max())
    return Sample(pixels, stride, float(low), float(high))


def diameter_region(sample: Sample, shape: tuple[int, int]) -> tuple[slice, slice]:
    """The :data:`DIAMETER_SAMPLE` square of the image with the most pixels above the middle
    of its intensity range, as the sample shows (the centre when none is brighter)."""
    from scipy.ndimage import uniform_filter

    pixels = np.nan_to_num(sample.pixels.astype(np.float32), nan=sample.low)
    bright = (pixels > (sample.low + sample.high) / 2).astype(np.float32)
    side = max(1, DIAMETER_SAMPLE // sample.stride)
    density = uniform_filter(bright, size=side, mode="constant")
    centre = np.array(density.shape) // 2
    if density.max() > density[tuple(centre)]:
        centre = np.array(np.unravel_index(np.argmax(density), density.shape))
    region = []
    for middle, size in zip(centre * sample.stride, shape, strict=True):
        start = int(min(max(0, middle - DIAMETER_SAMPLE // 2), max(0, size - DIAMETER_SAMPLE)))
        region.append(slice(start, min(size, start + DIAMETER_SAMPLE)))
    return tuple(region)


def estimate_diameter(image, predictor, sample: Sample) -> float:
    """The objects' diameter the model measures on :func:`diameter_region` of the (lazy)
    2D ``image``."""
    region = diameter_region(sample, image.shape)
    pixels = scale_to_range(read_region(image[region]), sample.low, sample.high)
    channels = predictor.config.channels
    diameter = predictor.estimate_diameter(np.repeat(pixels[np.newaxis], channels, axis=0))
    log.info(
        "Objects' diameter estimated on rows %d-%d, columns %d-%d: %.1f pixels.",
        region[0].start, region[0].stop, region[1].start, region[1].stop, diameter,
    )  # fmt: skip
    return diameter
