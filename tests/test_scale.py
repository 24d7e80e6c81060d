"""Object-size normalisation: measured diameters, clipped factors, rescaled training data."""

import dataclasses

import numpy as np
import pytest
from skimage.draw import disk

from napari_cellseg.config import TrainConfig
from napari_cellseg.data.dataset import SegmentationDataset
from napari_cellseg.data.labels import median_diameter
from napari_cellseg.data.scale import FACTOR_LIMITS, rescale, scale_factor
from napari_cellseg.data.stacks import stacks_from_arrays
from napari_cellseg.data.trim import crop_starts
from napari_cellseg.errors import ConfigError


def disks(shape, radius, centres, first_label=2):
    labels = np.zeros(shape, np.uint16)
    for value, centre in enumerate(centres, first_label):
        labels[disk(centre, radius, shape=shape)] = value
    return labels


def test_median_diameter_is_the_equivalent_diameter_of_the_median_area():
    labels = disks((64, 64), 5, [(10, 10), (10, 40), (40, 10)])
    labels[40:60, 40:60] = 9  # one big square does not move the median
    assert median_diameter(labels) == pytest.approx(2 * np.sqrt((labels == 2).sum() / np.pi))
    assert median_diameter(labels) == pytest.approx(10, abs=1)


def test_blobs_and_empty_images_do_not_count():
    labels = disks((40, 40), 4, [(10, 10)])
    labels[20:40, 20:40] = 1  # a blob
    assert median_diameter(labels) == pytest.approx(median_diameter(2 * (labels == 2)))
    assert median_diameter(labels, ignore_label=None) > median_diameter(labels)
    assert median_diameter(np.zeros((3, 8, 8), int)) is None
    assert scale_factor(20, None) == 1.0


def test_factor_is_clipped():
    assert scale_factor(20, 10) == 2.0
    assert scale_factor(20, 1) == FACTOR_LIMITS[1]
    assert scale_factor(20, 1000) == FACTOR_LIMITS[0]


def test_rescale_keeps_label_values_and_image_range():
    labels = disks((30, 40), 6, [(15, 12), (15, 28)])
    big = rescale(labels, 2.0, order=0)
    assert big.shape == (60, 80) and big.dtype == labels.dtype
    assert set(np.unique(big)) == {0, 2, 3}
    assert median_diameter(big) == pytest.approx(2 * median_diameter(labels), rel=0.05)
    image = rescale(labels.astype(np.float32), 0.5)
    assert image.shape == (15, 20) and 0 <= image.min() and image.max() <= 3


def test_training_images_are_rescaled_to_the_object_diameter(tiny_train_config):
    labels = disks((48, 48), 4, [(12, 12), (12, 34), (34, 20)])  # diameter ~8.4
    image = (labels > 0).astype(np.uint8) * 200
    stacks = stacks_from_arrays([image], [labels])
    cfg = dataclasses.replace(tiny_train_config, trim_method="reflect", object_diameter=16.0)
    side = round(48 * 16.0 / median_diameter(labels))  # ~100
    val = SegmentationDataset(stacks, cfg, train=False)
    assert len(val) == len(crop_starts((side, side), 32)) == 16
    objects = sum(val[i]["objects"].sum() + val[i]["boundaries"].sum() for i in range(len(val)))
    assert objects > 2 * (labels > 0).sum()  # the objects grew about four-fold in area


def test_object_diameter_settings_are_checked():
    with pytest.raises(ConfigError, match="object_diameter"):
        TrainConfig(object_diameter=-1)
    with pytest.raises(ConfigError, match="trim_method 'reflect'"):
        TrainConfig(object_diameter=20, trim_method="resize")
