"""Settings: one source of defaults, YAML round trip, flags override the settings file."""

import argparse

import pytest
import yaml

from napari_cellseg.config import TrainConfig
from napari_cellseg.config_io import add_config_arguments, config_from_args, load_yaml, save_yaml
from napari_cellseg.errors import ConfigError
from napari_cellseg.model_file import yaml_beside

SEED_KEYS = (
    "architecture epochs batch augments trim_method train_data val_data model lr im_dim "
    "bnd_weight obj_weight dropout dcan_final_act tb_dir csv_log seed channels"
).split()


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, TrainConfig)
    return config_from_args(TrainConfig, parser.parse_args(list(argv)))


def test_defaults_come_from_the_dataclass():
    assert parse() == TrainConfig()


def test_seed_flags_parse_to_typed_values():
    cfg = parse("--architecture", "dcan", "--epochs", "7", "--lr", "0.01", "--trim_method",
                "reflect", "--dcan_final_act", "sigmoid", "--blob_label", "none", "--remove_blobs")
    assert (cfg.architecture, cfg.epochs, cfg.lr, cfg.trim_method) == ("dcan", 7, 0.01, "reflect")
    assert cfg.blob_label is None and cfg.remove_blobs is True


def test_yaml_round_trip_holds_every_seed_key(tmp_path):
    cfg = TrainConfig(architecture="dcan", epochs=3, model="m.pt", blob_label=None)
    path = save_yaml(cfg, tmp_path / "m.yaml", record={"epochs_trained": 3})
    data = yaml.safe_load(path.read_text())
    assert set(SEED_KEYS) <= set(data)
    assert data["record"] == {"epochs_trained": 3}
    assert load_yaml(path, strict=True) == cfg


def test_flags_override_the_settings_file(tmp_path):
    save_yaml(TrainConfig(epochs=50, batch=8), tmp_path / "s.yaml")
    cfg = parse("--args_load_path", str(tmp_path / "s.yaml"), "--epochs", "2")
    assert (cfg.epochs, cfg.batch) == (2, 8)


def test_seed_style_flow_yaml_is_read(tmp_path):
    (tmp_path / "seed.yaml").write_text(
        "{architecture: unet, epochs: 500, batch: 6, augments: 10, trim_method: resize,"
        " model: models/m.h5, lr: 0.001, im_dim: 256, dcan_final_act: tanh, seed: 48}"
    )
    cfg = load_yaml(tmp_path / "seed.yaml", strict=True)
    assert (cfg.epochs, cfg.batch, cfg.augments) == (500, 6, 10)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("epochs: many\n", "'epochs'.*must be int"),
        ("epoch: 3\n", "Unknown setting 'epoch'.*Did you mean 'epochs'"),
        ("architecture: resnet\n", "'architecture' is 'resnet'; choose one of dcan, unet"),
        ("[1, 2]\n", "must hold a mapping"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_bad_settings_files_name_the_problem(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_yaml(path, strict=True)


def test_missing_settings_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nothere.yaml' does not exist"):
        parse("--args_load_path", str(tmp_path / "nothere.yaml"))


def test_model_yaml_sits_beside_the_weights():
    assert str(yaml_beside("models/run1.pt")) == "models/run1.yaml"


@pytest.mark.parametrize("name", ["split_depth", "separation_weight", "object_diameter"])
def test_negative_amounts_are_refused_naming_the_setting(name):
    with pytest.raises(ConfigError, match=f"Setting '{name}' is -1"):
        TrainConfig(**{name: -1.0})
