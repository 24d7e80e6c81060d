"""Blob regions of a label image: find them, measure them, and write a proposed split back.

A blob is a connected region of the blob value (1 by default) in a label image: a
cluster of cells too hard to annotate one by one.  Regions are connected within each
2D slice only (8-connectivity), so in a stack ``(Z, H, W)`` every blob lies in one
slice.  Everything here is numpy; the napari blob inspector only displays the results.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_cellseg.data.labels import median_object_area
from napari_cellseg.errors import DataError

__all__ = [
    "Blob",
    "BlobSummary",
    "find_blobs",
    "summarize",
    "crop_box",
    "split_blob",
    "SPLIT_CONTEXT",
    "split_values",
]


@dataclass(frozen=True)
class Blob:
    """One blob region.

    Attributes
    ----------
    id : int
        Its value in the component map returned by :func:`find_blobs` (1, 2, ...).
    area : int
        Pixels in the region.
    bbox : tuple of slice
        Bounding box, one slice per axis of the label image.
    cells : float
        Estimated number of cells: ``area`` / median object area (NaN without objects).
    """

    id: int
    area: int
    bbox: tuple[slice, ...]
    cells: float

    @property
    def centre(self) -> tuple[float, ...]:
        """Centre of the bounding box in data coordinates (pixel centres)."""
        return tuple((s.start + s.stop - 1) / 2 for s in self.bbox)

    @property
    def extent(self) -> tuple[int, ...]:
        """Size of the bounding box along each axis."""
        return tuple(s.stop - s.start for s in self.bbox)


@dataclass(frozen=True)
class BlobSummary:
    """Blob count and ``blob_pixels / annotated_pixels`` (0 when nothing is annotated)."""

    n_blobs: int
    blob_pixels: int
    annotated_pixels: int

    @property
    def share(self) -> float:
        """Share of the annotated (non-zero) pixels that belong to blobs."""
        return self.blob_pixels / self.annotated_pixels if self.annotated_pixels else 0.0


def _slice_structure(ndim: int) -> np.ndarray:
    """Full connectivity in the last two axes, none across the leading ones."""
    structure = np.zeros((3,) * ndim, bool)
    structure[(1,) * (ndim - 2)] = True
    return structure


def find_blobs(labels: np.ndarray, blob_label: int = 1) -> tuple[np.ndarray, list[Blob]]:
    """Connected regions of ``blob_label`` and their statistics.

    Parameters
    ----------
    labels : np.ndarray
        Integer label image, (H, W) or a stack (..., H, W).
    blob_label : int
        The value that marks blobs.

    Returns
    -------
    components : np.ndarray
        int32 map of ``labels``' shape: 0 outside blobs, ``Blob.id`` inside.
    blobs : list of Blob
        One per region, ordered by id (raster order of their first pixel).
    """
    from scipy import ndimage as ndi

    labels = np.asarray(labels)
    if labels.ndim < 2:
        raise DataError(f"A label image needs at least 2 dimensions, got shape {labels.shape}.")
    components, n = ndi.label(labels == blob_label, structure=_slice_structure(labels.ndim))
    components = components.astype(np.int32, copy=False)
    areas = np.bincount(components.ravel(), minlength=n + 1)
    per_cell = median_object_area(labels, blob_label)
    blobs = [
        Blob(id=i, area=int(areas[i]), bbox=tuple(box), cells=float(areas[i] / per_cell))
        for i, box in enumerate(ndi.find_objects(components), start=1)
    ]
    return components, blobs


def summarize(labels: np.ndarray, blobs: list[Blob]) -> BlobSummary:
    """Number of blobs and blob pixels against all annotated (non-zero) pixels."""
    return BlobSummary(
        n_blobs=len(blobs),
        blob_pixels=sum(b.area for b in blobs),
        annotated_pixels=int(np.count_nonzero(labels)),
    )


def crop_box(bbox: tuple[slice, ...], shape: tuple[int, ...], margin: int) -> tuple[slice, ...]:
    """``bbox`` grown by ``margin`` pixels in the last two axes, clipped to ``shape``.

    Examples
    --------
    >>> crop_box((slice(2, 3), slice(5, 9), slice(0, 4)), (4, 10, 10), 2)
    (slice(2, 3, None), slice(3, 10, None), slice(0, 6, None))
    """
    grown = [
        slice(max(s.start - margin, 0), min(s.stop + margin, size))
        for s, size in zip(bbox[-2:], shape[-2:], strict=True)
    ]
    return (*bbox[:-2], *grown)


SPLIT_CONTEXT = 64
"""Pixels of image around a blob that the network sees when proposing its split (with 16,
the blob inspector's first value, AP@0.5 was 0.70 instead of 0.78 on
``benchmarks/blob_split.py``; with 96, 0.76)."""


def split_blob(instances: np.ndarray, blob_mask: np.ndarray, min_size: int) -> np.ndarray:
    """The cells proposed for a blob: the predicted objects inside it, grown to cover it.

    Objects are cut to the blob and pieces under ``min_size`` pixels dropped; then every
    pixel of the blob joins the nearest remaining object, so that no fragment stays a
    blob (a blob without any object becomes one cell).

    Returns int32 labels 1, 2, ... of the crop's shape, 0 outside the blob.

    Examples
    --------
    >>> found = np.array([[2, 2, 0, 0, 5, 5], [2, 2, 0, 9, 5, 5]])
    >>> split_blob(found, np.ones((2, 6), bool), min_size=2)
    array([[1, 1, 1, 2, 2, 2],
           [1, 1, 1, 2, 2, 2]], dtype=int32)
    """
    from scipy import ndimage as ndi
    from skimage.segmentation import relabel_sequential

    inside = np.where(blob_mask, instances, 0)
    areas = np.bincount(inside.ravel().astype(np.int64))
    kept = np.where(areas[inside] >= max(min_size, 1), inside, 0)
    if not kept.any():
        return blob_mask.astype(np.int32)
    _, nearest = ndi.distance_transform_edt(kept == 0, return_indices=True)
    filled = np.where(blob_mask, kept[tuple(nearest)], 0)
    return relabel_sequential(filled)[0].astype(np.int32, copy=False)


def split_values(
    labels: np.ndarray, box: tuple[slice, ...], proposal: np.ndarray
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Where and what to write into ``labels`` to accept ``proposal`` (cropped at ``box``).

    Proposal object ``k`` gets the new value ``labels.max() + k``; pixels the proposal
    leaves empty keep their value.

    Returns
    -------
    indices : tuple of np.ndarray
        Fancy index into ``labels`` (for ``Labels.data_setitem``).
    values : np.ndarray
        The new values, in ``labels``' dtype.

    Raises
    ------
    DataError
        When ``labels``' dtype cannot hold the new values.
    """
    local = np.nonzero(proposal)
    indices = tuple(idx + s.start for idx, s in zip(local, box, strict=True))
    values = proposal[local].astype(np.int64) + int(labels.max())
    if values.size and values.max() > np.iinfo(labels.dtype).max:
        raise DataError(
            f"The labels ({labels.dtype}) cannot hold label {values.max()}; convert the layer "
            "to a larger integer type (right-click > Convert datatype > uint32)."
        )
    return indices, values.astype(labels.dtype)
