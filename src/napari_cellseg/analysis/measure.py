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
saves them).  The objects of a stitched z-stack (:mod:`.stitch`) are measured whole, in
3D, by :func:`measure_volumes`.
"""

from __future__ import annotations

import csv
import io
from itertools import pairwise

import numpy as np

from napari_cellseg.data.labels import sequential_labels, spans_slices
from napari_cellseg.errors import DataError

__all__ = [
    "measure_objects",
    "measure_volumes",
    "measure_table",
    "table_csv",
    "summary_rows",
    "rows_csv",
    "ellipse_columns",
]


def measure_objects(
    labels: np.ndarray,
    image: np.ndarray,
    pixel_size: tuple[float, float] | None = None,
    channels: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The measurements of every object: one array per column, one row per object.

    Columns ``label``, ``page`` (stacks only), ``area``, ``centroid_y``, ``centroid_x``,
    ``mean_intensity``, ``integrated_intensity``, ``equivalent_diameter``,
    ``major_axis_length``, ``minor_axis_length``, ``eccentricity`` (sizes in pixels),
    ``touches_edge`` (the object is cut by the image border: its size is not its own)
    and, with ``pixel_size`` (a pixel's height and width in micrometres, which may
    differ), ``area_um2``, ``equivalent_diameter_um``, ``major_axis_length_um`` and
    ``minor_axis_length_um``.  ``channels`` (name -> image) are other images of the
    objects, such as a reporter's channel beside the nuclear stain: each adds
    ``mean_intensity_<name>`` and ``integrated_intensity_<name>``.  ``labels``, ``image``
    and the channels are (H, W) or (Z, H, W) of one shape; 0 is background, and an
    object of a stack is measured on each page it is on.

    >>> labels = np.array([[0, 2, 2], [0, 0, 5]])
    >>> table = measure_objects(labels, np.array([[9.0, 1.0, 3.0], [0.0, 0.0, 4.0]]))
    >>> table.pop("touches_edge")
    array([ True,  True])
    >>> {key: np.round(values, 2).tolist() for key, values in table.items()}
    ... # doctest: +NORMALIZE_WHITESPACE
    {'label': [2, 5], 'area': [2, 1], 'centroid_y': [0.0, 1.0], 'centroid_x': [1.5, 2.0],
     'mean_intensity': [2.0, 4.0], 'integrated_intensity': [4.0, 4.0],
     'equivalent_diameter': [1.6, 1.13], 'major_axis_length': [2.0, 0.0],
     'minor_axis_length': [0.0, 0.0], 'eccentricity': [1.0, 0.0]}
    """
    labels, image = np.asarray(labels), np.asarray(image)
    channels = {name: np.asarray(array) for name, array in (channels or {}).items()}
    _check(labels, image, channels, pixel_size)
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
    found, pixels, index, total = _sums(labels)
    rows, cols = np.divmod(pixels, labels.shape[1])
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
        **ellipse_columns(*moments),
        "touches_edge": total(_edge(labels.shape).ravel()[pixels]) > 0,
    }
    if pixel_size is not None:
        sy, sx = map(float, pixel_size)
        yy, xx, yx = moments
        ellipse = ellipse_columns(yy * sy * sy, xx * sx * sx, yx * sy * sx)
        table["area_um2"] = area * sy * sx
        table["equivalent_diameter_um"] = np.sqrt(4 * table["area_um2"] / np.pi)
        table["major_axis_length_um"] = ellipse["major_axis_length"]
        table["minor_axis_length_um"] = ellipse["minor_axis_length"]
    table.update(_channel_columns(channels, pixels, total, area))
    return found, table


