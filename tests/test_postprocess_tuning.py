"""Post-processing tuning on hand-made probability maps: the search finds the settings that work."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from napari_cellseg.config import TrainConfig
from napari_cellseg.config_io import save_yaml
from napari_cellseg.data.io import Stack
from napari_cellseg.errors import ConfigError, DataError
from napari_cellseg.model_file import read_model, save_segmentation
from napari_cellseg.segmentation.settings import SegmentationSettings
from napari_cellseg.segmentation.tuning import (
    GRID,
    score_postprocessing,
    tune_postprocessing,
)

YY, XX = np.mgrid[:60, :80]
LEFT = (YY - 30) ** 2 + (XX - 25) ** 2 < 15**2
RIGHT = ((YY - 30) ** 2 + (XX - 53) ** 2 < 15**2) & ~LEFT


def weak_ridge_maps():
    """Two touching nuclei with a weak boundary between them (0.45) and two 12-pixel specks."""
    gt = np.zeros((1, 60, 80), np.uint16)
    gt[0][LEFT], gt[0][RIGHT] = 2, 3
    ridge = np.zeros(LEFT.shape, bool)
    ridge[:, 38:41] = (LEFT | RIGHT)[:, 38:41]
    objects = np.where(LEFT | RIGHT, 0.9, 0.05)
    objects[ridge] = 0.55
    objects[2:5, 2:6] = objects[50:53, 70:74] = 0.9
    boundaries = np.where(ridge, 0.45, 0.05)
    return (objects[None].astype(np.float32), boundaries[None].astype(np.float32)), Stack(
        "a", gt, gt
    )


def test_search_finds_thresholds_that_split_and_clean():
    maps, stack = weak_ridge_maps()
    calls = []
    tuned = tune_postprocessing([maps], [stack], progress=lambda *a: calls.append(a))
    # only a boundary threshold under 0.45 splits the nuclei, only min_size > 12 drops the specks
    assert tuned.mean_ap == 1.0
    assert tuned.settings.bnd_threshold < 0.45 and tuned.settings.min_size > 12
    assert tuned.settings == SegmentationSettings(
        obj_threshold=0.3,
        bnd_threshold=0.1,
        split_depth=0.0,
        min_size=20,
        small_object_prob=1.0,  # keeping the specks for sure would not score more
    )
    planned = len(GRID["obj_threshold"]) * len(GRID["bnd_threshold"]) + 8 + 1
    assert calls[-1] == (planned, planned) and len(calls) == planned
    # a boundary threshold above the ridge's 0.45 merges the two nuclei (IoU with the left one
    # 697 / 1383 = 0.504) and min_size 10 keeps the specks: at IoU 0.5 TP 1, FP 2, FN 1, AP 1/4;
    # above 0.5 AP 0; the mean over 10 thresholds 0.025
    untuned = SegmentationSettings(0.5, 0.5, 0.0, 10, 1.0)
    score = score_postprocessing([maps], [stack], untuned)
    assert score == pytest.approx(0.025)


def test_search_keeps_small_nuclei_the_network_is_sure_of():
    (objects, boundaries), stack = weak_ridge_maps()
    specks = np.s_[0, 2:5, 2:6], np.s_[0, 50:53, 70:74]  # unsure specks, not annotated,
    for speck in specks:  # foreground (0.95) for any obj_threshold that keeps the nuclei
        objects[speck], boundaries[speck] = 0.6, 0.35
    objects[0, 50:53, 5:9] = 0.95  # a 12-pixel nucleus, annotated
    stack.labels[0, 50:53, 5:9] = 4
    tuned = tune_postprocessing([(objects, boundaries)], [stack])
    # min_size > 12 drops the specks, a probability between 0.6 and 0.95 keeps the nucleus
    assert tuned.mean_ap == 1.0
    assert tuned.settings.min_size > 12 and 0.6 <= tuned.settings.small_object_prob < 0.95
    unsure = tuned.settings.replace(small_object_prob=1.0)
    # without the exception the nucleus is a false negative: TP 2, FN 1, AP 2/3 throughout
    assert score_postprocessing([(objects, boundaries)], [stack], unsure) == pytest.approx(2 / 3)


def broken_nucleus_maps():
    """Two touching nuclei split by a ridge, a third nucleus cut by a noise line.

    Every threshold pair that keeps the ridge out of the seeds keeps the line out too, so
    thresholds alone either merge the pair or cut the third nucleus in two.  In objects -
    boundaries the line dips 0.65 below its nucleus' core, the ridge 0.85 below the pair's.
    """
    yy, xx = np.mgrid[:60, :120]
    left, right = (yy - 30) ** 2 + (xx - 25) ** 2 < 15**2, (yy - 30) ** 2 + (xx - 53) ** 2 < 15**2
    third = (yy - 30) ** 2 + (xx - 100) ** 2 < 8**2
    gt = np.zeros((60, 120), np.uint16)
    gt[left], gt[right & ~left], gt[third] = 2, 3, 4
    objects = np.where(left | right, 0.95, np.where(third, 0.7, 0.05)).astype(np.float32)
    boundaries = np.full(gt.shape, 0.05, np.float32)
    ridge = (left | right) & (xx >= 38) & (xx < 41)
    line = third & (xx == 100)
    objects[ridge], boundaries[ridge] = 0.5, 0.45
    objects[line], boundaries[line] = 0.45, 0.45
    return (objects[None], boundaries[None]), Stack("b", gt[None], gt[None])


def test_search_finds_the_split_depth_that_rejoins_a_broken_nucleus():
    maps, stack = broken_nucleus_maps()
    tuned = tune_postprocessing([maps], [stack])
    assert tuned.settings.split_depth == 0.75 and tuned.mean_ap == 1.0
    without = tuned.settings.replace(split_depth=0.0)
    assert score_postprocessing([maps], [stack], without) < 0.8


def test_save_keeps_every_other_entry(tmp_path):
    path = save_yaml(
        TrainConfig(epochs=7, model="m.pt"), tmp_path / "m.yaml", {"epochs_trained": 7}
    )
    save_segmentation(path, SegmentationSettings(0.4, 0.25, 0.75, 20, 0.9), mean_ap=0.7, data="v")
    content = yaml.safe_load(path.read_text())
    assert SegmentationSettings.of(content).as_dict() == {
        "obj_threshold": 0.4,
        "bnd_threshold": 0.25,
        "split_depth": 0.75,
        "min_size": 20,
        "small_object_prob": 0.9,
    }
    assert content["epochs"] == 7 and content["model"] == "m.pt"
    assert content["record"] == {"epochs_trained": 7, "postprocess": {"mean_ap": 0.7, "data": "v"}}
    assert list(content)[-1] == "record"


TTA_TUNED = {
    "obj_threshold": 0.55,
    "bnd_threshold": 0.4,
    "split_depth": 0.5,
    "min_size": 30,
    "small_object_prob": 0.95,
}


def test_tta_settings_go_beside_the_others(tmp_path):
    cfg = TrainConfig(model="m.pt")
    path = save_yaml(cfg, tmp_path / "m.yaml", {"epochs_trained": 7})
    assert read_model(path).tta_segmentation is None
    tuned = SegmentationSettings.of(TTA_TUNED)
    save_segmentation(path, tuned, tta=True, mean_ap=0.6, data="v")
    content = yaml.safe_load(path.read_text())
    assert SegmentationSettings.of(content) == SegmentationSettings.of(cfg)  # the others are kept
    assert content["tta_segmentation"] == TTA_TUNED
    assert read_model(path).tta_segmentation == tuned == read_model(path).segmentation(tta=True)
    assert read_model(path).segmentation() == SegmentationSettings.of(cfg)
    assert content["record"]["postprocess_tta"] == {"mean_ap": 0.6, "data": "v"}
    assert list(content)[-1] == "record"


def test_tta_settings_left_out_are_the_others_and_typos_are_named(tmp_path):
    path = save_yaml(TrainConfig(min_size=12), tmp_path / "m.yaml")
    content = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**content, "tta_segmentation": {"split_depth": 0.25}}))
    left_out = SegmentationSettings.of(content).replace(split_depth=0.25)
    assert read_model(path).tta_segmentation == left_out
    path.write_text(yaml.safe_dump({**content, "tta_segmentation": {"min_sise": 3}}))
    with pytest.raises(ConfigError, match="'tta_segmentation' in .*m.yaml' must map"):
        read_model(path)
    path.write_text(yaml.safe_dump({**content, "tta_segmentation": {"min_size": "big"}}))
    with pytest.raises(ConfigError, match="min_size"):
        read_model(path)


def test_stacks_need_labels():
    maps, stack = weak_ridge_maps()
    with pytest.raises(DataError, match="'a' has no labels"):
        tune_postprocessing([maps], [Stack("a", stack.image, None)])
