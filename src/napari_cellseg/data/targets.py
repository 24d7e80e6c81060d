"""Training targets from an instance label image: objects, boundaries, ignore mask.

Label convention: 0 background, ``blob_label`` (default 1) a blob region too hard to
annotate, every other value one object.  Blob pixels are in the ignore mask and are
never objects nor boundaries.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.segmentation import find_boundaries

__all__ = [
    "make_targets",
    "separation_mask",
    "unet_classes",
    "remove_blobs",
]

_CROSS = ndimage.generate_binary_structure(2, 1)

SEPARATION_RADIUS = 3
"""Pixels within this many pixels (along each axis) of two different objects separate them."""


def make_targets(
    labels2d: np.ndarray,
    *,
    blob_label: int | None = 1,
    boundary_thickness: int = 2,
    touching_boundaries: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Objects, boundaries and ignore masks of a 2D label image.

    Parameters
    ----------
    labels2d
        ``(H, W)`` integer labels.
    blob_label
        Label value of blobs; None: every non-zero value is an object.
    boundary_thickness
        Width in pixels of the boundary band, inside each object.
    touching_boundaries
        Mark only the boundaries between two touching objects, not those facing
        background or blobs.

    Returns
    -------
    objects, boundaries, ignore : ndarray of uint8 (0 or 1), shape ``(H, W)``
        A boundary pixel is an object pixel within ``boundary_thickness`` pixels
        (4-connected steps) of a pixel with another value (any other value, or only
        another object's with ``touching_boundaries``); the image border is no
        boundary.  ``objects`` are the object pixels that are not boundaries;
        ``ignore`` the blob pixels.

    Examples
    --------
    >>> labels = np.zeros((4, 6), int); labels[:, :3] = 2; labels[:, 3:] = 3
    >>> make_targets(labels, boundary_thickness=1)[1][0]
    array([0, 0, 1, 1, 0, 0], dtype=uint8)
    """
    labels2d = np.asarray(labels2d)
    ignore = labels2d == blob_label if blob_label is not None else np.zeros(labels2d.shape, bool)
    instances = np.where(ignore, 0, labels2d)
    foreground = instances > 0
    if touching_boundaries:
        # a neighbour with a larger or a smaller (non-zero) value than the pixel
        larger = ndimage.grey_dilation(instances, footprint=_CROSS) > instances
        others = np.where(foreground, instances, np.iinfo(instances.dtype).max)
        smaller = ndimage.grey_erosion(others, footprint=_CROSS) < instances
        edge = foreground & (larger | smaller)
    else:
        edge = find_boundaries(instances, mode="inner") & foreground
    boundaries = edge
    if boundary_thickness > 1 and edge.any():
        boundaries = ndimage.binary_dilation(
            edge, _CROSS, iterations=boundary_thickness - 1, mask=foreground
        )
    objects = foreground & ~boundaries
    return objects.astype(np.uint8), boundaries.astype(np.uint8), ignore.astype(np.uint8)


def separation_mask(labels2d: np.ndarray, *, blob_label: int | None = 1) -> np.ndarray:
    """Pixels within ``SEPARATION_RADIUS`` of two different objects, uint8 (0 or 1).

    The pixels that keep touching or nearly touching objects apart: both objects' rims
    where they meet and the narrow background gaps between them, the regions the U-Net
    paper's weight map stresses.  "Within" means inside the ``2 r + 1`` square window
    around the pixel (separable filters: fast).  Blob pixels are never separation pixels,
    and blobs separate nothing.

    Examples
    --------
    >>> labels = np.zeros((1, 12), int); labels[0, :4] = 2; labels[0, 6:] = 3
    >>> separation_mask(labels)[0]
    array([0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0], dtype=uint8)
    """
    labels2d = np.asarray(labels2d)
    ignore = labels2d == blob_label if blob_label is not None else np.zeros(labels2d.shape, bool)
    instances = np.where(ignore, 0, labels2d).astype(np.int64)
    size = 2 * SEPARATION_RADIUS + 1
    largest = ndimage.maximum_filter(instances, size=size)
    # background as the largest label + 1, not as int64's maximum: scipy's minimum_filter
    # computes in float64, where that maximum does not survive the round trip
    top = int(instances.max(initial=0)) + 1
    smallest = ndimage.minimum_filter(np.where(instances > 0, instances, top), size=size)
    return ((largest > 0) & (smallest < top) & (largest != smallest) & ~ignore).astype(np.uint8)


def unet_classes(objects: np.ndarray, boundaries: np.ndarray) -> np.ndarray:
    """U-Net class map: 0 background, 1 object, 2 boundary (boundary wins), uint8."""
    classes = (np.asarray(objects) > 0).astype(np.uint8)
    classes[np.asarray(boundaries) > 0] = 2
    return classes


def remove_blobs(
    image: np.ndarray, labels: np.ndarray, blob_label: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Blank blob regions to 0 in copies of ``image`` and ``labels`` (the seed's behaviour)."""
    blob = labels == blob_label
    return np.where(blob, 0, image).astype(image.dtype), np.where(blob, 0, labels)
