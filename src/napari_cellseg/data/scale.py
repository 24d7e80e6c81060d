"""Object-size normalisation: rescale images so their objects have one typical diameter.

Nuclei in one data set can differ tenfold in size between microscopes and
magnifications.  A network that always sees its objects at one diameter needs fewer
filters and a smaller receptive field to split touching objects than one that must
learn every scale.  With the setting ``object_diameter`` D > 0 every training image is
rescaled by ``D / d``, where ``d`` is the median equivalent diameter of its annotated
objects (``2 sqrt(area / pi)``); prediction rescales by ``D / d`` with ``d`` given by
the user or estimated from a first prediction, and maps the outputs back.
"""

from __future__ import annotations

import numpy as np

from napari_cellseg.data.trim import resize_to

__all__ = [
    "FACTOR_LIMITS",
    "scale_factor",
    "scaled_shape",
    "rescale",
]

FACTOR_LIMITS = (0.2, 4.0)
"""Smallest and largest rescaling factor (a mis-estimate cannot blow an image up further)."""


def scale_factor(target: float, diameter: float | None) -> float:
    """The factor that brings objects of ``diameter`` to ``target`` pixels (clipped).

    No objects (``diameter`` None or 0) leave the image as it is (factor 1).
    """
    if not diameter:
        return 1.0
    return float(np.clip(target / diameter, *FACTOR_LIMITS))


def scaled_shape(shape: tuple[int, ...], factor: float) -> tuple[int, int]:
    """``(H, W)`` of the last two axes of ``shape`` rescaled by ``factor`` (at least 1 pixel)."""
    return tuple(max(1, round(n * factor)) for n in shape[-2:])


def rescale(array: np.ndarray, factor: float, *, order: int = 1) -> np.ndarray:
    """Rescale the last two axes of ``array`` by ``factor`` (``order`` 0 for labels)."""
    if factor == 1.0:
        return array
    return resize_to(array, scaled_shape(array.shape, factor), order)
