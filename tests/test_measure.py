"""Per-object measurements: areas, centroids, intensities and shapes equal the masks' own."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.measure import regionprops_table

from napari_cellseg.analysis.measure import measure_objects, measure_volumes, table_csv
from napari_cellseg.data.synthetic import make_nuclei

COLUMNS = [
    "label",
    "area",
    "centroid_y",
    "centroid_x",
    "mean_intensity",
    "integrated_intensity",
    "equivalent_diameter",
    "major_axis_length",
    "minor_axis_length",
    "eccentricity",
    "touches_edge",
]
#: our column -> skimage.measure.regionprops' property of the same definition
SKIMAGE = {
    "area": "area",
    "centroid_y": "centroid-0",
    "centroid_x": "centroid-1",
    "mean_intensity": "intensity_mean",
    "equivalent_diameter": "equivalent_diameter_area",
    "major_axis_length": "axis_major_length",
    "minor_axis_length": "axis_minor_length",
    "eccentricity": "eccentricity",
}


def test_stack_rows_per_object_and_page():
    labels = np.zeros((2, 10, 12), np.int32)
    labels[0, 1:4, 2:6] = 7  # 12 pixels
    labels[1, 5:10, 0:2] = 7  # the same value on another page: its own row
    labels[1, 0:2, 10:12] = 3
    image = np.arange(labels.size, dtype=np.uint16).reshape(labels.shape)
    table = measure_objects(labels, image)
    assert list(table) == ["label", "page", *COLUMNS[1:]]
    rows = list(zip(*(table[k].tolist() for k in ("label", "page", "area")), strict=True))
    assert rows == [(7, 0, 12), (3, 1, 4), (7, 1, 10)]
    for row, (label, page) in enumerate(zip(table["label"], table["page"], strict=True)):
        ys, xs = np.nonzero(labels[page] == label)
        assert (table["centroid_y"][row], table["centroid_x"][row]) == pytest.approx(
            (ys.mean(), xs.mean())
        )
        assert table["mean_intensity"][row] == pytest.approx(image[page][ys, xs].mean())
        assert table["integrated_intensity"][row] == image[page][ys, xs].sum()


def test_sizes_and_shapes_are_those_of_skimage_regionprops():
    image, labels = make_nuclei((160, 200), seed=3)
    labels[labels == 1] = 0  # no blob: every object measured as skimage measures it
    table = measure_objects(labels, image)
    names = {name.split("-")[0] for name in SKIMAGE.values()}
    theirs = regionprops_table(labels, image, properties=["label", *sorted(names)])
    assert len(table["label"]) > 15 and table["label"].tolist() == theirs["label"].tolist()
    for ours, skimage_name in SKIMAGE.items():
        np.testing.assert_allclose(table[ours], theirs[skimage_name], rtol=1e-9, atol=1e-9)


def test_an_ellipse_of_known_axes():
    yy, xx = np.mgrid[-40:41, -40:41]
    labels = ((yy / 30.0) ** 2 + (xx / 10.0) ** 2 <= 1).astype(np.int32) * 2
    table = measure_objects(labels, np.ones(labels.shape))
    assert table["major_axis_length"][0] == pytest.approx(60, rel=0.02)
    assert table["minor_axis_length"][0] == pytest.approx(20, rel=0.03)
    assert table["eccentricity"][0] == pytest.approx(np.sqrt(1 - (10 / 30) ** 2), rel=0.01)


@pytest.mark.parametrize("pixel_size", [(0.5, 0.5), (0.3, 0.65)])
def test_micrometre_columns_with_a_pixel_size(pixel_size):
    image, labels = make_nuclei((120, 140), seed=1)
    labels[labels == 1] = 0
    table = measure_objects(labels, image, pixel_size=pixel_size)
    theirs = regionprops_table(
        labels,
        spacing=pixel_size,
        properties=["area", "equivalent_diameter_area", "axis_major_length", "axis_minor_length"],
    )
    np.testing.assert_allclose(table["area_um2"], theirs["area"])
    np.testing.assert_allclose(table["area_um2"], table["area"] * pixel_size[0] * pixel_size[1])
    np.testing.assert_allclose(table["equivalent_diameter_um"], theirs["equivalent_diameter_area"])
    np.testing.assert_allclose(table["major_axis_length_um"], theirs["axis_major_length"])
    np.testing.assert_allclose(table["minor_axis_length_um"], theirs["axis_minor_length"])
    assert "area_um2" not in measure_objects(labels, image)


def test_intensities_in_other_channels():
    labels = np.zeros((2, 6, 8), np.int32)
    labels[0, 1:3, 1:4], labels[1, 2:6, 5:8] = 2, 3
    image = np.ones(labels.shape)
    reporter = np.arange(labels.size, dtype=np.float32).reshape(labels.shape)
    table = measure_objects(labels, image, channels={"GFP": reporter, "dark": 0 * reporter})
    assert list(table)[-4:] == [
        "mean_intensity_GFP", "integrated_intensity_GFP",
        "mean_intensity_dark", "integrated_intensity_dark",
    ]  # fmt: skip
    for row, (label, page) in enumerate(zip(table["label"], table["page"], strict=True)):
        inside = reporter[page][labels[page] == label]
        assert table["mean_intensity_GFP"][row] == pytest.approx(inside.mean())
        assert table["integrated_intensity_GFP"][row] == pytest.approx(inside.sum())
        assert table["integrated_intensity_dark"][row] == 0
    assert table["mean_intensity"].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="GFP"):
        measure_objects(labels, image, channels={"GFP": reporter[0]})


def test_no_objects_give_an_empty_table_with_a_header():
    table = measure_objects(np.zeros((4, 4), np.int32), np.ones((4, 4)))
    assert all(len(v) == 0 for v in table.values()) and "page" not in table
    assert table_csv(table) == ",".join(COLUMNS) + "\n"


def test_objects_cut_by_the_border_are_flagged():
    labels = np.zeros((2, 6, 7), np.int32)
    labels[0, 0:2, 2:4] = 2  # on the top edge
    labels[0, 2:4, 2:4] = 3  # inside
    labels[1, 2:4, 5:7] = 4  # on the right edge
    labels[1, 2:4, 1:3] = 3  # inside its page, but on the stack's last slice
    table = measure_objects(labels, np.ones(labels.shape))
    rows = zip(table["page"], table["label"], table["touches_edge"], strict=True)
    assert {(page, label): edge for page, label, edge in rows} == {
        (0, 2): True, (0, 3): False, (1, 3): False, (1, 4): True,
    }  # fmt: skip
    assert table_csv(table).splitlines()[1].endswith(",1")
    volumes = measure_volumes(labels, np.ones(labels.shape))
    assert volumes["touches_edge"].tolist() == [True, True, True]
    labels = np.pad(labels, ((1, 1), (0, 0), (0, 0)))  # slices above and below
    volumes = measure_volumes(labels, np.ones(labels.shape))
    edges = dict(zip(volumes["label"], volumes["touches_edge"], strict=True))
    assert edges == {2: True, 3: False, 4: True}


def test_any_label_values():
    labels = np.array([[0, 2**40, 2**40], [5, 0, 0]], np.int64)
    table = measure_objects(labels, np.ones(labels.shape))
    assert table["label"].tolist() == [5, 2**40] and table["area"].tolist() == [1, 2]


def test_shapes_and_values_must_fit():
    with pytest.raises(ValueError, match="differ in shape"):
        measure_objects(np.zeros((4, 4), np.int32), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="non-negative integers"):
        measure_objects(np.full((4, 4), -1), np.zeros((4, 4)))
    for bad in [(0.0, 0.5), (np.nan, 1.0), (-1.0, 1.0)]:
        with pytest.raises(ValueError, match="pixel size must be positive"):
            measure_objects(np.zeros((4, 4), np.int32), np.zeros((4, 4)), pixel_size=bad)


def _balls(shape=(14, 60, 70), seed=0) -> np.ndarray:
    """A stack of labelled balls of radius 3-7 voxels, some touching (later ones win)."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.indices(shape)
    labels = np.zeros(shape, np.int32)
    for value in range(2, 14):
        centre = rng.uniform((3, 8, 8), np.subtract(shape, (3, 8, 8)))
        radius = rng.uniform(3, 7)
        dist = (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2
        labels[dist <= radius**2] = value
    return labels


def test_volumes_are_those_of_skimage_regionprops_in_3d():
    labels = _balls()
    image = np.random.default_rng(1).uniform(0, 100, labels.shape)
    reporter = image[::-1] * 2
    table = measure_volumes(labels, image, (2.0, 0.5, 0.25), {"GFP": reporter})
    properties = ["label", "area", "centroid", "intensity_mean", "equivalent_diameter_area"]
    theirs = regionprops_table(labels, image, properties=properties)
    assert len(table["label"]) >= 10 and table["label"].tolist() == theirs["label"].tolist()
    for ours, skimage_name in {
        "volume": "area", "centroid_z": "centroid-0", "centroid_y": "centroid-1",
        "centroid_x": "centroid-2", "mean_intensity": "intensity_mean",
        "equivalent_diameter": "equivalent_diameter_area",
    }.items():  # fmt: skip
        np.testing.assert_allclose(table[ours], theirs[skimage_name], rtol=1e-9)
    np.testing.assert_allclose(table["volume_um3"], table["volume"] * 0.25)
    for row, label in enumerate(table["label"]):
        pages = np.flatnonzero((labels == label).any(axis=(1, 2)))
        assert (table["first_page"][row], table["last_page"][row]) == (pages[0], pages[-1])
        inside = labels == label
        assert table["integrated_intensity_GFP"][row] == pytest.approx(reporter[inside].sum())


def test_volumes_need_a_stack():
    with pytest.raises(ValueError, match=r"\(Z, H, W\)"):
        measure_volumes(np.zeros((4, 4), np.int32), np.zeros((4, 4)))
