"""Screenshots of the plugin's three widgets docked in napari with the sample data.

Writes ``docs/train_widget.png``, ``docs/predict_widget.png``, ``docs/measurements.png``
(the predicted objects' measurements in napari's Features table widget),
``docs/blob_inspector.png``, ``docs/stitched_3d.png`` (the built-in model's nuclei of
the synthetic z-stack sample, stitched into 3D objects, in napari's 3D view) and
``docs/review.png`` (the Review dock on the built-in model's objects of the real sample).  It first
trains a small network for a minute, so the training curves and the blob split are real;
the Predict dock shows the built-in nuclei model on a real DSB2018 validation image (from
``../shared/data``; the synthetic sample when it is absent).  Run under a display::

    xvfb-run -a python scripts/screenshots.py            # all of them
    xvfb-run -a python scripts/screenshots.py --only 3d  # the z-stack one alone
    xvfb-run -a python scripts/screenshots.py --only review
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from napari_cellseg.config import CPU_NETWORK

DOCS = Path(__file__).resolve().parents[1] / "docs"
REAL_IMAGE = (
    Path(__file__).resolve().parents[2]
    / "shared/data/dsb2018-fluo/val/images"
    / "4d2cff9a0c8df3a7ef6100fda6f66e865a7670af6a18564767d8019b9ed2fd7b.png"
)
PLUGIN = "napari-cellseg"
SETTINGS = dict(
    **CPU_NETWORK,
    epochs=40,
    batch=4,
    augments=2,
    num_workers=0,
    tb_samples=0,
    tune_postprocess=False,
    trim_method="reflect",
)


def wait_until(done) -> None:
    """Run the Qt event loop until ``done()`` is true."""
    from qtpy.QtCore import QEventLoop, QTimer

    loop, timer = QEventLoop(), QTimer(interval=100)
    timer.timeout.connect(lambda: done() and loop.quit())
    timer.start()
    loop.exec()
    timer.stop()


def settle(viewer, path: Path) -> None:
    """Let the window lay out and paint, then save a screenshot of the whole window."""
    from qtpy.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(800, loop.quit)
    loop.exec()
    viewer.screenshot(str(path), canvas_only=False, flash=False)
    print(f"wrote {path}")


def close_docks(viewer) -> None:
    for name in list(viewer.window.dock_widgets):
        viewer.window.remove_dock_widget(viewer.window.dock_widgets[name])


def stack_shot(viewer) -> None:
    """The built-in model's nuclei of the z-stack sample, stitched, in the 3D view."""
    from napari_cellseg.model_file import BUILTIN_MODELS
    from napari_cellseg.widgets._worker import current_model

    current_model.set(BUILTIN_MODELS["nuclei"])
    viewer.open_sample(PLUGIN, "nuclei_stack")
    viewer.layers.remove("nuclei stack labels")
    _dock, predict = viewer.window.add_plugin_dock_widget(PLUGIN, "Predict")
    predict.image.value = viewer.layers["nuclei stack"]
    predict.predict()
    wait_until(lambda: predict.worker is None and predict.segmentation._post_worker is None)
    predict.segmentation.stitch.value = 0.5
    wait_until(lambda: "volume" in viewer.layers["nuclei stack instances"].features)
    wait_until(lambda: predict.segmentation._post_worker is None)
    for suffix in ("objects", "boundaries"):
        viewer.layers[f"nuclei stack {suffix}"].visible = False
    viewer.layers["nuclei stack"].visible = False
    viewer.layers.selection.active = viewer.layers["nuclei stack instances"]
    viewer.dims.ndisplay = 3
    viewer.reset_view()
    viewer.scene.camera.angles = (-15, 40, 140)
    viewer.scene.camera.zoom *= 0.9
    settle(viewer, DOCS / "stitched_3d.png")
    close_docks(viewer)