def measure_volumes(
    labels: np.ndarray,
    image: np.ndarray,
    voxel_size: tuple[float, float, float] | None = None,
    channels: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The measurements of every 3D object of a (Z, H, W) stack, one row per object.

    Columns ``label``, ``volume`` (voxels), ``first_page``, ``last_page``,
    ``centroid_z``, ``centroid_y``, ``centroid_x``, ``mean_intensity``,
    ``integrated_intensity``, ``equivalent_diameter`` (of the ball of the same volume)
    and ``touches_edge`` (on the border of a slice, or on the first or last slice); with
    ``voxel_size`` (depth, height, width in micrometres) ``volume_um3`` and
    ``equivalent_diameter_um``; ``channels`` as in :func:`measure_objects`.

    >>> labels = np.zeros((3, 2, 2), np.int32)
    >>> labels[:2, 0, :] = 4
    >>> table = measure_volumes(labels, np.arange(12.0).reshape(3, 2, 2), (2.0, 0.5, 0.5))
    >>> table.pop("touches_edge")
    array([ True])
    >>> {key: np.round(values, 2).tolist() for key, values in table.items()}
    ... # doctest: +NORMALIZE_WHITESPACE
    {'label': [4], 'volume': [4], 'first_page': [0], 'last_page': [1], 'centroid_z': [0.5],
     'centroid_y': [0.0], 'centroid_x': [0.5], 'mean_intensity': [2.5],
     'integrated_intensity': [10.0], 'equivalent_diameter': [1.97], 'volume_um3': [2.0],
     'equivalent_diameter_um': [1.56]}
    """
    labels, image = np.asarray(labels), np.asarray(image)
    if labels.ndim != 3:
        raise DataError(f"volumes are measured in a (Z, H, W) stack, not {labels.shape}")
    channels = {name: np.asarray(array) for name, array in (channels or {}).items()}
    _check(labels, image, channels, voxel_size)
    found, pixels, index, total = _sums(labels)
    page_size = labels.shape[1] * labels.shape[2]
    pages, rest = np.divmod(pixels, page_size)
    rows, cols = np.divmod(rest, labels.shape[2])
    # which objects each page holds (pixels are in page order): first and last page
    starts = np.searchsorted(pixels, np.arange(len(labels) + 1) * page_size)
    present = np.stack(
        [np.bincount(index[a:b], minlength=len(found) + 1)[1:] > 0 for a, b in pairwise(starts)]
    ).reshape(len(labels), len(found))
    volume = total()
    intensity = total(image.ravel()[pixels])
    table = {
        "volume": volume.astype(np.int64),
        "first_page": present.argmax(0),
        "last_page": len(labels) - 1 - present[::-1].argmax(0),
        "centroid_z": total(pages) / volume,
        "centroid_y": total(rows) / volume,
        "centroid_x": total(cols) / volume,
        "mean_intensity": intensity / volume,
        "integrated_intensity": intensity,
        "equivalent_diameter": np.cbrt(6 * volume / np.pi),
        "touches_edge": total(_edge(labels.shape).ravel()[pixels]) > 0,
    }
    if voxel_size is not None:
        table["volume_um3"] = volume * float(np.prod(voxel_size))
        table["equivalent_diameter_um"] = np.cbrt(6 * table["volume_um3"] / np.pi)
    table.update(_channel_columns(channels, pixels, total, volume))
    return {"label": found, **table}


def measure_table(
    labels: np.ndarray,
    image: np.ndarray,
    *,
    pixel_size: tuple[float, float] | None = None,
    z_spacing: float | None = None,
    volumes: bool = False,
    channels: dict[str, np.ndarray] | None = None,
    maps: tuple[np.ndarray, np.ndarray] | None = None,
    augmented: list[np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """:func:`measure_volumes` of a stack's 3D objects when ``volumes`` (in micrometres
    when both ``pixel_size`` and ``z_spacing`` are known), else :func:`measure_objects`;
    with the probability ``maps`` (objects, boundaries) the labels were made from, a
    ``confidence`` column (:mod:`.confidence`; with the ``augmented`` instances of a
    test-time augmented prediction, their agreement counts too)."""
    if volumes and np.ndim(labels) == 3:
        voxel = (z_spacing, *pixel_size) if z_spacing and pixel_size else None
        table = measure_volumes(labels, image, voxel, channels)
    else:
        table = measure_objects(labels, image, pixel_size, channels)
    if maps is not None:
        from napari_cellseg.analysis.confidence import confidence_column

        table["confidence"] = confidence_column(table, labels, *maps, augmented)
    return table


def features_table(
    labels: np.ndarray,
    image: np.ndarray,
    pixel_size: tuple[float, float] | None = None,
    channels: dict[str, np.ndarray] | None = None,
    z_spacing: float | None = None,
    maps: tuple[np.ndarray, np.ndarray] | None = None,
    augmented: list[np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The objects' measurements as a napari labels layer's features: the label value in
    ``index``, one row per value; a stack whose objects span slices is measured in 3D
    (``maps`` and ``augmented``: as :func:`measure_table`)."""
    table = measure_table(
        labels,
        image,
        pixel_size=pixel_size,
        z_spacing=z_spacing,
        volumes=spans_slices(labels),
        channels=channels,
        maps=maps,
        augmented=augmented,
    )
    return {"index": table.pop("label"), **table}


