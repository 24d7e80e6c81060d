"""Random augmentation of an image and its label image, seedable.

One draw applies flips, a 90-degree rotation (square images), and a single affine
warp (scale 0.8-1.2, rotation +-30 degrees, shear +-10 degrees, translation +-10 %
of the size), plus optionally a smooth elastic displacement field and a random gamma
of the (normalised) intensities, which changes how dim objects are next to bright ones.
The image is interpolated linearly, the labels with nearest neighbour (so they stay
integer with no new values: derive targets from the warped labels); both are mirrored
at the borders, so image and labels agree everywhere.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.transform import AffineTransform

__all__ = ["augment_pair"]

SCALE = (0.8, 1.2)
ROTATION = np.deg2rad(30)
SHEAR = np.deg2rad(10)
TRANSLATION = 0.1  # fraction of the image size
ELASTIC_GRID = 5  # control points per side of the elastic displacement field
ELASTIC_STRENGTH = 0.015  # std of a control point's displacement, fraction of the size
GAMMA = (0.6, 1.6)  # range of the random gamma, drawn log-uniform


def augment_pair(
    image: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    *,
    elastic: bool = False,
    gamma: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply one random geometric transform to ``image`` and ``labels``.

    Parameters
    ----------
    image
        ``(C, H, W)`` float32.
    labels
        ``(H, W)`` integer labels.
    rng
        Source of all randomness: the same generator state gives the same result.
    elastic
        Add a smooth random displacement field (elastic deformation).
    gamma
        Raise the intensities to a random power ``g`` in ``GAMMA`` (sign kept:
        ``sign(x) |x| ** g``, so values below the normalisation's 0 stay below it).

    Returns
    -------
    image : ndarray of float32, ``(C, H, W)``
    labels : ndarray, ``(H, W)``, dtype of ``labels``, values a subset of the input's
    """
    h, w = labels.shape
    if rng.random() < 0.5:
        image, labels = image[..., ::-1], labels[..., ::-1]
    if rng.random() < 0.5:
        image, labels = image[..., ::-1, :], labels[..., ::-1, :]
    k = int(rng.integers(4)) if h == w else 2 * int(rng.integers(2))
    image, labels = np.rot90(image, k, axes=(-2, -1)), np.rot90(labels, k)

    coords = _affine_coordinates(rng, (h, w))
    if elastic:
        coords += _elastic_displacement(rng, (h, w))
    warped = np.stack(
        [ndimage.map_coordinates(channel, coords, order=1, mode="mirror") for channel in image]
    )
    labels = ndimage.map_coordinates(labels, coords, order=0, mode="mirror")
    if gamma:
        power = np.exp(rng.uniform(*np.log(GAMMA)))
        warped = np.sign(warped) * np.abs(warped) ** power
    return warped.astype(np.float32), labels


def _affine_coordinates(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Input (row, col) coordinates of each output pixel of a random affine about the centre."""
    h, w = shape
    scale = rng.uniform(*SCALE, 2) if rng.random() < 0.5 else np.full(2, rng.uniform(*SCALE))
    transform = AffineTransform(
        scale=scale,
        rotation=rng.uniform(-ROTATION, ROTATION),
        shear=rng.uniform(-SHEAR, SHEAR),
        translation=rng.uniform(-TRANSLATION, TRANSLATION, 2) * (w, h),
    )
    # the transform maps input (x, y) to output: each output pixel reads from its inverse
    matrix = np.linalg.inv(transform.params)
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    xy = np.stack([cols - centre[0], rows - centre[1]])
    source = np.tensordot(matrix[:2, :2], xy, axes=1) + (matrix[:2, 2] + centre)[:, None, None]
    return source[::-1].copy()


def _elastic_displacement(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A smooth random (row, col) displacement field: cubic upsampling of a coarse grid."""
    coarse = rng.normal(0, ELASTIC_STRENGTH * max(shape), (2, ELASTIC_GRID, ELASTIC_GRID))
    zoom = (shape[0] / ELASTIC_GRID, shape[1] / ELASTIC_GRID)
    return np.stack(
        [
            ndimage.zoom(c, zoom, order=3, mode="nearest", grid_mode=True)[: shape[0], : shape[1]]
            for c in coarse
        ]
    )
