"""Models that travel: bioimage.io packages and ONNX files, verified equal to the model."""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from small_runs import TINY_NETWORK

from napari_cellseg.cli import main as cellseg
from napari_cellseg.config import TrainConfig
from napari_cellseg.errors import CellsegError, ConfigError
from napari_cellseg.inference.predictor import load_model
from napari_cellseg.model_file import read_model, save_segmentation, write_model
from napari_cellseg.models.registry import build_model
from napari_cellseg.segmentation.settings import SegmentationSettings
from napari_cellseg.sharing import bioimageio
from napari_cellseg.sharing.bioimageio import check_package, export_package
from napari_cellseg.sharing.networks import example_image, exported_network, scale_range
from napari_cellseg.sharing.onnx import export_onnx, onnx_difference
from napari_cellseg.training.checkpoints import init_weights

NETWORKS = {
    "unet": TINY_NETWORK,
    "dcan": {"architecture": "dcan", "im_dim": 32, "start_filters": 2, "dcan_final_act": "tanh"},
}


@pytest.fixture(autouse=True)
def package_cache(tmp_path, monkeypatch):
    """Packages unpack into the test's folder, not the user's cache."""
    monkeypatch.setattr(bioimageio, "PACKAGES", tmp_path / "cache")


def make_model(folder: Path, architecture: str) -> Path:
    """A model of random weights with plain and test-time augmented settings; its yaml."""
    torch.manual_seed(0)
    cfg = TrainConfig(**NETWORKS[architecture], model=str(folder / f"{architecture}.pt"))
    torch.save(build_model(cfg).state_dict(), cfg.model)
    path = write_model(cfg, cfg.model, {"epochs_trained": 3, "best": {"val_loss": 0.25}})
    tta = SegmentationSettings(0.4, 0.5, 0.5, 5, 0.9)
    save_segmentation(path, tta, tta=True)
    return path


@pytest.fixture(scope="module", params=sorted(NETWORKS))
def exported(request, tmp_path_factory):
    """(model yaml, its bioimage.io package, its ONNX file) of a tiny DCAN and U-Net."""
    folder = tmp_path_factory.mktemp(request.param)
    model = make_model(folder, request.param)
    package = export_package(model, folder / "model.zip", authors=("A. Biologist",))
    return model, package, export_onnx(model, folder / "model.onnx")


@pytest.mark.parametrize("exported", ["unet"], indirect=True)  # 4 s each: one is enough
def test_bioimageio_test_model_passes(exported):
    _model, package, _onnx = exported
    assert check_package(package) == []


def test_the_package_describes_the_network(exported):
    _model, package, _onnx = exported
    rdf = yaml.safe_load(zipfile.ZipFile(package).read("rdf.yaml"))
    assert rdf["format_version"].startswith("0.5.")
    assert set(rdf["weights"]) == {"pytorch_state_dict", "torchscript"}
    assert [a["type"] for a in rdf["inputs"][0]["axes"][:2]] == ["batch", "channel"]
    assert "scale_range" in [step["id"] for step in rdf["inputs"][0]["preprocessing"]]
    assert rdf["authors"] == [{"name": "A. Biologist"}]


def test_package_maps_equal_the_plugins_on_the_same_tiles(exported):
    from bioimageio.core import load_model_description, predict

    model, package, _onnx = exported
    raw = example_image(read_model(model))
    sample = predict(model=load_model_description(package), inputs={"image": raw})
    theirs = next(iter(sample.members.values())).data.to_numpy()
    network, _, _ = exported_network(read_model(model))
    with torch.no_grad():
        ours = network(torch.from_numpy(scale_range(raw))).numpy()
    assert theirs.shape == ours.shape and theirs.dtype == np.float32
    assert np.abs(theirs - ours).max() < 1e-4


