"""Per-object measurements of instance labels: the table a biologist counts and compares.

One row per object (per page of a stack): its label value, area in pixels, centroid and
mean intensity in the image it was segmented from (the raw intensities, not the network's
normalised input).  The CLI writes it as ``<name>_measurements.csv``; the Predict dock
puts it on the instances layer as its features (napari shows them when the pointer is on
an object, and Layers > Metadata > Features table widget lists, sorts and saves them).
"""

from __future__ import annotations

import numpy as np

from napari_cellseg.engine.evaluate import sequential_labels

__all__ = ["measure_objects", "table_csv"]


def measure_objects(labels: np.ndarray, image: np.ndarray) -> dict[str, np.ndarray]:
    """The measurements of every object: one array per column, one row per object.

    Columns ``label``, ``page`` (stacks only), ``area``, ``centroid_y``, ``centroid_x``
    and ``mean_intensity``.  ``labels`` and ``image`` are (H, W) or (Z, H, W) of one
    shape; 0 is background, and an object of a stack is measured on each page it is on.

    >>> labels = np.array([[0, 2, 2], [0, 0, 5]])
    >>> table = measure_objects(labels, np.array([[9.0, 1.0, 3.0], [0.0, 0.0, 4.0]]))
    >>> {key: values.tolist() for key, values in table.items()}  # doctest: +NORMALIZE_WHITESPACE
    {'label': [2, 5], 'area': [2, 1], 'centroid_y': [0.0, 1.0], 'centroid_x': [1.5, 2.0],
     'mean_intensity': [2.0, 4.0]}
    """
    if labels.shape != image.shape:
        raise ValueError(f"labels {labels.shape} and image {image.shape} differ in shape")
    if not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
        raise ValueError(
            f"labels must be non-negative integers (these are {labels.dtype}, "
            f"the smallest {labels.min()})"
        )
    stack = labels.ndim == 3
    pages = zip(labels, image, strict=True) if stack else [(labels, image)]
    columns: dict[str, list] = {}
    for z, (page, values) in enumerate(pages):
        index, found = sequential_labels(page)  # any label values, even huge ones
        area = np.bincount(index, minlength=len(found) + 1)[1:]
        rows, cols = np.divmod(np.arange(index.size), page.shape[1])
        sums = (np.bincount(index, w, len(found) + 1)[1:] for w in (rows, cols, values.ravel()))
        centroid_y, centroid_x, intensity = (s / area for s in sums)
        measured = {
            "label": found,
            "page": np.full(len(found), z),
            "area": area,
            "centroid_y": centroid_y,
            "centroid_x": centroid_x,
            "mean_intensity": intensity,
        }
        for key, value in measured.items():
            if key != "page" or stack:
                columns.setdefault(key, []).append(value)
    return {key: np.concatenate(parts) for key, parts in columns.items()}


def table_csv(table: dict[str, np.ndarray]) -> str:
    """The columns as CSV text: a header row, integers as they are, floats to 6 digits.

    >>> print(table_csv({"label": np.array([2, 3]), "area": np.array([1.5, 20.25])}), end="")
    label,area
    2,1.5
    3,20.25
    """
    formats = ["%d" if np.issubdtype(v.dtype, np.integer) else "%.6g" for v in table.values()]
    lines = [",".join(table)]
    for row in zip(*table.values(), strict=True):
        lines.append(",".join(f % value for f, value in zip(formats, row, strict=True)))
    return "\n".join(lines) + "\n"
