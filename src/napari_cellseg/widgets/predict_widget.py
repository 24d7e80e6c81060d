"""The Predict dock: probability maps of the current layer (or a folder) in a worker.

The dock is small parts over one evented :class:`~._predict_state.PredictState`: the model
part (:mod:`._model_panel`), the segmentation part with its live thresholds, tuning and
saving (:mod:`._segmentation_panel`) and the measurement part (:mod:`._measure_panel`).
This module runs the predictions; it holds no numerics.
"""

from __future__ import annotations

from magicgui.widgets import Container, Label, PushButton
from napari.layers import Image
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QFileDialog, QProgressBar, QWidget

from napari_cellseg.config import PredictConfig
from napari_cellseg.errors import CellsegError
from napari_cellseg.widgets._big_image import default_output, lazy_image, show_result
from napari_cellseg.widgets._dock import TabsOnFirstShow, scrolling_layout
from napari_cellseg.widgets._layers import (
    OWNER_KEY,
    breakable,
    image_array,
    layer_combo,
    other_channels,
    output_layer,
    pixel_size,
    placement,
    z_spacing,
)
from napari_cellseg.widgets._measure_panel import MeasurePanel
from napari_cellseg.widgets._model_panel import ModelPanel
from napari_cellseg.widgets._predict_state import Maps, PredictState
from napari_cellseg.widgets._segmentation_panel import SegmentationPanel, button
from napari_cellseg.widgets._worker import (
    current_model,
    predict_blockwise,
    predict_files,
    predict_measured,
    start_worker,
)

__all__ = ["PredictWidget"]

_PREDICT, _CANCEL = "Predict on current layer", "Cancel prediction"