def test_onnx_equals_torch_at_another_size(exported):
    import onnx

    model, _package, onnx_file = exported
    assert onnx_difference(onnx_file, model) < 1e-4
    props = {p.key: p.value for p in onnx.load(str(onnx_file)).metadata_props}
    assert props["opset"] == "17" and "boundaries" in props["channels"]
    assert dataclasses.asdict(read_model(model).config)["architecture"] in props["napari-cellseg"]


def test_a_package_reads_back_as_the_model_it_came_from(exported):
    model, package, _onnx = exported
    original, imported = read_model(model), read_model(package)
    assert imported.config == dataclasses.replace(original.config, model="weights.pt")
    assert imported.tta_segmentation == original.tta_segmentation
    assert imported.record == original.record
    image = np.random.default_rng(0).random((64, 96)).astype(np.float32)
    a, b = load_model(model), load_model(package)
    maps_a, maps_b = a.predict(image), b.predict(image)
    assert np.array_equal(maps_a[0], maps_b[0])
    cfg = TrainConfig(**NETWORKS[original.config.architecture], init_model=str(package))
    weights = init_weights(dataclasses.replace(cfg, model=str(Path(package).with_suffix(".pt"))))
    assert all(torch.equal(weights[k], v) for k, v in a.model.state_dict().items())


def test_cli_exports_the_built_in_model_that_predicts_the_same_instances(tmp_path, capsys):
    from napari_cellseg.data.io import read_image
    from napari_cellseg.sharing.networks import SAMPLE_IMAGE

    output = tmp_path / "nuclei.zip"
    assert cellseg(["export", "--config", "nuclei", "--output", str(output), "--no_check"]) == 0
    assert "wrote" in capsys.readouterr().out
    image = read_image(SAMPLE_IMAGE)[0]
    built_in, shared = load_model("nuclei"), load_model(output)
    ours = built_in.instances(*built_in.predict(image))
    theirs = shared.instances(*shared.predict(image))
    assert np.array_equal(ours, theirs) and len(np.unique(ours)) > 100
    readme = zipfile.ZipFile(output).read("README.md").decode()
    assert "24 pixels across" in readme and "CC0" in readme


def test_bad_exports_name_the_file_and_the_fix(tmp_path, exported):
    model, package, _onnx = exported
    with pytest.raises(ConfigError, match="exists; give another name, or --overwrite"):
        export_package(model, package)
    with pytest.raises(ConfigError, match="does not exist; create it"):
        export_onnx(model, tmp_path / "missing" / "m.onnx")
    with pytest.raises(ConfigError, match="ending in .zip"):
        export_package(model, tmp_path / "m.tar")
    folder = tmp_path / "folder.onnx"
    folder.mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        export_onnx(model, folder)
    no_weights = tmp_path / "lost.yaml"
    weights = str(Path(model).with_suffix(".pt"))
    no_weights.write_text(Path(model).read_text().replace(weights, "lost.pt"))
    with pytest.raises(ConfigError, match="does not exist"):
        export_package(no_weights, tmp_path / "lost.zip")
    assert not (tmp_path / "lost.zip").exists()


def test_bad_packages_are_refused_with_what_to_do(tmp_path):
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ConfigError, match="not a readable bioimage.io model package"):
        read_model(corrupt)
    foreign = tmp_path / "stardist.zip"
    with zipfile.ZipFile(foreign, "w") as archive:
        rdf = {"name": "StarDist nuclei", "weights": {"tensorflow_saved_model_bundle": {}}}
        archive.writestr("rdf.yaml", yaml.safe_dump(rdf))
    with pytest.raises(ConfigError, match="another tool.*StarDist nuclei.*DCAN and U-Net"):
        read_model(foreign)
    with pytest.raises(CellsegError, match="does not exist"):
        read_model(tmp_path / "missing.zip")


def test_cli_refuses_an_unknown_format(tmp_path, capsys):
    assert cellseg(["export", "--config", "nuclei", "--output", str(tmp_path / "m.h5")]) == 2
    assert ".zip (bioimage.io) or .onnx file" in capsys.readouterr().err
