"""A biologist's loop in one viewer: segment with the built-in model, correct, fine-tune."""

from __future__ import annotations

import numpy as np
from qtpy.QtWidgets import QPushButton

from napari_cellseg.config_io import load_yaml
from napari_cellseg.data.io import read_image
from napari_cellseg.data.labels import count_objects
from napari_cellseg.model_file import BUILTIN_MODELS
from napari_cellseg.segmentation.settings import SegmentationSettings
from napari_cellseg.widgets._worker import current_model

TIMEOUT = 180_000  # ms
IMAGE = "0532c64c*.png"  # a real 360 x 360 validation image, 24 nuclei


def test_predict_correct_fine_tune_and_predict_again(
    shared_data, qtbot, make_napari_viewer, tmp_path, notes
):  # shared_data first: without the data it skips before napari's viewer fixture is set up
    viewer = make_napari_viewer()
    path = next((shared_data / "val" / "images").glob(IMAGE))
    image = viewer.add_image(read_image(path)[0], name="cells")
    _dock, predict = viewer.window.add_plugin_dock_widget("napari-cellseg", "Predict")
    predict.predict()
    qtbot.waitUntil(lambda: predict.worker is None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: predict.segmentation._post_worker is None, timeout=TIMEOUT)
    found = viewer.layers["cells instances"]
    assert abs(count_objects(found.data) - 24) <= 3
    assert predict.status.value == f"'cells': {count_objects(found.data)} objects."

    # correct: erase one object, draw a missed one with the brush's fresh value
    found.fill(tuple(np.argwhere(found.data == 2)[0]), 0)
    new = found.selected_label
    found.paint((5, 5), new)
    corrected = found.data.copy()
    assert 2 not in corrected and new in corrected and 1 not in corrected

    _dock, trainer = viewer.window.add_plugin_dock_widget("napari-cellseg", "Train")
    row = trainer.train_pairs._rows[0]
    assert (row[0].value, row[1].value) == (image, found)  # the corrected layer, by name
    next(b for b in trainer.findChildren(QPushButton) if "built-in" in b.text()).click()
    for name, value in dict(epochs=1, num_workers=0, tb_samples=0).items():
        trainer.form.widgets[name].value = value
    trainer.form.widgets["model"].value = str(tmp_path / "mine.pt")
    trainer.start_training()
    qtbot.waitUntil(lambda: trainer.worker is None, timeout=TIMEOUT)
    assert "Finished (completed) after 1 epoch." in trainer.status.text(), notes
    assert current_model.path.startswith(str(tmp_path))
    assert any("fewer than 100 objects" in n for n in notes)  # a few nuclei held out
    built_in = load_yaml(BUILTIN_MODELS["nuclei"])
    saved = load_yaml(current_model.path)
    assert SegmentationSettings.of(saved) == SegmentationSettings.of(built_in)
    assert predict.model_panel.picker.line_edit.value == current_model.path

    predict.image.value = image
    predict.predict()
    qtbot.waitUntil(lambda: predict.worker is None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: predict.segmentation._post_worker is None, timeout=TIMEOUT)
    assert np.array_equal(found.data, corrected)  # the corrections are kept
    assert abs(count_objects(viewer.layers["cells instances [1]"].data) - 24) <= 6
