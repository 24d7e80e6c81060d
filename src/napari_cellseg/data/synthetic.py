"""Synthetic fluorescence nuclei with instance labels, for tests, sample data and demos.

Nuclei are ellipses of varying size, shape, orientation and brightness, some touching,
some overlapping (the later nucleus wins; every label stays one connected region),
with a textured interior, optical blur, a background offset and Poisson + Gaussian
camera noise.  Labels follow the project's convention: 0 background, 1 blob, 2.. objects.
:func:`make_nuclei_stack` draws a z-stack of ellipsoidal nuclei the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.draw import ellipse
from skimage.segmentation import relabel_sequential

from napari_cellseg.io_utils import atomic_write

__all__ = ["make_nuclei", "make_nuclei_stack", "write_dataset"]

_REFERENCE_AREA = 200 * 200
_RADIUS = (6.0, 16.0)  # semi-major axis range in pixels (physical size: does not scale with shape)
_MIN_PIXELS = 12  # fragments and slivers smaller than this are erased


def make_nuclei(
    shape: tuple[int, int] = (200, 200),
    *,
    n_objects: int | None = None,
    blobs: int = 0,
    seed: int | Sequence[int] = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one synthetic fluorescence image of nuclei and its instance labels.

    Parameters
    ----------
    shape
        Image height and width.
    n_objects
        Number of nuclei outside blobs (before overlaps remove a few); default: about
        30 per 200x200 pixels, varying with the seed.
    blobs
        Number of blob regions: clusters of 3-5 touching nuclei whose labels are merged
        into the single value 1 (regions too hard to annotate).  Two clusters that
        happen to touch form one region; a cluster that finds no room is left out.
    seed
        Seed of the numpy random generator; the same seed gives the same image.

    Returns
    -------
    image : ndarray of uint8, shape ``shape``
    labels : ndarray of uint16, shape ``shape``
        0 background, 1 blob, 2, 3, ... one value per nucleus.
    """
    rng = np.random.default_rng(seed)
    if n_objects is None:
        n_objects = max(1, round(rng.uniform(22, 38) * shape[0] * shape[1] / _REFERENCE_AREA))
    nuclei = _place_nuclei(rng, shape, n_objects, blobs)
    labels, signal = _paint(nuclei, shape)
    _keep_largest_parts(labels, signal)
    return _render(rng, signal), _number(labels, first_blob=len(nuclei) + 2)


