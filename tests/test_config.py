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
    cfg = parse(
        "--architecture",
        "dcan",
        "--epochs",
        "7",
        "--lr",
        "0.01",
        "--trim_method",
        "reflect",
        "--dcan_final_act",
        "sigmoid",
        "--blob_label",
        "none",
        "--remove_blobs",
    )
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


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--batch", "0"], "'batch' is 0; give a whole number of 1 or more"),
        (["--batch", "-1"], "'batch' is -1; give a whole number of 1 or more"),
        (["--epochs", "0"], "'epochs' is 0; give a whole number of 1 or more"),
        (["--augments", "-1"], "'augments' is -1; give a whole number of 0 or more"),
        (["--lr", "-1"], "'lr' is -1.0; give a number above 0"),
        (["--lr", "nan"], "'lr' is nan; it must be a number"),
        (["--seed", "-1"], "'seed' is -1; give a whole number of 0 or more"),
        (["--val_fraction", "-0.5"], "'val_fraction' is -0.5; give a number from 0 to below 1"),
        (["--boundary_thickness", "0"], "'boundary_thickness' is 0; give a whole number of 1"),
        (["--boundary_thickness", "-2"], "'boundary_thickness' is -2; give a whole number of 1"),
        (["--bnd_weight", "-1"], "'bnd_weight' is -1.0; give a number of 0 or more"),
        (["--num_workers", "-5"], "'num_workers' is -5; give a whole number of -1 or more"),
        (["--max_minutes", "-1"], "'max_minutes' is -1.0; give a number of 0 or more"),
        (["--lr_patience", "-1"], "'lr_patience' is -1; give a whole number of 0 or more"),
        (["--early_stop_patience", "0"], "'early_stop_patience' is 0; give a whole number of 1"),
        (["--obj_threshold", "5"], "'obj_threshold' is 5.0; it is a probability"),
    ],
)
def test_every_setting_out_of_range_exits_2_naming_it_and_its_range(flags, message, capsys):
    from napari_cellseg.cli.train import main

    assert main(["--train_data", "d", "--model", "m.pt", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_the_python_api_checks_types_too():
    with pytest.raises(ConfigError, match="'epochs' is 'ten'; it must be a whole number"):
        TrainConfig(epochs="ten")
    with pytest.raises(ConfigError, match="'remove_blobs' is 1; it must be true or false"):
        TrainConfig(remove_blobs=1)
    assert TrainConfig(lr=1, blob_label=None).lr == 1  # a whole number is a number
