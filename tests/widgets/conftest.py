"""Fixtures of the napari widget tests: a viewer with synthetic layers, caught notifications."""

from __future__ import annotations

import pytest

from napari_cellseg.data.synthetic import make_nuclei


@pytest.fixture(autouse=True)
def built_in_model_first():
    """Every test starts as napari does: the widgets' shared model is the built-in one."""
    from napari_cellseg.model_file import BUILTIN_MODELS
    from napari_cellseg.widgets._worker import current_model

    current_model.set(BUILTIN_MODELS["nuclei"])


@pytest.fixture
def notes():
    """Messages of the napari notifications (errors, infos) shown during the test."""
    from napari.utils.notifications import notification_manager

    messages: list[str] = []

    def keep(event):
        messages.append(str(event.message if hasattr(event, "message") else event))

    notification_manager.notification_ready.connect(keep)
    yield messages
    notification_manager.notification_ready.disconnect(keep)


@pytest.fixture
def viewer(make_napari_viewer):
    """A viewer with two small synthetic image/labels pairs: 'a' + 'a labels', 'b' + 'b labels'."""
    viewer = make_napari_viewer()
    for name, seed in (("a", 0), ("b", 1)):
        image, labels = make_nuclei((64, 64), blobs=1, seed=seed)
        viewer.add_image(image, name=name)
        viewer.add_labels(labels, name=f"{name} labels")
    return viewer


@pytest.fixture
def open_widget(viewer):
    """Open one of the plugin's dock widgets by its manifest name, as the Plugins menu does."""

    def open_(name: str):
        _dock, widget = viewer.window.add_plugin_dock_widget("napari-cellseg", name)
        return widget

    return open_


@pytest.fixture(scope="session")
def model_yaml(tmp_path_factory, tiny_settings) -> str:
    """A tiny model trained for one epoch on synthetic data (its quality does not matter here)."""
    from napari_cellseg.config import TrainConfig
    from napari_cellseg.data.synthetic import write_dataset
    from napari_cellseg.model_file import yaml_beside
    from napari_cellseg.training.loop import run_training

    folder = tmp_path_factory.mktemp("model")
    data = write_dataset(folder / "data", 4, shape=(64, 64), blobs=1, seed=3)
    cfg = TrainConfig(
        **tiny_settings,
        train_data=str(data),
        model=str(folder / "tiny.pt"),
        epochs=1,
        augments=0,
        tb_samples=0,
    )
    return str(yaml_beside(run_training(cfg).model_path))
