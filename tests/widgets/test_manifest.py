"""The npe2 manifest: valid, importable without torch, and each contribution works in a viewer."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from npe2 import PluginManifest

from napari_cellseg.config import TrainConfig
from napari_cellseg.config_io import save_yaml
from napari_cellseg.widgets._worker import current_model
from napari_cellseg.widgets.blobs_widget import BlobsWidget
from napari_cellseg.widgets.predict_widget import PredictWidget
from napari_cellseg.widgets.reader import get_reader
from napari_cellseg.widgets.review_widget import ReviewWidget
from napari_cellseg.widgets.train_widget import TrainWidget


@pytest.fixture(scope="module")
def manifest() -> PluginManifest:
    return PluginManifest.from_distribution("napari-cellseg")


def test_manifest_is_valid_and_its_python_names_import(manifest):
    manifest.validate_imports()
    names = {c.id.split(".")[-1] for c in manifest.contributions.commands}
    assert names == {
        "train", "predict", "blobs", "review", "sample_dsb2018", "sample_nuclei",
        "sample_nuclei_stack", "read_model",
    }  # fmt: skip


def test_importing_every_contribution_does_not_import_torch(manifest):
    code = (
        "import importlib, sys\n"
        f"for name in {[c.python_name for c in manifest.contributions.commands]!r}:\n"
        "    module, attr = name.split(':')\n"
        "    getattr(importlib.import_module(module), attr)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_opening_every_widget_and_the_sample_does_not_import_torch():
    code = (
        "import sys, napari\n"
        "viewer = napari.Viewer(show=False)\n"
        "viewer.open_sample('napari-cellseg', 'nuclei')\n"
        "for name in ('Train', 'Predict', 'Blob inspector', 'Review objects'):\n"
        "    viewer.window.add_plugin_dock_widget('napari-cellseg', name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))\n"
        "viewer.close()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    "name, cls",
    [
        ("Train", TrainWidget),
        ("Predict", PredictWidget),
        ("Blob inspector", BlobsWidget),
        ("Review objects", ReviewWidget),
    ],
)
def test_widgets_open_from_the_manifest(open_widget, name, cls):
    assert isinstance(open_widget(name), cls)


def test_every_widget_opens_in_an_empty_viewer_and_follows_new_layers(make_napari_viewer):
    viewer = make_napari_viewer()
    train = viewer.window.add_plugin_dock_widget("napari-cellseg", "Train")[1]
    predict = viewer.window.add_plugin_dock_widget("napari-cellseg", "Predict")[1]
    viewer.window.add_plugin_dock_widget("napari-cellseg", "Blob inspector")
    image = viewer.add_image(np.zeros((16, 16), np.uint8), name="new")
    assert predict.image.value is image
    assert list(train.train_pairs._rows)[0][0].choices == (image,)


def test_sample_data_has_nuclei_and_blobs(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-cellseg", "nuclei")
    image, labels = viewer.layers["nuclei"], viewer.layers["nuclei labels"]
    assert image.data.shape == labels.data.shape == (512, 512)
    values = np.unique(labels.data)
    assert values[0] == 0 and 1 in values and len(values) > 20


def test_the_real_sample_is_segmented_well_by_the_built_in_model(make_napari_viewer):
    from napari_cellseg.analysis.matching import matching
    from napari_cellseg.inference.predictor import load_model

    viewer = make_napari_viewer()
    viewer.open_sample("napari-cellseg", "dsb2018")
    image, labels = viewer.layers["DSB2018 nuclei"], viewer.layers["DSB2018 nuclei labels"]
    assert image.data.shape == labels.data.shape == (520, 696)
    assert len(np.unique(labels.data)) - 1 == 148 and labels.data.min() == 0
    predictor = load_model("nuclei", "cpu")
    found = predictor.instances(*predictor.predict(image.data))
    assert matching(labels.data, found).thresholds[0.5].ap > 0.9  # 0.967 measured


def test_the_z_stack_sample_is_calibrated_in_micrometres(make_napari_viewer):
    from napari_cellseg.widgets._layers import pixel_size, z_spacing

    viewer = make_napari_viewer()
    viewer.open_sample("napari-cellseg", "nuclei_stack")
    image, labels = viewer.layers["nuclei stack"], viewer.layers["nuclei stack labels"]
    assert image.data.shape == labels.data.shape == (24, 256, 256)
    assert pixel_size(image) == (0.5, 0.5) and z_spacing(image) == 1.0
    pages = [np.flatnonzero((labels.data == v).any(axis=(1, 2))) for v in range(2, 12)]
    assert all(len(p) > 1 for p in pages)  # 3D nuclei over several slices


def test_dropping_a_model_yaml_selects_it_for_prediction(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    path = save_yaml(TrainConfig(model=str(tmp_path / "m.pt")), tmp_path / "m.yaml")
    viewer.open(str(path), plugin="napari-cellseg")
    assert len(viewer.layers) == 0
    assert current_model.path == str(path)
    widget = viewer.window.dock_widgets["Predict (napari-cellseg)"]
    assert widget.model_panel.picker.line_edit.value == str(path)


def test_reader_leaves_other_yaml_files_alone(tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text("name: not a model\n")
    assert get_reader(str(other)) is None
    assert get_reader(str(tmp_path / "image.tif")) is None