def make_nuclei_stack(
    shape: tuple[int, int, int] = (16, 200, 200),
    *,
    n_objects: int | None = None,
    seed: int | Sequence[int] = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a synthetic z-stack of fluorescence nuclei and its 3D instance labels.

    The nuclei are those :func:`make_nuclei` places in the plane (no blobs), each an
    ellipsoid across 3-8 slices above and below a random centre slice (z sampled about
    twice as coarsely as x and y, as in a confocal stack); a nucleus drawn later wins
    where two overlap, and every label stays one connected region.  ``n_objects``
    defaults to about 30 per 200 x 200 pixels and 8 slices.  Returns a uint8 image and
    uint16 labels of ``shape`` (0 background, 2, 3, ... one value per nucleus).
    """
    rng = np.random.default_rng(seed)
    depth, plane = shape[0], shape[1:]
    if n_objects is None:
        per_area = rng.uniform(22, 38) * plane[0] * plane[1] / _REFERENCE_AREA
        n_objects = max(1, round(per_area * depth / 8))
    labels = np.zeros(shape, np.int32)
    signal = np.zeros(shape, np.float32)
    for i, (cy, cx, a, b, angle, brightness, _blob) in enumerate(
        _place_nuclei(rng, plane, n_objects, blobs=0)
    ):
        cz, c = rng.uniform(0, depth), rng.uniform(3.0, 8.0) * b / _RADIUS[1]
        for z in range(max(0, int(np.ceil(cz - c))), min(depth, int(cz + c) + 1)):
            shrink = np.sqrt(max(0.0, 1 - ((z - cz) / c) ** 2))
            if shrink * b < 1:
                continue
            page_labels, page_signal = _paint(
                [(cy, cx, a * shrink, b * shrink, angle, brightness, None)], plane
            )
            inside = page_labels > 0
            labels[z][inside] = i + 2
            signal[z][inside] = page_signal[inside] * (0.65 + 0.35 * shrink)
    _keep_largest_parts(labels, signal)
    return _render(rng, signal), _number(labels, first_blob=n_objects + 2)


def _place_nuclei(rng: np.random.Generator, shape: tuple[int, int], n: int, blobs: int) -> list:
    """Ellipse parameters (cy, cx, a, b, angle, brightness, blob index or None).

    Blob nuclei come last.

    Every ellipse holds the disk of its minor radius ``b``, so two nuclei whose centres
    are closer than the sum of their ``b`` overlap or touch.
    """
    placed: list[tuple] = []

    def new_nucleus(near: tuple | None = None) -> tuple | None:
        a = rng.uniform(*_RADIUS)
        b = a * rng.uniform(0.6, 1.0)
        for _ in range(20):
            if near is None:
                cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
            else:  # touching or slightly overlapping ``near``
                d = rng.uniform(0.75, 0.95) * (b + near[3])
                phi = rng.uniform(0, 2 * np.pi)
                cy, cx = near[0] + d * np.sin(phi), near[1] + d * np.cos(phi)
            if all(np.hypot(cy - p[0], cx - p[1]) > 0.65 * (b + p[3]) for p in placed):
                return (cy, cx, a, b, rng.uniform(-np.pi, np.pi), rng.lognormal(0, 0.3))
        return None

    blob_groups = []
    for _ in range(blobs):
        group = [new_nucleus()]
        if group[0] is None:
            continue
        placed.append(group[0])
        for _ in range(rng.integers(2, 5)):
            nucleus = new_nucleus(near=group[rng.integers(len(group))])
            if nucleus:
                group.append(nucleus)
                placed.append(nucleus)
        if len(group) >= 3:
            blob_groups.append(group)
        else:  # too crowded for a blob here: give the space back
            del placed[-len(group) :]
    n_blob = len(placed)
    for _ in range(n):
        near = placed[rng.integers(len(placed))] if placed and rng.random() < 0.4 else None
        nucleus = new_nucleus(near)
        if nucleus:
            placed.append(nucleus)
    singles = [(*p, None) for p in placed[n_blob:]]
    return singles + [(*p, k) for k, group in enumerate(blob_groups) for p in group]


def _paint(nuclei: list, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Label image and noiseless signal; later nuclei win.

    Nucleus ``i`` is labelled ``i + 2``, blob ``k`` (all its nuclei) ``len(nuclei) + 2 + k``.
    """
    labels = np.zeros(shape, np.int32)
    signal = np.zeros(shape, np.float32)
    for i, (cy, cx, a, b, angle, brightness, blob) in enumerate(nuclei):
        rr, cc = ellipse(cy, cx, a, b, shape=shape, rotation=angle)
        # a dome profile: brightest in the middle, dimmer towards the rim
        dy, dx = rr - cy, cc - cx
        u = (dy * np.cos(angle) + dx * np.sin(angle)) / a
        v = (-dy * np.sin(angle) + dx * np.cos(angle)) / b
        labels[rr, cc] = i + 2 if blob is None else len(nuclei) + 2 + blob
        signal[rr, cc] = brightness * (1 - 0.35 * np.clip(u * u + v * v, 0, 1))
    return labels, signal


def _keep_largest_parts(labels: np.ndarray, signal: np.ndarray) -> None:
    """Make every label one connected region: erase the smaller pieces and tiny slivers."""
    for value, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        parts, n = ndimage.label(labels[box] == value)
        sizes = np.bincount(parts.ravel())[1:]
        keep = np.argmax(sizes) + 1 if sizes.max() >= _MIN_PIXELS else -1
        erase = (parts > 0) & (parts != keep)
        labels[box][erase] = 0
        signal[box][erase] = 0


def _render(rng: np.random.Generator, signal: np.ndarray) -> np.ndarray:
    """Texture, blur, background and camera noise; returns uint8."""
    texture = ndimage.gaussian_filter(rng.standard_normal(signal.shape, np.float32), 1.2)
    texture /= texture.std() + 1e-6
    image = signal * (1 + 0.18 * texture)
    blur = rng.uniform(0.8, 1.6)  # half as much across the slices of a stack
    image = ndimage.gaussian_filter(image, (blur / 2,) * (image.ndim - 2) + (blur, blur))
    # background: offset plus a gentle gradient (uneven illumination)
    yy, xx = np.mgrid[0 : signal.shape[-2], 0 : signal.shape[-1]] / max(signal.shape[-2:])
    gy, gx = rng.uniform(-0.03, 0.03, 2)
    image += rng.uniform(0.03, 0.1) + gy * yy + gx * xx
    photons = rng.uniform(60, 150)  # photons at brightness 1: sets the shot noise
    counts = rng.poisson(np.clip(image, 0, None) * photons).astype(np.float32)
    counts += rng.normal(0, 1.5, signal.shape)  # read noise
    return np.clip(counts * (110 / photons), 0, 255).round().astype(np.uint8)


def _number(labels: np.ndarray, first_blob: int) -> np.ndarray:
    """Number the nuclei 2, 3, ... without gaps; blobs (labels from ``first_blob``) become 1."""
    blob = labels >= first_blob
    objects = np.where(blob, 0, labels)
    numbered = relabel_sequential(objects, offset=2)[0] if objects.any() else objects
    numbered[blob] = 1
    return numbered.astype(np.uint16)


def write_dataset(
    folder: str | Path,
    n_images: int,
    *,
    shape: tuple[int, int] = (200, 200),
    blobs: int = 0,
    seed: int = 0,
    multipage: bool = False,
) -> Path:
    """Write a synthetic data set: ``folder/images`` and ``folder/labels``.

    Parameters
    ----------
    folder
        Data set folder to create (existing files of the same names are replaced).
    n_images
        Number of image/label pairs (pages when ``multipage``).
    shape
        Height and width of each image.
    blobs
        Blob regions per image (see :func:`make_nuclei`).
    seed
        Image ``i`` is ``make_nuclei(seed=(seed, i))``.
    multipage
        Write one multipage TIFF pair ``synthetic.tif`` instead of PNG pairs
        ``synthetic_000.png``, ...  (labels as uint16).

    Returns
    -------
    Path
        ``folder``.
    """
    from napari_cellseg.data.io import write_tiff

    folder = Path(folder)
    pairs = [make_nuclei(shape, blobs=blobs, seed=(seed, i)) for i in range(n_images)]
    for kind, arrays in zip(("images", "labels"), zip(*pairs, strict=True), strict=True):
        if multipage:
            write_tiff(folder / kind / "synthetic.tif", np.stack(arrays))
        else:
            for i, array in enumerate(arrays):
                _write_png(folder / kind / f"synthetic_{i:03d}.png", array)
    return folder


def _write_png(path: Path, array: np.ndarray) -> None:
    import imageio.v3 as iio

    atomic_write(path, lambda tmp: iio.imwrite(tmp, array, extension=".png"))
