"""How much to trust each predicted object: a per-object confidence from the maps.

Each instance gets three cues, each in [0, 1] and high when the object looks right:

- ``presence``: the mean foreground probability (``objects + boundaries``) over its
  pixels: debris and faint false objects score low;
- ``unity``: one minus the strongest boundary ridge *inside* it (the 90th percentile of
  the boundary map over its interior, its rim left out): two nuclei segmented as one
  have a ridge between them;
- ``separation``: the mean boundary probability where it touches another object: one
  nucleus cut in two has no ridge along the cut (1 for an object touching none).

Its ``confidence`` is their product.  With test-time augmentation each cue is computed
on the averaged maps; ``agreement`` (see :func:`agreement`) may multiply in too.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["object_confidence", "agreement", "CUES"]

CUES = ("presence", "unity", "separation")
RIDGE_PERCENTILE = 90
"""The interior ridge is this percentile of the boundary map inside an object."""


def object_confidence(
    labels: np.ndarray, objects: np.ndarray, boundaries: np.ndarray
) -> dict[str, np.ndarray]:
    """The confidence of every object of a 2D ``labels`` from its probability maps.

    Returns
    -------
    dict
        ``label`` (the objects' values, ascending), ``confidence`` and the cues
        (:data:`CUES`), one value per object.
    """
    labels = np.asarray(labels)
    ids = np.unique(labels[labels > 0])
    out = {"label": ids}
    if not ids.size:
        return {**out, "confidence": np.zeros(0), **{cue: np.zeros(0) for cue in CUES}}
    foreground = np.clip(np.asarray(objects) + np.asarray(boundaries), 0.0, 1.0)
    out["presence"] = ndi.mean(foreground, labels, ids)
    out["unity"] = 1.0 - _interior_ridge(labels, np.asarray(boundaries), ids)
    out["separation"] = _separation(labels, np.asarray(boundaries), ids)
    out["confidence"] = out["presence"] * out["unity"] * out["separation"]
    return {
        key: np.asarray(value, dtype=np.float64 if key != "label" else ids.dtype)
        for key, value in out.items()
    }


def _interior_ridge(labels, boundaries, ids) -> np.ndarray:
    """The 90th percentile of the boundary map over each object's interior (its pixels
    whose 4 neighbours are all its own); 0 for an object all rim."""
    padded = np.pad(labels, 1)
    inner = labels.copy()
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        inner[padded[dy : dy + labels.shape[0], dx : dx + labels.shape[1]] != labels] = 0
    ridge = np.zeros(ids.size)
    slices = ndi.find_objects(inner)
    index = {int(label): i for i, label in enumerate(ids)}
    for label, box in enumerate(slices, start=1):
        if box is None or label not in index:
            continue
        values = boundaries[box][inner[box] == label]
        ridge[index[label]] = np.percentile(values, RIDGE_PERCENTILE)
    return ridge


def _separation(labels, boundaries, ids) -> np.ndarray:
    """The mean boundary probability over each object's pixels that touch another object
    (4-neighbours); 1 for an object that touches none."""
    size = int(labels.max()) + 1
    total, count = np.zeros(size), np.zeros(size)
    for before, after in ((np.s_[:-1], np.s_[1:]), (np.s_[:, :-1], np.s_[:, 1:])):
        a, b = labels[before], labels[after]
        touch = (a > 0) & (b > 0) & (a != b)
        for side, values in ((a, boundaries[before]), (b, boundaries[after])):
            total += np.bincount(side[touch], weights=values[touch], minlength=size)
            count += np.bincount(side[touch], minlength=size)
    separation = np.ones(ids.size)
    touching = count[ids] > 0
    separation[touching] = total[ids][touching] / count[ids][touching]
    return separation


def agreement(labels: np.ndarray, augmented: list[np.ndarray]) -> np.ndarray:
    """For every object of ``labels``, the mean over ``augmented`` instance labels (the
    segmentations of each augmented prediction) of its best IoU there."""
    raise NotImplementedError
