"""The training dock: layers -> engine in a worker, curves, Stop, errors as notifications."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from small_runs import TINY_RUN

from napari_cellseg.config import MODEL_SETTINGS, TrainConfig
from napari_cellseg.config_io import load_yaml
from napari_cellseg.data.synthetic import make_nuclei
from napari_cellseg.model_file import BUILTIN_MODELS, yaml_beside
from napari_cellseg.segmentation.settings import SegmentationSettings
from napari_cellseg.widgets._worker import current_model
from napari_cellseg.widgets.train_widget import TrainWidget

TIMEOUT = 180_000  # ms: generous, CPU shared with other jobs


def tiny(widget, model: Path, **changes) -> None:
    """Set the form to a run small enough for a test."""
    values = dict(
        **TINY_RUN,
        epochs=2,
        augments=0,
        model=str(model),
        tb_samples=0,
    )
    values.update(changes)
    for name, value in values.items():
        w = widget.form.widgets[name]
        w.value = value if not isinstance(w.value, str) else str(value)


def add_pair(widget, viewer, name: str) -> None:
    """Add the layers ``name`` and ``name labels`` as a training pair."""
    widget.train_pairs.add_row()
    row = list(widget.train_pairs._rows)[-1]
    row[0].value, row[1].value = viewer.layers[name], viewer.layers[f"{name} labels"]


def run(qtbot, widget) -> list:
    """Start training and wait for the worker to end; the events it yielded."""
    events = []
    widget.start_training()
    if widget.worker is not None:
        widget.worker.yielded.connect(events.append)
        qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT)
    return events


@pytest.fixture
def train_widget(open_widget):
    return open_widget("Train")


def test_form_holds_every_setting_with_its_default(train_widget):
    model = train_widget.form.config().model  # the dock's own: a new file (see below)
    assert train_widget.form.config() == TrainConfig(model=model)
    lr = train_widget.form.widgets["lr"]
    assert lr.tooltip == TrainConfig.__dataclass_fields__["lr"].metadata["help"]
    assert train_widget.form.widgets["architecture"].choices == ("dcan", "unet")
    assert train_widget.form.widgets["im_dim"] in train_widget.form.advanced


def test_trains_two_epochs_from_layers(qtbot, train_widget, tmp_path, viewer, open_widget):
    tiny(train_widget, tmp_path / "m.pt")
    add_pair(train_widget, viewer, "b")
    events = run(qtbot, train_widget)

    plot = train_widget.plot
    assert [x for x, _ in plot.points("train loss")] == [1, 2]
    assert [x for x, _ in plot.points("val loss")] == [1, 2]
    assert len(plot.points("val objects IoU")) == 2
    assert all(0 <= y <= 1 for _, y in plot.points("val boundaries IoU"))
    assert plot.points("batch loss (smoothed)")[-1][0] == 2.0
    assert train_widget.epoch_bar.value() == 2
    assert train_widget.start.enabled and not train_widget.stop.enabled
    finished = events[-1]
    assert type(finished).__name__ == "TrainFinished" and finished.reason == "completed"
    assert current_model.path == str(yaml_beside(finished.model_path))
    assert "Best on validation: loss" in train_widget.status.text()
    assert load_yaml(current_model.path).im_dim == 32
    assert open_widget("Predict").model_panel.picker.line_edit.value == current_model.path


def test_stop_ends_cleanly_with_a_usable_checkpoint(qtbot, train_widget, tmp_path, viewer):
    tiny(train_widget, tmp_path / "s.pt", epochs=50)
    add_pair(train_widget, viewer, "b")
    events = []
    train_widget.start_training()
    train_widget.worker.yielded.connect(events.append)
    qtbot.waitUntil(lambda: len(train_widget.plot.points("train loss")) > 0, timeout=TIMEOUT)
    train_widget.stop.changed.emit()
    assert not train_widget.stop.enabled
    qtbot.waitUntil(lambda: train_widget.worker is None, timeout=TIMEOUT)

    finished = events[-1]
    assert type(finished).__name__ == "TrainFinished" and finished.reason == "stopped"
    assert finished.epochs_run < 50
    assert "stopped" in train_widget.status.text()
    from napari_cellseg.inference.predictor import load_model

    predictor = load_model(yaml_beside(finished.model_path))
    objects, boundaries = predictor.predict(np.zeros((40, 40), np.uint8))
    assert objects.shape == boundaries.shape == (40, 40)


BAD_INPUTS = {  # problem -> what the notification says; "no labels" last: it removes them
    "shape": "labels must have the image's size",
    "no model": "Set 'model'",
    "unwritable model": "folder cannot be written",
    "bad lr": "Setting 'lr'",
    "no val folder": "Set 'val data' to a folder",
    "no labels": "Pair 1 lacks its labels layer",
}


def test_bad_input_is_a_notification(qtbot, train_widget, viewer, tmp_path, notes):
    """Each problem in turn on one dock (a viewer per problem costs 2 s)."""
    for problem, expected in BAD_INPUTS.items():
        notes.clear()
        tiny(train_widget, tmp_path / "m.pt", lr=1e-3)
        train_widget.val_source.value = "held-out fraction"
        train_widget.train_pairs._rows[0][1].value = viewer.layers["a labels"]
        if problem == "no labels":
            for name in ("a labels", "b labels", "small labels"):
                viewer.layers.remove(name)
        elif problem == "shape":  # picked by hand: the rows choose labels of the image's size
            small = viewer.add_labels(np.zeros((32, 32), np.uint16), name="small labels")
            train_widget._refresh_layers()
            train_widget.train_pairs._rows[0][1].value = small
        elif problem == "unwritable model":
            blocker = tmp_path / "file"
            blocker.write_text("not a folder")
            train_widget.form.widgets["model"].value = str(blocker / "m.pt")
        elif problem == "no model":
            train_widget.form.widgets["model"].line_edit.value = ""
        elif problem == "no val folder":
            train_widget.val_source.value = "folders"
        elif problem == "bad lr":
            train_widget.form.widgets["lr"].value = "fast"
        train_widget._refresh_layers()
        train_widget.start_training()
        assert any(expected.lower() in n.lower() for n in notes), (problem, notes)
        assert train_widget.worker is None and train_widget.start.enabled


def test_float_labels_in_a_folder_fail_in_the_worker_and_reset(
    qtbot, train_widget, tmp_path, notes
):
    import tifffile

    for sub, array in (("images", np.zeros((32, 32), np.uint8)), ("labels", np.ones((32, 32)))):
        (tmp_path / "data" / sub).mkdir(parents=True)
        tifffile.imwrite(tmp_path / "data" / sub / "x.tif", array.astype(array.dtype))
    tiny(train_widget, tmp_path / "m.pt")
    train_widget.source.value = "folders"
    train_widget.form.widgets["train_data"].value = str(tmp_path / "data")
    run(qtbot, train_widget)
    assert any("float64" in n and "integer" in n for n in notes), notes
    assert train_widget.start.enabled and not train_widget.stop.enabled
    assert "failed" in train_widget.status.text()


def test_labels_painted_with_the_blob_value_are_explained(
    qtbot, train_widget, tmp_path, viewer, notes
):
    painted = viewer.add_labels((viewer.layers["a labels"].data > 0).astype(np.uint8), name="p")
    tiny(train_widget, tmp_path / "m.pt")
    train_widget.train_pairs._rows[0][1].value = painted
    run(qtbot, train_widget)
    assert any("'a'" in n and "marks blobs" in n and "press M" in n for n in notes), notes
    assert train_widget.start.enabled and not Path(tmp_path / "m.pt").exists()


def test_unlabelled_slices_of_a_stack_are_left_out_and_said(
    qtbot, train_widget, tmp_path, viewer, notes
):
    image, labels = viewer.layers["a"].data, viewer.layers["a labels"].data
    viewer.add_image(np.stack([image] * 3), name="stack")
    viewer.add_labels(np.stack([labels, 0 * labels, 0 * labels]), name="stack labels")
    tiny(train_widget, tmp_path / "s.pt", epochs=1)
    row = train_widget.train_pairs._rows[0]
    row[0].value, row[1].value = viewer.layers["stack"], viewer.layers["stack labels"]
    run(qtbot, train_widget)
    assert "'stack': 1 of 3 slices hold labels; the others are left out." in notes
    assert (tmp_path / "s.pt").exists()


@pytest.mark.parametrize("how", ["close", "napari's dock ×"])
def test_closing_the_dock_stops_the_run_after_the_batch_and_keeps_it(
    qtbot, train_widget, tmp_path, viewer, notes, how
):
    tiny(train_widget, tmp_path / "c.pt", epochs=500)
    add_pair(train_widget, viewer, "b")
    before = current_model.path
    train_widget.start_training()
    worker = train_widget.worker
    qtbot.waitUntil(lambda: bool(train_widget.plot.points("train loss")), timeout=TIMEOUT)
    if how == "close":
        train_widget.close()
    else:  # what napari does when its title bar's x is clicked: no close event
        train_widget.setParent(None)
    qtbot.waitUntil(lambda: not worker.is_running, timeout=TIMEOUT)
    assert train_widget._stop.is_set() and not worker.abort_requested  # saved, not dropped
    assert (tmp_path / "c.pt").exists() and current_model.path == before
    assert any("Training stopped when its dock was closed" in n for n in notes)


def test_a_stop_inside_the_first_epoch_keeps_no_model_for_prediction(
    qtbot, train_widget, tmp_path, viewer, notes
):
    image, labels = make_nuclei((256, 256), seed=3)  # 64 crops of 32 px: 32 batches an epoch
    viewer.add_image(image, name="big")
    viewer.add_labels(labels, name="big labels")
    tiny(train_widget, tmp_path / "f.pt", epochs=5, trim_method="reflect")
    add_pair(train_widget, viewer, "big")
    before = current_model.path
    train_widget.start_training()
    qtbot.waitUntil(
        lambda: bool(train_widget.plot.points("batch loss (smoothed)")), timeout=TIMEOUT
    )
    train_widget.stop.changed.emit()
    qtbot.waitUntil(lambda: train_widget.worker is None, timeout=TIMEOUT)
    assert train_widget.status.text() == (
        "Stopped before the first epoch ended: no model to predict with."
    )
    assert current_model.path == before and train_widget.epoch_bar.value() == 0


def test_settings_save_and_load_as_model_yaml(train_widget, open_widget, tmp_path):
    path = str(tmp_path / "settings.yaml")
    tiny(train_widget, tmp_path / "m.pt", lr="2e-4", architecture="dcan")
    train_widget.form.widgets["blob_label"].value = "none"
    train_widget.form.save(path)
    saved = load_yaml(path)
    assert (saved.lr, saved.architecture, saved.blob_label, saved.im_dim) == (
        2e-4,
        "dcan",
        None,
        32,
    )

    other = TrainWidget(train_widget.viewer)
    other.form.load(path)
    assert other.form.config() == saved
    assert other.form.widgets["lr"].value == "0.0002"


def test_a_new_pair_row_picks_the_next_image_and_its_labels(train_widget, viewer):
    viewer.add_labels(np.zeros((8, 8), np.uint16), name="unrelated labels")
    train_widget.train_pairs.add_row()
    rows = list(train_widget.train_pairs._rows)
    assert [(r[0].value.name, r[1].value.name) for r in rows] == [
        ("a", "a labels"),
        ("b", "b labels"),
    ]
    colour = np.stack([viewer.layers["a"].data] * 3, axis=-1)
    viewer.add_image(colour, name="colour", rgb=True)
    viewer.add_labels(viewer.layers["a labels"].data.copy(), name="colour labels")
    train_widget.train_pairs.add_row()  # an RGB image's labels have its height and width
    assert [r[1].value.name for r in train_widget.train_pairs._rows][-1] == "colour labels"
    assert train_widget.train_pairs.stacks()[-1].image.shape == (1, *colour.shape[:2])


def test_long_layer_names_do_not_widen_the_dock(train_widget, viewer):
    name = "20231105_HeLa_H2B-GFP_position03_timepoint001_" * 4
    viewer.add_image(viewer.layers["a"].data, name=name)
    viewer.add_labels(viewer.layers["a labels"].data, name=f"{name} labels")
    train_widget.train_pairs.add_row()
    first, row = train_widget.train_pairs._rows
    row[0].value = viewer.layers[name]
    assert row[1].value.name == f"{name} labels"
    assert row.native.sizeHint().width() == first.native.sizeHint().width()
    assert name in row[0].tooltip  # the whole name


def test_picking_a_model_to_fine_tune_takes_its_network_and_segmentation_settings(
    train_widget,
):
    from qtpy.QtWidgets import QPushButton

    tiny(train_widget, Path("m.pt"), lr="2e-4")
    fine_tune = next(w for w in train_widget.findChildren(QPushButton) if "built-in" in w.text())
    fine_tune.click()
    cfg = train_widget.form.config()
    built_in = load_yaml(BUILTIN_MODELS["nuclei"])
    assert all(getattr(cfg, key) == getattr(built_in, key) for key in MODEL_SETTINGS)
    settings = SegmentationSettings.of(cfg)
    assert settings == SegmentationSettings.of(built_in) != SegmentationSettings.of(TrainConfig())
    assert (cfg.start_filters, cfg.object_diameter, cfg.lr) == (16, 24.0, 2e-4)
    assert "nuclei-dsb2018-fluo.yaml" in train_widget.status.text()


def test_a_new_dock_has_a_model_path_of_its_own_and_a_cpu_preset(viewer, monkeypatch, tmp_path):
    from napari_cellseg.config import CPU_NETWORK

    monkeypatch.setenv("HOME", str(tmp_path))
    widget = TrainWidget(viewer)
    path = Path(str(widget.form.widgets["model"].value))
    assert path.parent == tmp_path / "napari-cellseg" / "models"
    assert path.suffix == ".pt" and not path.exists()  # Start works at once, replacing nothing
    widget.use_cpu_network()
    cfg = widget.form.config()
    assert {key: getattr(cfg, key) for key in CPU_NETWORK} == CPU_NETWORK
    assert "small CPU network is set" in widget.status.text()


def test_a_pair_follows_the_labels_the_user_corrected_last(train_widget, viewer):
    from napari_cellseg.widgets._layers import OWNER_KEY

    pairs = train_widget.train_pairs
    prediction = viewer.add_labels(
        viewer.layers["a labels"].data.copy(),
        name="a instances",
        metadata={OWNER_KEY: "instances"},
    )
    train_widget._refresh_layers()
    row = pairs._rows[0]
    assert row[1].value.name == "a labels"  # the untouched prediction does not train
    assert pairs.summary.value == "'a' learns from 'a labels'."

    prediction.paint((3, 3), 7)  # the user corrects the prediction
    assert row[1].value is prediction
    assert pairs.summary.value == "'a' learns from 'a instances' (edited by you)."

    row[1].value = viewer.layers["a labels"]  # picked by hand: kept whatever is edited
    prediction.paint((5, 5), 8)
    assert row[1].value.name == "a labels"
    assert pairs.best_labels(viewer.layers["b"], row[1].choices).name == "b labels"
