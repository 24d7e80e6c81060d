"""The Predict dock's model part: which model, the object diameter, test-time augmentation."""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path

from magicgui.widgets import CheckBox, Container, FileEdit, FloatSpinBox, PushButton
from napari.utils.notifications import show_error, show_info, show_warning

from napari_cellseg.config import PredictConfig
from napari_cellseg.errors import CellsegError
from napari_cellseg.model_file import read_model
from napari_cellseg.widgets._predict_state import PredictState
from napari_cellseg.widgets._worker import current_model, start_worker

__all__ = ["ModelPanel", "model_picker", "PREDICT_HELP"]

PREDICT_HELP = {f.name: f.metadata["help"] for f in dataclasses.fields(PredictConfig)}
"""Tooltips of the prediction settings, from PredictConfig."""


def model_picker() -> FileEdit:
    """A model yaml picker that follows, and sets, the model shared by the widgets."""
    picker = FileEdit(mode="r", filter="*.yaml *.yml *.zip", label="model", nullable=True)
    picker.tooltip = (
        "settings (.yaml) of a trained model, or a bioimage.io package (.zip) exported by "
        "this plugin; the last trained model appears here"
    )
    picker.line_edit.value = current_model.path

    def follow(path: str) -> None:
        if picker.line_edit.value != path:
            picker.line_edit.value = path

    current_model.connect_while_alive(picker.native, follow)
    picker.changed.connect(lambda _v: current_model.set(picker.line_edit.value))
    return picker


class ModelPanel(Container):
    """The model picker, the diameter field (for models trained with object_diameter) and
    the test-time augmentation box; keeps ``state.model`` and ``state.tta`` current."""

    def __init__(self, state: PredictState) -> None:
        self.state = state
        self.picker = model_picker()
        self.diameter = FloatSpinBox(
            min=0, max=10**4, step=1, value=PredictConfig.diameter, label="diameter (0 = auto)"
        )
        self.diameter.tooltip = PREDICT_HELP["diameter"]
        self.tta = CheckBox(value=PredictConfig.tta, text="test-time augmentation (16x slower)")
        self.tta.tooltip = PREDICT_HELP["tta"]
        self.export = PushButton(text="Export model…")
        self.export.tooltip = (
            "write the model as a bioimage.io package (.zip: deepImageJ, QuPath, ilastik, "
            "napari) or an ONNX file, verified after writing"
        )
        super().__init__(widgets=[self.picker, self.diameter, self.tta, self.export])
        self.tta.changed.connect(self._tta_toggled)
        self.export.changed.connect(lambda: self.export_model())
        current_model.connect_while_alive(self.native, self.read_model)
        if current_model.path:
            self.read_model(current_model.path)

    def read_model(self, path: str) -> None:
        """Read the model at ``path`` into the state.

        The maps of the last prediction came from another model: they are dropped, so the
        new model's settings do not re-segment them (and re-add a deleted instances layer).
        """
        self.state.maps = None
        if not path:
            return
        try:
            model = read_model(path)
        except CellsegError as exc:
            show_error(str(exc))
            return
        self.diameter.enabled = bool(model.config.object_diameter)  # used by such models only
        self.state.model = model

    def _tta_toggled(self, value: bool) -> None:
        """Test-time augmented maps have settings of their own: the maps shown came from the
        other kind of prediction, so they are dropped rather than re-segmented."""
        self.state.maps = None
        self.state.tta = value

    def export_model(self, output: str = "") -> None:
        """Export the model (asks where, when ``output`` is empty) in a worker; the result
        and its verification come as a notification."""
        from napari_cellseg.sharing import export

        model = self.state.model
        if model is None:
            show_error("No model to export: pick a model .yaml first.")
            return
        if not output:
            output = _ask_export_path(model.path)
            if not output:
                return  # cancelled
        self.export.enabled = False

        def done(exported) -> None:
            (show_info if exported.passed else show_warning)(exported.summary())

        start_worker(
            partial(export, overwrite=True),  # the save dialog asked before replacing a file
            str(model.path),
            output,
            returned=done,
            finished=lambda: setattr(self.export, "enabled", True),
        )


def _ask_export_path(model_path: Path) -> str:
    """A save dialog for the exported file, starting at ``<model>.zip`` in the home folder
    (a built-in model's own folder is not yours to write)."""
    from qtpy.QtWidgets import QFileDialog

    start = Path.home() / f"{model_path.stem}.zip"
    path, _ = QFileDialog.getSaveFileName(
        None,
        "Export model",
        str(start),
        "bioimage.io model package (*.zip);;ONNX (*.onnx)",
    )
    return path