def _check(labels: np.ndarray, image: np.ndarray, channels: dict, size) -> None:
    for name, array in {"image": image, **channels}.items():
        if array.shape != labels.shape:
            raise DataError(f"labels {labels.shape} and {name} {array.shape} differ in shape")
    if not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
        raise DataError(
            f"labels must be non-negative integers (these are {labels.dtype}, "
            f"the smallest {labels.min()})"
        )
    if size is not None and not (np.all(np.isfinite(size)) and min(size) > 0):
        raise DataError(f"a pixel size must be positive micrometres, not {size}")


def _edge(shape: tuple[int, ...]) -> np.ndarray:
    """True on the faces of an array of ``shape``."""
    edge = np.ones(shape, bool)
    edge[tuple(slice(1, -1) for _ in shape)] = False
    return edge


def _sums(labels: np.ndarray):
    """The label values, the flat positions of the object pixels, their object index
    (1, 2, ...) and ``total(weights)``: the sum of ``weights`` (per object pixel, or 1)
    over each object."""
    index, found = sequential_labels(labels)  # any label values, even huge ones
    pixels = np.flatnonzero(index)
    index = index[pixels]

    def total(weights=None):
        return np.bincount(index, weights, len(found) + 1)[1:]

    return found, pixels, index, total


def _channel_columns(channels: dict, pixels: np.ndarray, total, size: np.ndarray) -> dict:
    """``mean_intensity_<name>`` and ``integrated_intensity_<name>`` of every channel."""
    columns = {}
    for name, values in channels.items():
        summed = total(values.ravel()[pixels])
        columns[f"mean_intensity_{name}"] = summed / size
        columns[f"integrated_intensity_{name}"] = summed
    return columns


def ellipse_columns(yy: np.ndarray, xx: np.ndarray, yx: np.ndarray) -> dict[str, np.ndarray]:
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
    columns = {
        name: [int(x) if isinstance(x, bool) else x for x in values.tolist()]
        for name, values in table.items()
    }
    rows = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    return rows_csv(rows, columns=list(table))


_SUMMARY_SIZES = (
    "area", "area_um2", "volume", "volume_um3", "equivalent_diameter", "equivalent_diameter_um"
)  # fmt: skip


def summary_rows(name: str, table: dict[str, np.ndarray], pages: int = 1) -> list[dict]:
    """One row per image of ``table`` (per page of a stack measured page by page): its
    objects' count, how many touch the edge, their median sizes and mean intensity.

    >>> table = measure_objects(np.array([[0, 2, 2], [3, 0, 0]]), np.ones((2, 3)))
    >>> summary_rows("cells", table)  # doctest: +NORMALIZE_WHITESPACE
    [{'image': 'cells', 'objects': 2, 'touching_edge': 2, 'median_area': 1.5,
      'median_equivalent_diameter': 1.36..., 'mean_intensity': 1.0}]
    """
    per_page = "page" in table
    rows = []
    for page in range(pages if per_page else 1):
        mine = table["page"] == page if per_page else slice(None)
        row: dict = {"image": name, **({"page": page} if per_page else {})}
        row["objects"] = len(table["label"][mine])
        row["touching_edge"] = int(table["touches_edge"][mine].sum())
        for size in _SUMMARY_SIZES:
            if size in table:
                row[f"median_{size}"] = _statistic(np.median, table[size][mine])
        row["mean_intensity"] = _statistic(np.mean, table["mean_intensity"][mine])
        rows.append(row)
    return rows


def _statistic(function, values: np.ndarray) -> float | None:
    return float(function(values)) if len(values) else None


def rows_csv(rows: list[dict], columns: list[str] | None = None) -> str:
    """Rows of different keys as CSV text: the union of the keys (or ``columns``), blanks
    where a row has none, floats to 6 digits.

    >>> rows = [{"image": "a, b", "objects": 3}, {"image": "c", "median_area": 2.5}]
    >>> print(rows_csv(rows), end="")
    image,objects,median_area
    "a, b",3,
    c,,2.5
    """
    columns = columns or list(dict.fromkeys(key for row in rows for key in row))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        values = (row.get(column) for column in columns)
        writer.writerow(f"{v:.6g}" if isinstance(v, float) else v for v in values)
    return text.getvalue()