class PredictWidget(TabsOnFirstShow, QWidget):
    """Predict object/boundary maps and instances on an image layer with a trained model.

    Attributes
    ----------
    state : PredictState
        What the parts share: the model, test-time augmentation, the maps shown, status.
    model_panel, segmentation, measurements
        The dock's parts.
    """

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.state = PredictState()
        self.worker = None
        self._unfinished: dict[str, str] = {}  # cancelled blockwise outputs, by layer name
        self.model_panel = ModelPanel(self.state)
        self.image = layer_combo(napari_viewer, Image, label="image")
        self.run = PushButton(text=_PREDICT)
        self.run_folder = button(
            "Predict a folder…",
            "segment every image of a folder (its images/ sub-folder, or the images in it) "
            "with these settings, writing <name>_labels.tif, _objects.tif, _boundaries.tif "
            "and _measurements.csv into another folder",
        )
        self.segmentation = SegmentationPanel(napari_viewer, self.state)
        self.measurements = MeasurePanel(napari_viewer, self.state, lambda: self.image.value)
        self.status = Label(value="")
        self.status.native.setWordWrap(True)  # long layer names wrap, not widen the dock
        self.progress_bar = QProgressBar()
        self.progress_bar.setFormat("tile %v / %m")
        form = Container(
            widgets=[
                self.model_panel,
                self.image,
                self.run,
                self.run_folder,
                self.segmentation,
                self.measurements,
                self.status,
            ]
        )
        layout = scrolling_layout(self)
        layout.addWidget(form.native)
        layout.insertWidget(1, self.progress_bar)
        layout.addStretch()

        self.state.events.status.connect(
            lambda text: setattr(self.status, "value", breakable(text))
        )
        self.run.changed.connect(lambda: self.predict())
        self.run_folder.changed.connect(lambda: self.predict_folder())
        self.image.changed.connect(self._show_stitch)
        for event in ("inserted", "removed", "renamed", "reordered"):
            getattr(napari_viewer.layers.events, event).connect(self._refresh_layers)
        napari_viewer.layers.selection.events.active.connect(self._follow_active)
        self._follow_active()
        self._show_stitch()
        self.status.value = self.state.status

    def _refresh_layers(self, _event=None) -> None:
        self.image.reset_choices()

    def _follow_active(self, _event=None) -> None:
        active = self.viewer.layers.selection.active
        if isinstance(active, Image) and OWNER_KEY not in active.metadata:
            self.image.reset_choices()
            self.image.value = active

    def _show_stitch(self, _value=None) -> None:
        """The stitching slider is for stacks: shown when the image layer is one."""
        layer = self.image.value
        self.segmentation.stitch.visible = layer is not None and layer.ndim == 3

    def _set_progress(self, done: int, total: int) -> None:
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(done)

    def predict(self, output: str = "") -> None:
        """Predict on the chosen image layer in a worker; errors become notifications.

        While it runs, the button cancels it (after the current batch of tiles).  A large
        image is predicted block by block into the OME-Zarr ``output`` (asked for when
        empty).
        """
        if self.worker is not None:
            self.worker.quit()
            self.state.status = "Cancelling…"
            return
        layer = self.image.value
        try:
            if layer is None:
                raise CellsegError("No image layer: open an image to predict on.")
            if not current_model.path:
                raise CellsegError("No model: pick a model .yaml file or train one first.")
            big = lazy_image(layer)
            image = image_array(layer) if big is None else None
            if image is not None and image.ndim > 3:
                raise CellsegError(
                    f"'{layer.name}' has {image.ndim} dimensions {image.shape}; the dock "
                    "predicts an image or a stack (Z, H, W).  A multichannel stack (a Fiji "
                    "hyperstack) opens as one layer: open it as one layer per channel, in "
                    "napari's console viewer.open(path, channel_axis=1) for axes ZCYX, "
                    "and choose the channel that shows the objects."
                )
        except CellsegError as exc:
            show_error(str(exc))
            return
        if big is not None:
            self._predict_blockwise(layer, big, output)
            return
        model = self.state.model
        blob_label = model.config.blob_label if model else None
        context = (placement(layer), blob_label, image, pixel_size(layer), z_spacing(layer))
        channels = other_channels(self.viewer, layer)
        self._started(f"Predicting on '{layer.name}'…")
        self.worker = start_worker(
            predict_measured,
            current_model.path,
            image,
            self.model_panel.diameter.value,
            self.state.tta,
            yielded=lambda progress: self._set_progress(progress.done, progress.total),
            returned=lambda result: self._show_maps(
                Maps(layer.name, *result[:2], *context, channels, augmented=result[2])
            ),
            errored=lambda _exc: setattr(self.state, "status", "Prediction failed."),
            aborted=lambda: setattr(self.state, "status", "Prediction cancelled."),
            finished=self._predict_finished,
        )

    def _started(self, status: str, progress: str = "tile %v / %m") -> None:
        self.run.text, self.run_folder.enabled = _CANCEL, False
        self.progress_bar.setFormat(progress)
        self._set_progress(0, 1)  # not the last run's count
        self.state.status = status

    def _predict_blockwise(self, layer: Image, image, output: str) -> None:
        """Segment a large layer block by block into an OME-Zarr; the results come back as
        layers reading it.  Cancelled, it keeps the finished blocks: predicting into the
        same output (proposed next time) goes on from them."""
        if not output:
            suggested = self._unfinished.get(layer.name) or default_output(layer)
            output, _ = QFileDialog.getSaveFileName(
                self, f"OME-Zarr for the results of '{layer.name}'", str(suggested)
            )
        if not output:
            return
        output = output if output.rstrip("/").endswith(".zarr") else output + ".zarr"
        options = {
            "settings": self.segmentation.settings(),
            "block": PredictConfig.block_size,
            "diameter": self.model_panel.diameter.value,
        }
        height, width = image.shape
        self._started(
            f"'{layer.name}' ({height} x {width}) is predicted block by block into '{output}'…",
            "step %v / %m",
        )

        def cancelled() -> None:
            self._unfinished[layer.name] = output
            self.state.status = (
                f"Cancelled: '{output}' keeps the finished blocks; predict again into it to go on."
            )

        self.worker = start_worker(
            predict_blockwise,
            current_model.path,
            image,
            output,
            self.state.tta,
            options,
            yielded=lambda counts: self._set_progress(*counts),
            returned=lambda result: self._blockwise_done(layer, result),
            errored=lambda _exc: setattr(self.state, "status", "Prediction failed."),
            aborted=cancelled,
            finished=self._predict_finished,
        )

    def _blockwise_done(self, layer: Image, result) -> None:
        self._unfinished.pop(layer.name, None)
        self.state.maps = None  # the thresholds apply to the next prediction
        show_result(self.viewer, layer.name, result, placement(layer))
        self.state.status = (
            f"'{layer.name}': {result.objects} objects in {result.blocks} blocks, written to "
            f"'{result.path}' (the layers read it from there)."
        )

    def predict_folder(self, folder: str = "", output: str = "") -> None:
        """Segment every image of ``folder`` into files in ``output`` (asked for when empty).

        The dock's settings apply (model, diameter, test-time augmentation, thresholds);
        the button above cancels after the current image.
        """
        if self.worker is not None:
            return
        folder = folder or QFileDialog.getExistingDirectory(self, "Folder of images to segment")
        if folder and not output:
            output = QFileDialog.getExistingDirectory(self, "Folder for the results")
        if not (folder and output):
            return
        options = {
            "diameter": self.model_panel.diameter.value,
            "tta": self.state.tta,
            "stitch_threshold": self.segmentation.stitch.value,
            "measure": True,
            "rois": True,
        }
        self._started(f"Segmenting the images of '{folder}'…", "image %v / %m")
        self.worker = start_worker(
            predict_files,
            current_model.path,
            folder,
            output,
            options,
            self.segmentation.settings(),
            yielded=lambda counts: self._set_progress(*counts),
            returned=lambda total: self._folder_done(total, output),
            errored=lambda _exc: setattr(self.state, "status", "Prediction failed."),
            aborted=lambda: setattr(self.state, "status", "Prediction cancelled."),
            finished=self._predict_finished,
        )

    def _folder_done(self, total: int, output: str) -> None:
        self.state.status = f"{total} images segmented into '{output}'."
        show_info(self.state.status)

    def _predict_finished(self) -> None:
        self.worker = None
        self.run.text, self.run_folder.enabled = _PREDICT, True
        self.progress_bar.setFormat("tile %v / %m")

    def _show_maps(self, maps: Maps) -> None:
        for role, data, colormap in (
            ("objects", maps.objects, "green"),
            ("boundaries", maps.boundaries, "magenta"),
        ):
            output_layer(
                self.viewer,
                data,
                kind="image",
                name=f"{maps.name} {role}",
                tag=f"{role}:{maps.name}",
                colormap=colormap,
                blending="additive",
                contrast_limits=(0.0, 1.0),
                **maps.placement,
            )
        self.state.maps = maps  # the segmentation part segments them
