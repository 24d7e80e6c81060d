"""Predict on the current layer: probability maps in a worker, live post-processing thresholds."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from magicgui.widgets import (
    CheckBox,
    Container,
    FileEdit,
    FloatSlider,
    FloatSpinBox,
    Label,
    PushButton,
    SpinBox,
)
from napari.layers import Image, Labels
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QFileDialog, QProgressBar, QVBoxLayout, QWidget

from napari_cellseg.analysis.measure import measure_table
from napari_cellseg.analysis.rois import write_rois
from napari_cellseg.config import PredictConfig, TrainConfig, load_yaml
from napari_cellseg.data.io import Stack
from napari_cellseg.data.targets import count_objects
from napari_cellseg.errors import CellsegError
from napari_cellseg.inference.predictor import tta_settings
from napari_cellseg.pretrained import is_builtin
from napari_cellseg.segmentation.instances import instances, segment_settings
from napari_cellseg.segmentation.stitching import stitch_slices
from napari_cellseg.segmentation.tuning import (
    MIN_TUNING_OBJECTS,
    save_postprocessing,
    score_postprocessing,
    tune_postprocessing,
)
from napari_cellseg.widgets._layers import (
    OWNER_KEY,
    image_array,
    layer_combo,
    other_channels,
    output_layer,
    pixel_size,
    placement,
    z_spacing,
)
from napari_cellseg.widgets._worker import (
    current_model,
    predict_files,
    predict_maps,
    start_worker,
)

__all__ = ["PredictWidget", "model_picker", "post_processing_widgets"]

_DEBOUNCE_MS = 150
_PREDICT, _CANCEL = "Predict on current layer", "Cancel prediction"


@dataclass
class _Maps:
    """Probability maps of one input layer, kept for re-running the post-processing."""

    name: str
    objects: np.ndarray
    boundaries: np.ndarray
    placement: dict
    blob_label: int | None  # of the model: no instance takes it
    image: np.ndarray  # the intensities predicted on, for the measurements
    pixel_size: tuple[float, float] | None  # of the image, in micrometres: None unknown
    z_spacing: float | None  # of a stack, in micrometres: None unknown
    channels: dict[str, np.ndarray]  # other channels of the image, measured too


def _instances(maps: _Maps, settings: dict, stitch: float) -> tuple[np.ndarray, int, dict]:
    """Instance labels numbered as annotations (objects 2, 3, ... by default; a stack's
    stitched into 3D objects when ``stitch`` > 0), their count and their measurements as
    layer features."""
    labels = instances(maps.objects, maps.boundaries, **settings, skip_label=maps.blob_label)
    if stitch and labels.ndim == 3:
        labels = stitch_slices(labels, stitch, maps.blob_label)
    top = int(labels.max(initial=0))  # the values are 1, 2, ..., past the blob value
    count = top - (maps.blob_label is not None and top > maps.blob_label)
    features = layer_features(labels, maps.image, maps.pixel_size, maps.channels, maps.z_spacing)
    return labels, count, features


def tune_on_labels(maps: _Maps, truth: np.ndarray, current: dict) -> tuple[dict, float, int]:
    """The settings that best reproduce ``truth`` from ``maps`` (with their mean AP), the
    mean AP of the ``current`` settings and the number of objects (per slice) tuned on."""
    truth = truth.reshape(-1, *truth.shape[-2:])
    objects = sum(count_objects(page, maps.blob_label) for page in truth)
    if not objects:
        raise CellsegError(
            "The labels layer holds no objects to tune on: paint the objects of the image "
            "(values 2, 3, …), or correct the predicted instances, then tune again."
        )
    pages = [Stack(maps.name, maps.image, truth)]
    pairs, blob = [(maps.objects, maps.boundaries)], maps.blob_label
    before = score_postprocessing(pairs, pages, ignore_label=blob, **current)
    return tune_postprocessing(pairs, pages, ignore_label=blob), before, objects


def layer_features(
    labels: np.ndarray,
    image: np.ndarray,
    pixel_size: tuple[float, float] | None = None,
    channels: dict[str, np.ndarray] | None = None,
    z_spacing: float | None = None,
) -> dict:
    """The objects' measurements as a labels layer's features (the label value in
    ``index``, one row per value): a stack whose objects span slices is measured in 3D."""
    table = measure_table(
        labels,
        image,
        pixel_size=pixel_size,
        z_spacing=z_spacing,
        volumes=spans_slices(labels),
        channels=channels,
    )
    return {"index": table.pop("label"), **table}


def spans_slices(labels: np.ndarray) -> bool:
    """Whether an object of a (Z, H, W) stack is on more than one slice (3D objects).

    >>> spans_slices(np.array([[[2, 0]], [[3, 3]]])), spans_slices(np.array([[[2]], [[2]]]))
    (False, True)
    """
    if labels.ndim != 3:
        return False
    values = np.concatenate([np.unique(page[page > 0]) for page in labels])
    return len(values) > len(np.unique(values))


_PREDICT_FIELDS = {f.name: f for f in dataclasses.fields(PredictConfig)}


def _button(text: str, tooltip: str) -> PushButton:
    button = PushButton(text=text)
    button.tooltip = tooltip
    return button


def model_picker() -> FileEdit:
    """A model yaml picker that follows, and sets, the model shared by the widgets."""
    picker = FileEdit(mode="r", filter="*.yaml *.yml", label="model", nullable=True)
    picker.tooltip = "settings (.yaml) of a trained model; the last trained model appears here"
    picker.line_edit.value = current_model.path

    def follow(path: str) -> None:
        if picker.line_edit.value != path:
            picker.line_edit.value = path

    current_model.connect_while_alive(picker.native, follow)
    picker.changed.connect(lambda _v: current_model.set(picker.line_edit.value))
    return picker


def post_processing_widgets() -> dict:
    """Threshold sliders, split depth and minimum size; defaults and help from TrainConfig."""
    fields = TrainConfig.__dataclass_fields__
    sliders = (("obj_threshold", 1.0), ("bnd_threshold", 1.0), ("split_depth", 2.0))
    widgets = {
        name: FloatSlider(min=0.0, max=top, step=0.01, value=fields[name].default)
        for name, top in sliders
    }
    widgets["min_size"] = SpinBox(min=0, max=10**7, value=fields["min_size"].default)
    widgets["small_object_prob"] = FloatSlider(
        min=0.0, max=1.0, step=0.01, value=fields["small_object_prob"].default
    )
    for name, widget in widgets.items():
        widget.name, widget.tooltip = name, fields[name].metadata["help"]
    return widgets


class PredictWidget(QWidget):
    """Predict object/boundary maps and instances on an image layer with a trained model."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.maps: _Maps | None = None
        self.worker = None
        self._post_worker = None
        self._post_pending = False
        self.blob_label = TrainConfig.blob_label  # the model's, read with its settings
        self.tuned: dict[bool, dict | None] = {}  # the model's settings without/with tta
        self.model = model_picker()
        self.image = layer_combo(napari_viewer, Image, label="image")
        self.diameter = FloatSpinBox(
            min=0, max=10**4, step=1, value=PredictConfig.diameter, label="diameter (0 = auto)"
        )
        self.diameter.tooltip = _PREDICT_FIELDS["diameter"].metadata["help"]
        self.tta = CheckBox(value=PredictConfig.tta, text="test-time augmentation (8x slower)")
        self.tta.tooltip = _PREDICT_FIELDS["tta"].metadata["help"]
        self.run = PushButton(text=_PREDICT)
        self.run_folder = _button(
            "Predict a folder…",
            "segment every image of a folder (its images/ sub-folder, or the images in it) "
            "with these settings, writing <name>_labels.tif, _objects.tif, _boundaries.tif "
            "and _measurements.csv into another folder",
        )
        self.measure = _button(
            "Measure objects",
            "size, shape and intensities (in the image above and in every other image layer "
            "of its shape: the other channels) of every object of the selected labels layer, "
            "e.g. after your corrections; sizes in µm too when the image has a scale.  Shown "
            "when the pointer is on an object and in Layers > Metadata > Features table "
            "widget, which saves them as CSV",
        )
        self.export = _button(
            "Export ImageJ ROIs…",
            "save the objects of the selected labels layer as an ImageJ ROI set (.zip) for "
            "Fiji's ROI Manager: each object's outline along its pixel edges, a stack's on "
            "their slices",
        )
        self.post = post_processing_widgets()
        self.stitch = FloatSlider(
            min=0.0, max=1.0, step=0.05, value=PredictConfig.stitch_threshold,
            label="stitch slices", visible=False,
        )  # fmt: skip
        self.stitch.tooltip = (
            "shown for a stack: " + _PREDICT_FIELDS["stitch_threshold"].metadata["help"]
        )
        self.tune = _button(
            "Tune on labels",
            "set the settings above to those that best reproduce the selected labels layer "
            "(your annotation of the image predicted last, or its corrected instances): the "
            "best mean AP over IoU 0.5-0.95",
        )
        self.save = _button(
            "Save settings to model",
            "write the settings above into the model's yaml (as its settings for test-time "
            "augmentation when that box is ticked): the CLI and later sessions use them",
        )
        self.scored: tuple[dict, float, str] | None = None  # the last tuning's result
        self.status = Label(value="")
        self.progress_bar = QProgressBar()
        self.progress_bar.setFormat("tile %v / %m")
        self._debounce = QTimer(singleShot=True, interval=_DEBOUNCE_MS)
        self._debounce.timeout.connect(self.update_instances)

        form = Container(
            widgets=[
                self.model,
                self.image,
                self.diameter,
                self.tta,
                self.run,
                self.run_folder,
                *self.post.values(),
                self.stitch,
                self.tune,
                self.save,
                self.measure,
                self.export,
                self.status,
            ]
        )
        layout = QVBoxLayout(self)
        layout.addWidget(form.native)
        layout.insertWidget(1, self.progress_bar)
        layout.addStretch()

        self.run.changed.connect(self.predict)
        self.run_folder.changed.connect(lambda: self.predict_folder())
        self.measure.changed.connect(self.measure_layer)
        self.export.changed.connect(lambda: self.export_rois())
        self.tune.changed.connect(self.tune_settings)
        self.save.changed.connect(self.save_settings)
        self.tta.changed.connect(self._tta_toggled)
        current_model.connect_while_alive(self, self._read_model_defaults)
        for widget in (*self.post.values(), self.stitch):
            widget.changed.connect(lambda _v: self._debounce.start())
        self.image.changed.connect(self._show_stitch)
        for event in ("inserted", "removed", "renamed", "reordered"):
            getattr(napari_viewer.layers.events, event).connect(self._refresh_layers)
        napari_viewer.layers.selection.events.active.connect(self._follow_active)
        self._follow_active()
        self._show_stitch()
        if current_model.path:
            self._read_model_defaults(current_model.path)

    def _refresh_layers(self, _event=None) -> None:
        self.image.reset_choices()

    def _follow_active(self, _event=None) -> None:
        active = self.viewer.layers.selection.active
        if isinstance(active, Image) and OWNER_KEY not in active.metadata:
            self.image.reset_choices()
            self.image.value = active

    def _read_model_defaults(self, path: str) -> None:
        """Show the post-processing settings stored in (or tuned into) the model's yaml.

        The maps of the last prediction came from another model: they are dropped, so
        these settings do not re-segment them (and re-add a deleted instances layer).
        """
        self.maps = None
        if not path:
            return
        try:
            cfg = load_yaml(path, TrainConfig)
            self.tuned = {False: segment_settings(cfg), True: tta_settings(path)}
        except CellsegError as exc:
            show_error(str(exc))
            return
        self.blob_label = cfg.blob_label
        self.diameter.enabled = bool(cfg.object_diameter)  # used by such models only
        self._show_tuned()

    def _tta_toggled(self, _value=None) -> None:
        """Show the model's settings for the maps the next prediction makes.

        Test-time augmented maps are flatter than single predictions and have settings
        of their own (when tuned); the maps shown came from the other kind of prediction,
        so they are dropped rather than re-segmented with the new settings.
        """
        self.maps = None
        self._show_tuned()

    def _show_tuned(self) -> None:
        settings = self.tuned.get(self.tta.value) or self.tuned.get(False)
        if settings is None:
            return
        for name, widget in self.post.items():
            widget.value = settings[name]
        if not self.tta.value:
            self.status.value = ""
        elif self.tuned.get(True):
            self.status.value = "Settings tuned for test-time augmentation."
        else:
            self.status.value = (
                "This model has no settings tuned for test-time augmentation: its others are "
                "shown (Tune on labels, or cellseg tune-postprocess --tta, tunes them)."
            )

    def _show_stitch(self, _value=None) -> None:
        """The stitching slider is for stacks: shown when the image layer is one."""
        layer = self.image.value
        self.stitch.visible = layer is not None and layer.ndim == 3

    def _show_progress(self, progress) -> None:
        self._set_progress(progress.done, progress.total)

    def _set_progress(self, done: int, total: int) -> None:
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(done)

    # --- prediction ------------------------------------------------------------------------

    def predict(self) -> None:
        """Predict on the chosen image layer in a worker; errors become notifications.

        While it runs, the button cancels it (after the current batch of tiles).
        """
        if self.worker is not None:
            self.worker.quit()
            self.status.value = "Cancelling…"
            return
        layer = self.image.value
        try:
            if layer is None:
                raise CellsegError("No image layer: open an image to predict on.")
            if not current_model.path:
                raise CellsegError("No model: pick a model .yaml file or train one first.")
            image = image_array(layer)
            if image.ndim > 3:
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
        where = placement(layer)
        blob_label, size, spacing = self.blob_label, pixel_size(layer), z_spacing(layer)
        channels = other_channels(self.viewer, layer)
        self.run.text = _CANCEL
        self.status.value = f"Predicting on '{layer.name}'…"
        self.worker = start_worker(
            predict_maps,
            current_model.path,
            image,
            self.diameter.value,
            self.tta.value,
            yielded=self._show_progress,
            returned=lambda maps: self._show_maps(
                _Maps(layer.name, *maps, where, blob_label, image, size, spacing, channels)
            ),
            errored=lambda _exc: setattr(self.status, "value", "Prediction failed."),
            aborted=lambda: setattr(self.status, "value", "Prediction cancelled."),
            finished=self._predict_finished,
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
            "diameter": self.diameter.value,
            "tta": self.tta.value,
            "stitch_threshold": self.stitch.value,
            "measure": True,
            "rois": True,
        }
        segment = self._settings()
        self.run.text, self.run_folder.enabled = _CANCEL, False
        self.progress_bar.setFormat("image %v / %m")
        self.status.value = f"Segmenting the images of '{folder}'…"
        self.worker = start_worker(
            predict_files,
            current_model.path,
            folder,
            output,
            options,
            segment,
            yielded=lambda counts: self._set_progress(*counts),
            returned=lambda total: self._folder_done(total, output),
            errored=lambda _exc: setattr(self.status, "value", "Prediction failed."),
            aborted=lambda: setattr(self.status, "value", "Prediction cancelled."),
            finished=self._predict_finished,
        )

    def _folder_done(self, total: int, output: str) -> None:
        self.status.value = f"{total} images segmented into '{output}'."
        show_info(self.status.value)

    def _predict_finished(self) -> None:
        self.worker = None
        self.run.text, self.run_folder.enabled = _PREDICT, True
        self.progress_bar.setFormat("tile %v / %m")

    def _show_maps(self, maps: _Maps) -> None:
        self.maps, name = maps, maps.name
        for role, data, colormap in (
            ("objects", maps.objects, "green"),
            ("boundaries", maps.boundaries, "magenta"),
        ):
            output_layer(
                self.viewer,
                data,
                kind="image",
                name=f"{name} {role}",
                tag=f"{role}:{name}",
                colormap=colormap,
                blending="additive",
                contrast_limits=(0.0, 1.0),
                **maps.placement,
            )
        self.update_instances()

    # --- post-processing ---------------------------------------------------------------------

    def update_instances(self) -> None:
        """Re-run only the post-processing on the cached maps (one run at a time, latest wins)."""
        if self.maps is None:
            return
        if self._post_worker is not None:
            self._post_pending = True
            return
        maps, thresholds = self.maps, self._settings()
        self._post_worker = start_worker(
            _instances,
            maps,
            thresholds,
            self.stitch.value,
            returned=lambda result: self._show_instances(maps, *result),
            finished=self._post_done,
        )

    def _show_instances(self, maps: _Maps, labels: np.ndarray, count: int, features) -> None:
        layer = output_layer(
            self.viewer,
            labels,
            kind="labels",
            name=f"{maps.name} instances",
            tag=f"instances:{maps.name}",
            **maps.placement,
        )
        layer.features = features
        self.status.value = f"'{maps.name}': {count} objects."

    # --- tuning on the user's labels --------------------------------------------------------

    def tune_settings(self) -> None:
        """Tune the settings on the maps shown and the selected labels layer (in a worker)."""
        truth, maps = self.viewer.layers.selection.active, self.maps
        try:
            if maps is None:
                raise CellsegError("Predict on the image first: settings are tuned on its maps.")
            if not isinstance(truth, Labels):
                raise CellsegError(
                    f"Select the labels layer to tune on: your annotation of '{maps.name}' "
                    "(or its corrected instances)."
                )
            if truth.data.shape != maps.objects.shape:
                raise CellsegError(
                    f"'{truth.name}' {truth.data.shape} and the maps of '{maps.name}' "
                    f"{maps.objects.shape} differ in shape: select the labels of '{maps.name}'."
                )
        except CellsegError as exc:
            show_error(str(exc))
            return
        self.tune.enabled = False
        self.status.value = f"Tuning the settings on '{truth.name}'…"
        start_worker(
            tune_on_labels,
            maps,
            np.array(truth.data),  # a copy: the user may paint on while it is tuned
            self._settings(),
            returned=lambda result: self._show_tuning(truth.name, *result),
            errored=lambda _exc: setattr(self.status, "value", "Tuning failed."),
            finished=lambda: setattr(self.tune, "enabled", True),
        )

    def _show_tuning(self, name: str, params: dict, before: float, objects: int) -> None:
        settings = segment_settings(params)
        for key, widget in self.post.items():
            widget.value = settings[key]  # re-segments the maps shown
        self.scored = (self._settings(), params["mean_ap"], name)
        self.status.value = (
            f"Tuned on '{name}' ({objects} objects): mean AP {before:.3f} -> "
            f"{params['mean_ap']:.3f}."
        )
        advice = "'Save settings to model' keeps them."
        if objects < MIN_TUNING_OBJECTS:
            advice = (
                f"Settings tuned on fewer than {MIN_TUNING_OBJECTS} objects fit their noise: "
                "check them on another annotated image before you save them."
            )
        show_info(f"{self.status.value} {advice}")

    def save_settings(self) -> None:
        """Write the dock's settings into the model yaml (the tta ones when its box is ticked)."""
        path, settings, tta = current_model.path, self._settings(), self.tta.value
        try:
            if not path:
                raise CellsegError("No model: pick a model .yaml file or train one first.")
            if is_builtin(path):
                raise CellsegError(
                    "The built-in model is shared by everyone who installs the plugin, so its "
                    "settings stay as they are: fine-tune it (Train dock) to get a model of "
                    "your own, whose settings you can save."
                )
            tuned = self.scored if self.scored and self.scored[0] == settings else None
            score = {"mean_ap": tuned[1]} if tuned else {}
            data = f"napari layer '{tuned[2]}'" if tuned else "set in the Predict dock"
            save_postprocessing(path, {**settings, **score}, data=data, tta=tta)
        except CellsegError as exc:
            show_error(str(exc))
            return
        except OSError as exc:
            show_error(
                f"Cannot write the settings into '{path}' ({exc.strerror or exc}): copy the "
                "model (.yaml and .pt) to a folder you can write to and pick that copy."
            )
            return
        self.tuned[tta] = settings
        kind = " for test-time augmentation" if tta else ""
        self.status.value = f"Settings{kind} saved into '{path}'."
        show_info(self.status.value)

    def _settings(self) -> dict:
        return {name: widget.value for name, widget in self.post.items()}

    # --- measurements ------------------------------------------------------------------------

    def measure_layer(self) -> None:
        """Measure the objects of the selected labels layer in the dock's image (in a worker)."""
        labels, image = self.viewer.layers.selection.active, self.image.value
        try:
            if not isinstance(labels, Labels):
                raise CellsegError("Select the labels layer to measure in the layer list.")
            if image is None:
                raise CellsegError("No image layer: choose the image to measure intensities in.")
            intensities = image_array(image)
            if intensities.shape != labels.data.shape:
                raise CellsegError(
                    f"'{labels.name}' {labels.data.shape} and '{image.name}' "
                    f"{intensities.shape} differ in shape: choose the image they belong to."
                )
        except CellsegError as exc:
            show_error(str(exc))
            return
        start_worker(
            layer_features,
            np.array(labels.data),  # a copy: the user may paint on while it is measured
            intensities,
            pixel_size(image),
            other_channels(self.viewer, image),
            z_spacing(image),
            returned=lambda features: self._show_measured(labels, features),
        )

    def export_rois(self, path: str = "") -> None:
        """Save the selected labels layer's objects as an ImageJ ROI set (asks where when
        ``path`` is empty), in a worker."""
        labels = self.viewer.layers.selection.active
        if not isinstance(labels, Labels):
            show_error("Select the labels layer to export in the layer list.")
            return
        if not path:
            path, _ = QFileDialog.getSaveFileName(
                self, "Save ImageJ ROIs", f"{labels.name}_rois.zip", "ImageJ ROI set (*.zip)"
            )
        if not path:
            return
        path = path if path.lower().endswith(".zip") else f"{path}.zip"
        start_worker(
            write_rois,
            path,
            np.array(labels.data),  # a copy: the user may paint on while it is written
            returned=lambda _path: show_info(
                f"The objects of '{labels.name}' saved as ImageJ ROIs in '{path}': open it "
                "in Fiji (drag it onto the window) to get them in the ROI Manager."
            ),
        )

    def _show_measured(self, layer: Labels, features: dict) -> None:
        layer.features = features
        self.status.value = f"'{layer.name}': {len(features['index'])} objects measured."
        show_info(
            f"{self.status.value} Point at an object to see its area and intensity; "
            "Layers > Metadata > Features table widget lists, sorts and saves them."
        )

    def _post_done(self) -> None:
        self._post_worker = None
        if self._post_pending:
            self._post_pending = False
            self.update_instances()