def review_shot(viewer) -> None:
    """The Review dock on the built-in model's objects of the real sample, two reviewed."""
    from napari_cellseg.model_file import BUILTIN_MODELS
    from napari_cellseg.widgets._worker import current_model

    current_model.set(BUILTIN_MODELS["nuclei"])
    viewer.open_sample(PLUGIN, "dsb2018")
    viewer.layers.remove(viewer.layers[-1])  # the annotation: review the prediction
    image = viewer.layers[-1]
    _dock, predict = viewer.window.add_plugin_dock_widget(PLUGIN, "Predict")
    predict.image.value = image
    predict.predict()
    wait_until(lambda: predict.worker is None and predict.segmentation._post_worker is None)
    instances = viewer.layers[f"{image.name} instances"]
    instances.contour = 2
    viewer.layers[f"{image.name} objects"].visible = False
    viewer.layers[f"{image.name} boundaries"].visible = False
    close_docks(viewer)
    _dock, review = viewer.window.add_plugin_dock_widget(PLUGIN, "Review objects")
    review.labels.value = instances
    review.start_review()
    review.decide("accepted")
    review.decide("accepted")
    settle(viewer, DOCS / "review.png")
    close_docks(viewer)


def main() -> None:
    import napari
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["3d", "review"], help="take only this screenshot")
    only = parser.parse_args().only
    if only:
        viewer = napari.Viewer()
        viewer.window.resize(1500, 950)
        (stack_shot if only == "3d" else review_shot)(viewer)
        viewer.close()
        return

    from napari_cellseg.data.synthetic import make_nuclei
    from napari_cellseg.model_file import BUILTIN_MODELS
    from napari_cellseg.widgets._worker import current_model

    viewer = napari.Viewer()
    viewer.window.resize(1500, 950)
    viewer.open_sample(PLUGIN, "nuclei")
    pairs = [make_nuclei((256, 256), blobs=1, seed=seed) for seed in range(10, 18)]
    second = [
        viewer.add_image(np.stack([image for image, _ in pairs]), name="more nuclei"),
        viewer.add_labels(np.stack([labels for _, labels in pairs]), name="more nuclei labels"),
    ]
    for layer in second:
        layer.visible = False

    _dock, train = viewer.window.add_plugin_dock_widget(PLUGIN, "Train")
    train.train_pairs.add_row()
    row = list(train.train_pairs._rows)[-1]
    row[0].value, row[1].value = second
    for name, value in {**SETTINGS, "model": str(Path(tempfile.mkdtemp()) / "nuclei.pt")}.items():
        widget = train.form.widgets[name]
        widget.value = str(value) if isinstance(widget.value, str) else value
    train.start_training()
    wait_until(lambda: train.worker is None)
    settle(viewer, DOCS / "train_widget.png")
    close_docks(viewer)
    for layer in second:
        viewer.layers.remove(layer)

    trained = current_model.path
    current_model.set(BUILTIN_MODELS["nuclei"])
    _dock, predict = viewer.window.add_plugin_dock_widget(PLUGIN, "Predict")
    for layer in viewer.layers:
        layer.visible = False
    image = viewer.open(REAL_IMAGE, name="DSB2018 nuclei")[0] if REAL_IMAGE.is_file() else None
    image = image or viewer.layers["nuclei"]
    image.visible = True
    viewer.layers.selection.active = image
    viewer.reset_view()
    predict.predict()
    wait_until(lambda: predict.worker is None and predict.segmentation._post_worker is None)
    viewer.layers[f"{image.name} instances"].contour = 2
    viewer.layers[f"{image.name} objects"].visible = False  # the image under the outlines
    settle(viewer, DOCS / "predict_widget.png")
    close_docks(viewer)
    viewer.layers.selection.active = viewer.layers[f"{image.name} instances"]
    viewer.window.add_plugin_dock_widget("napari", "Features table widget")
    settle(viewer, DOCS / "measurements.png")
    close_docks(viewer)

    for suffix in ("objects", "boundaries", "instances"):
        viewer.layers.remove(f"{image.name} {suffix}")
    if image.name != "nuclei":
        viewer.layers.remove(image)
    current_model.set(trained)
    viewer.layers["nuclei"].visible = viewer.layers["nuclei labels"].visible = True
    _dock, blobs = viewer.window.add_plugin_dock_widget(PLUGIN, "Blob inspector")
    blobs.labels.value = viewer.layers["nuclei labels"]
    blobs.image.value = viewer.layers["nuclei"]
    blobs.table.selectRow(0)
    blobs.propose_split()
    wait_until(lambda: blobs.accept.enabled)
    settle(viewer, DOCS / "blob_inspector.png")
    close_docks(viewer)
    viewer.layers.clear()
    stack_shot(viewer)
    viewer.layers.clear()
    viewer.dims.ndisplay = 2
    review_shot(viewer)
    viewer.close()


if __name__ == "__main__":
    main()
