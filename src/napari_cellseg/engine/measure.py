"""Per-object measurements of instance labels: the table a biologist counts and compares.

One row per object (per page of a stack): its label value, area and centroid in pixels,
the mean and integrated (summed) intensity in the image it was segmented from (the raw
intensities, not the network's normalised input: the integrated intensity of a DNA stain
measures DNA content), and its size and shape: the diameter of the disk of the same area
and the ellipse of the same second moments (major and minor axis lengths, eccentricity;
the definitions of ``skimage.measure.regionprops``).  Given the pixel size, the sizes
come in micrometres too.  The CLI writes the table as ``<name>_measurements.csv``; the
Predict dock puts it on the instances layer as its features (napari shows them when the
pointer is on an object, and Layers > Metadata > Features table widget lists, sorts and
saves them).
"""

from __future__ import annotations

import numpy as np

from napari_cellseg.engine.evaluate import sequential_labels

__all__ = ["measure_objects", "table_csv"]


def measure_objects(
    labels: np.ndarray,
    image: np.ndarray,
    pixel_size: tuple[float, float] | None = None,
    channels: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The measurements of every object: one array per column, one row per object.

    Columns ``label``, ``page`` (stacks only), ``area``, ``centroid_y``, ``centroid_x``,
    ``mean_intensity``, ``integrated_intensity``, ``equivalent_diameter``,
    ``major_axis_length``, ``minor_axis_length``, ``eccentricity`` (sizes in pixels)
    and, with ``pixel_size`` (a pixel's height and width in micrometres, which may
    differ), ``area_um2``, ``equivalent_diameter_um``, ``major_axis_length_um`` and
    ``minor_axis_length_um``.  ``channels`` (name -> image) are other images of the
    objects, such as a reporter's channel beside the nuclear stain: each adds
    ``mean_intensity_<name>`` and ``integrated_intensity_<name>``.  ``labels``, ``image``
    and the channels are (H, W) or (Z, H, W) of one shape; 0 is background, and an
    object of a stack is measured on each page it is on.

    >>> labels = np.array([[0, 2, 2], [0, 0, 5]])
    >>> table = measure_objects(labels, np.array([[9.0, 1.0, 3.0], [0.0, 0.0, 4.0]]))
    >>> {key: np.round(values, 2).tolist() for key, values in table.items()}
    ... # doctest: +NORMALIZE_WHITESPACE
    {'label': [2, 5], 'area': [2, 1], 'centroid_y': [0.0, 1.0], 'centroid_x': [1.5, 2.0],
     'mean_intensity': [2.0, 4.0], 'integrated_intensity': [4.0, 4.0],
     'equivalent_diameter': [1.6, 1.13], 'major_axis_length': [2.0, 0.0],
     'minor_axis_length': [0.0, 0.0], 'eccentricity': [1.0, 0.0]}
    """
    channels = channels or {}
    for name, array in {"image": image, **channels}.items():
        if array.shape != labels.shape:
            raise ValueError(f"labels {labels.shape} and {name} {array.shape} differ in shape")
    if not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
        raise ValueError(
            f"labels must be non-negative integers (these are {labels.dtype}, "
            f"the smallest {labels.min()})"
        )
    if pixel_size is not None and not (np.all(np.isfinite(pixel_size)) and min(pixel_size) > 0):
        raise ValueError(f"a pixel size must be positive micrometres, not {pixel_size}")
    stack = labels.ndim == 3
    labels, image = _pages(labels), _pages(image)
    channels = {name: _pages(array) for name, array in channels.items()}
    columns: dict[str, list] = {}
    for z in range(len(labels)):
        others = {name: array[z] for name, array in channels.items()}
        found, table = _measure_page(labels[z], image[z], pixel_size, others)
        page_column = {"page": np.full(len(found), z)} if stack else {}
        for key, value in {"label": found, **page_column, **table}.items():
            columns.setdefault(key, []).append(value)
    return {key: np.concatenate(parts) for key, parts in columns.items()}


def _pages(array: np.ndarray) -> np.ndarray:
    """An (H, W) image or (Z, H, W) stack as (Z, H, W)."""
    return array.reshape(-1, *array.shape[-2:])


def _measure_page(
    labels: np.ndarray,
    image: np.ndarray,
    pixel_size: tuple[float, float] | None,
    channels: dict[str, np.ndarray],
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The label values of a 2D page and their columns (see :func:`measure_objects`)."""
    index, found = sequential_labels(labels)  # any label values, even huge ones
    pixels = np.flatnonzero(index)
    index = index[pixels]
    rows, cols = np.divmod(pixels, labels.shape[1])

    def total(weights=None):  # the sum of ``weights`` over each object
        return np.bincount(index, weights, len(found) + 1)[1:]

    area = total()
    centroid_y, centroid_x = total(rows) / area, total(cols) / area
    dy, dx = rows - centroid_y[index - 1], cols - centroid_x[index - 1]
    moments = total(dy * dy) / area, total(dx * dx) / area, total(dy * dx) / area
    intensity = total(image.ravel()[pixels])
    table = {
        "area": area.astype(np.int64),
        "centroid_y": centroid_y,
        "centroid_x": centroid_x,
        "mean_intensity": intensity / area,
        "integrated_intensity": intensity,
        "equivalent_diameter": np.sqrt(4 * area / np.pi),
        **_ellipse(*moments),
    }
    if pixel_size is not None:
        sy, sx = map(float, pixel_size)
        yy, xx, yx = moments
        ellipse = _ellipse(yy * sy * sy, xx * sx * sx, yx * sy * sx)
        table["area_um2"] = area * sy * sx
        table["equivalent_diameter_um"] = np.sqrt(4 * table["area_um2"] / np.pi)
        table["major_axis_length_um"] = ellipse["major_axis_length"]
        table["minor_axis_length_um"] = ellipse["minor_axis_length"]
    for name, values in channels.items():
        summed = total(values.ravel()[pixels])
        table[f"mean_intensity_{name}"] = summed / area
        table[f"integrated_intensity_{name}"] = summed
    return found, table


def _ellipse(yy: np.ndarray, xx: np.ndarray, yx: np.ndarray) -> dict[str, np.ndarray]:
    """Axis lengths and eccentricity of the ellipses of the central second moments."""
    mean, spread = (yy + xx) / 2, np.hypot((yy - xx) / 2, yx)
    large, small = mean + spread, np.maximum(mean - spread, 0)
    ratio = np.divide(small, large, out=np.ones_like(large), where=large > 0)
    return {
        "major_axis_length": 4 * np.sqrt(large),
        "minor_axis_length": 4 * np.sqrt(small),
        "eccentricity": np.sqrt(1 - ratio),
    }


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
