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
    """The seeded watershed of one 2D slice, before small objects are removed (int32).

    Seeds are numbered 1, 2, ... in raster order of their first pixel; an unseeded
    foreground component takes the number of seeds plus its own component number.
    A component holding one seed or none is labelled whole; the watershed runs only on
    the bounding box of each component holding several seeds.  That equals one watershed
    over the whole slice unless seed pixels tie exactly in boundary value: skimage then
    breaks the tie by its heap's layout, which depends on the other components.
    """
    from scipy import ndimage as ndi
    from skimage.segmentation import watershed

    seed_mask = (objects > obj_threshold) & (boundaries < bnd_threshold)
    foreground = objects + boundaries > obj_threshold  # holds every seed, as boundaries >= 0
    seeds, n_seeds = ndi.label(seed_mask, output=np.int32)
    components, n_components = ndi.label(foreground, output=np.int32)
    seed_pixels = np.flatnonzero(seeds)
    component_of_seed = np.zeros(n_seeds + 1, np.int32)
    component_of_seed[seeds.ravel()[seed_pixels]] = components.ravel()[seed_pixels]
    label_of = np.arange(n_seeds, n_seeds + n_components + 1, dtype=np.int32)
    label_of[component_of_seed] = np.arange(n_seeds + 1, dtype=np.int32)
    label_of[0] = 0
    labels = label_of[components]
    several = np.flatnonzero(np.bincount(component_of_seed[1:], minlength=n_components + 1) > 1)
    boxes = ndi.find_objects(components) if len(several) else []
    for c in several:
        box = boxes[c - 1]
        inside = components[box] == c
        flooded = watershed(boundaries[box], seeds[box], mask=inside)
        labels[box][inside] = flooded[inside]
    return labels


def remove_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Remove objects of fewer than ``min_size`` pixels and renumber the rest 1, 2, ...

    The renumbering keeps the order of the label values (int32 result).
    """
    keep = np.bincount(labels.ravel()) >= max(min_size, 1)
    keep[0] = False
    return (np.cumsum(keep, dtype=np.int32) * keep)[labels]
