"""Instance labels from the object and boundary probability maps (seeded watershed).

The training targets (:func:`napari_cellseg.data.targets.make_targets`) split each
object into its core (``objects``) and an inner rim (``boundaries``), so a pixel belongs
to some object with probability ``objects + boundaries`` (exactly ``1 - p(background)``
for the U-Net's softmax).  Seeds are the connected components of confident core pixels
away from boundaries (``objects > obj_threshold`` and ``boundaries < bnd_threshold``).
Each seed grows by a watershed on the boundary map, restricted to the foreground
(``objects + boundaries > obj_threshold``), so touching objects split along the ridge
of the boundary map.  A foreground component without any seed (a small object that is
all rim) becomes one object.  Objects smaller than ``min_size`` pixels are removed last
and the labels renumbered 1, 2, ...
"""

from __future__ import annotations

import numpy as np

__all__ = ["instances", "watershed_labels", "remove_small"]


def instances(
    objects: np.ndarray,
    boundaries: np.ndarray,
    *,
    obj_threshold: float,
    bnd_threshold: float,
    min_size: int,
) -> np.ndarray:
    """Instance labels from probability maps.

    Parameters
    ----------
    objects, boundaries : np.ndarray
        Probabilities in [0, 1], (H, W) or a stack (Z, H, W) segmented slice by slice.
    obj_threshold : float
        Object probability above which a core pixel may seed an object, and foreground
        probability (``objects + boundaries``) above which a pixel joins an object.
    bnd_threshold : float
        Boundary probability below which a foreground pixel may seed an object.
    min_size : int
        Smallest object kept, in pixels (per slice).

    Returns
    -------
    np.ndarray
        int32 labels of the input's shape, 0 background.  In a stack every object has
        its own value across all slices.

    Examples
    --------
    >>> objects = np.zeros((5, 9), np.float32)
    >>> objects[1:4, 1:8] = 1.0
    >>> boundaries = np.zeros_like(objects)
    >>> boundaries[:, 4] = 1.0
    >>> labels = instances(objects, boundaries, obj_threshold=0.5, bnd_threshold=0.5, min_size=1)
    >>> labels.max(), labels.dtype
    (np.int32(2), dtype('int32'))
    """
    if objects.shape != boundaries.shape:
        raise ValueError(
            f"objects {objects.shape} and boundaries {boundaries.shape} differ in shape"
        )
    if objects.ndim == 2:
        return remove_small(
            watershed_labels(objects, boundaries, obj_threshold, bnd_threshold), min_size
        )
    out = np.zeros(objects.shape, np.int32)
    offset = 0
    for z in range(objects.shape[0]):
        page = instances(
            objects[z],
            boundaries[z],
            obj_threshold=obj_threshold,
            bnd_threshold=bnd_threshold,
            min_size=min_size,
        )
        out[z] = np.where(page > 0, page + offset, 0)
        offset = int(out[z].max(initial=offset))
    return out


def watershed_labels(
    objects: np.ndarray, boundaries: np.ndarray, obj_threshold: float, bnd_threshold: float
) -> np.ndarray:
    """The seeded watershed of one 2D slice, before small objects are removed (int32)."""
    from scipy import ndimage as ndi
    from skimage.segmentation import watershed

    foreground = objects + boundaries > obj_threshold
    markers, n_seeds = ndi.label((objects > obj_threshold) & (boundaries < bnd_threshold))
    components, n_components = ndi.label(foreground)
    seeded = np.zeros(n_components + 1, bool)
    seeded[components[markers > 0]] = True
    unseeded = ~seeded[components] & foreground
    markers[unseeded] = components[unseeded] + n_seeds
    labels = watershed(boundaries, markers, mask=foreground)
    return labels.astype(np.int32, copy=False)


def remove_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Remove objects of fewer than ``min_size`` pixels and renumber the rest 1, 2, ..."""
    from skimage.segmentation import relabel_sequential

    sizes = np.bincount(labels.ravel())
    small = sizes < min_size
    small[0] = True
    labels = np.where(small[labels], 0, labels)
    return relabel_sequential(labels)[0].astype(np.int32, copy=False)
