"""The model file: every yaml written before reads and predicts the same; one settings rule."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch  # noqa: TID253 - tests build networks
import yaml
from small_runs import TINY_NETWORK

from napari_cellseg.config import TrainConfig
from napari_cellseg.errors import ConfigError
from napari_cellseg.inference.predictor import load_model
from napari_cellseg.model_file import (
    BUILTIN_MODELS,
    ModelFile,
    is_model_yaml,
    read_model,
    save_segmentation,
    write_model,
)
from napari_cellseg.models.registry import build_model
from napari_cellseg.segmentation.settings import SegmentationSettings

SEED_YAML = """\
{architecture: unet, epochs: 500, batch: 6, augments: 10, trim_method: reflect,
 train_data: data/training/T8/train, val_data: data/training/T8/val,
 model: tiny.pt, lr: 0.001, im_dim: 32, bnd_weight: 0.5, obj_weight: 0.5,
 dropout: 0.0, dcan_final_act: tanh, tb_dir: 'tensorboard/', csv_log: 'log.csv', seed: 48,
 unet_levels: 2, start_filters: 4}
"""
"""The seed tool's sample model yaml (its README), pointed at a tiny network's weights."""


def tiny_weights(folder) -> dict:
    torch.manual_seed(0)
    state = build_model(TrainConfig(**TINY_NETWORK)).state_dict()
    torch.save(state, folder / "tiny.pt")
    return state


def test_a_seed_era_model_yaml_reads_and_predicts_with_the_defaults(tmp_path):
    tiny_weights(tmp_path)
    (tmp_path / "tiny.yaml").write_text(SEED_YAML)
    model = read_model(tmp_path / "tiny.yaml")
    assert (model.config.epochs, model.config.trim_method, model.record) == (500, "reflect", {})
    assert model.weights == tmp_path / "tiny.pt"  # relative to the yaml
    defaults = SegmentationSettings.of(TrainConfig())
    assert model.segmentation() == model.segmentation(tta=True) == defaults
    image = np.random.default_rng(0).random((40, 48)).astype(np.float32)
    objects, boundaries = load_model(tmp_path / "tiny.yaml", "cpu").predict(image)
    assert objects.shape == boundaries.shape == (40, 48)
    assert 0 <= objects.min() and objects.max() <= 1


def test_the_builtin_model_file_as_an_earlier_version_wrote_it():
    model = read_model("nuclei")
    assert model.path == BUILTIN_MODELS["nuclei"] and model.builtin
    assert model.segmentation() == SegmentationSettings(0.6, 0.2, 1.0, 40, 0.85)
    assert model.segmentation(tta=True) == SegmentationSettings(0.6, 0.4, 0.75, 40, 0.9)
    assert model.train_side == 256.0 and model.record["epochs_trained"] == 37
    assert model.weights.name == "nuclei-dsb2018-fluo.pt"
    with pytest.raises(ConfigError, match="built-in model is shared"):
        save_segmentation("nuclei", model.segmentation())


def test_written_models_read_back_and_only_model_yamls_open_as_models(tmp_path):
    tiny_weights(tmp_path)
    cfg = TrainConfig(**TINY_NETWORK, epochs=3)
    yaml_path = write_model(cfg, tmp_path / "tiny.pt", {"epochs_trained": 3})
    assert yaml_path == tmp_path / "tiny.yaml" and is_model_yaml(yaml_path)
    model = read_model(tmp_path / "tiny.pt")  # the weights name their yaml
    saved = dataclasses.replace(cfg, model=str(tmp_path / "tiny.pt"))
    assert model == ModelFile(yaml_path, saved, {"epochs_trained": 3})
    (tmp_path / "other.yaml").write_text(yaml.safe_dump({"name": "a plugin's settings"}))
    assert not is_model_yaml(tmp_path / "other.yaml")


def test_saved_settings_take_their_place_and_the_rule_picks_them(tmp_path):
    tiny_weights(tmp_path)
    yaml_path = write_model(TrainConfig(**TINY_NETWORK), tmp_path / "tiny.pt")
    plain = SegmentationSettings(0.5, 0.3, 0.5, 10, 1.0)
    tta = SegmentationSettings(0.4, 0.5, 0.0, 5, 0.9)
    save_segmentation(yaml_path, plain, mean_ap=0.7, data="val")
    save_segmentation(yaml_path, tta, tta=True)
    model = read_model(yaml_path)
    assert (model.segmentation(), model.segmentation(tta=True)) == (plain, tta)
    assert model.record == {
        "postprocess": {"mean_ap": 0.7, "data": "val"},
        "postprocess_tta": {"data": ""},
    }
    assert load_model(yaml_path, "cpu", tta=True).segmentation() == tta


@pytest.mark.parametrize(
    "change, message",
    [
        ({"obj_threshold": 5}, r"tiny.yaml': Setting 'obj_threshold' is 5.0; it is a probability"),
        ({"min_size": -1}, r"tiny.yaml': Setting 'min_size' is -1"),
        ({"tta_segmentation": {"bnd_threshold": 1.5}}, r"tiny.yaml.*'bnd_threshold' is 1.5"),
    ],
)
def test_settings_out_of_range_in_a_model_yaml_are_refused(tmp_path, change, message):
    tiny_weights(tmp_path)
    yaml_path = write_model(TrainConfig(**TINY_NETWORK), tmp_path / "tiny.pt")
    content = yaml.safe_load(yaml_path.read_text())
    yaml_path.write_text(yaml.safe_dump({**content, **change}))
    with pytest.raises(ConfigError, match=message):
        read_model(yaml_path)
