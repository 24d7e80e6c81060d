"""The Predict dock's segmentation part: live thresholds, stitching, tuning on labels, saving."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from magicgui.widgets import Container, FloatSlider, PushButton, SpinBox
from napari.layers import Labels
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer

from napari_cellseg.analysis.measure import features_table
from napari_cellseg.config import PredictConfig, TrainConfig
from napari_cellseg.data.labels import count_instances
from napari_cellseg.errors import CellsegError
from napari_cellseg.model_file import read_model, save_segmentation
from napari_cellseg.pipeline import segment_maps
from napari_cellseg.segmentation.settings import SegmentationSettings
from napari_cellseg.segmentation.tuning import MIN_TUNING_OBJECTS, tune_on_annotation
from napari_cellseg.widgets._layers import OWNER_KEY, output_layer
from napari_cellseg.widgets._model_panel import PREDICT_HELP
from napari_cellseg.widgets._predict_state import Maps, PredictState
from napari_cellseg.widgets._worker import current_model, start_worker

__all__ = ["SegmentationPanel", "post_processing_widgets", "button"]

_DEBOUNCE_MS = 150


def button(text: str, tooltip: str) -> PushButton:
    """A push button with a tooltip."""
    widget = PushButton(text=text)
    widget.tooltip = tooltip
    return widget


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


def segment_for_layer(maps: Maps, settings: SegmentationSettings, stitch: float) -> tuple:
    """Instances of ``maps`` (a stack's stitched when ``stitch`` > 0), their count and their
    measurements as layer features (runs in a worker)."""
    labels, _ = segment_maps(
        maps.objects,
        maps.boundaries,
        settings,
        blob_label=maps.blob_label,
        stitch_threshold=stitch,
    )
    features = features_table(
        labels,
        maps.image,
        maps.pixel_size,
        maps.channels,
        maps.z_spacing,
        maps=(maps.objects, maps.boundaries),
        augmented=maps.augmented,
    )
    return labels, count_instances(labels, maps.blob_label), features


@dataclass(frozen=True)
class Scored:
    """The last tuning: its settings, their mean AP and the labels layer tuned on."""

    settings: SegmentationSettings
    mean_ap: float
    layer: str


class SegmentationPanel(Container):
    """Sliders that re-segment the maps shown as they move, and the settings' tuning."""

    def __init__(self, viewer, state: PredictState) -> None:
        self.viewer, self.state = viewer, state
        self.post = post_processing_widgets()
        self.stitch = FloatSlider(
            min=0.0, max=1.0, step=0.05, value=PredictConfig.stitch_threshold,
            label="stitch slices", visible=False,
        )  # fmt: skip
        self.stitch.tooltip = "shown for a stack: " + PREDICT_HELP["stitch_threshold"]
        self.tune = button(
            "Tune on labels",
            "set the settings above to those that best reproduce the selected labels layer "
            "(your annotation of the image predicted last, or its corrected instances): the "
            "best mean AP over IoU 0.5-0.95",
        )
        self.save = button(
            "Save settings to model",
            "write the settings above into the model's yaml (as its settings for test-time "
            "augmentation when that box is ticked): the CLI and later sessions use them",
        )
        super().__init__(widgets=[*self.post.values(), self.stitch, self.tune, self.save])
        self.scored: Scored | None = None
        self._post_worker = None
        self._post_pending = False
        self._debounce = QTimer(singleShot=True, interval=_DEBOUNCE_MS)
        self._debounce.timeout.connect(self.update_instances)
        for widget in (*self.post.values(), self.stitch):
            widget.changed.connect(lambda _v: self._debounce.start())
        self.tune.changed.connect(self.tune_settings)
        self.save.changed.connect(self.save_settings)
        state.events.maps.connect(self.update_instances)
        state.events.model.connect(self.show_model_settings)
        state.events.tta.connect(self.show_model_settings)
        viewer.layers.events.removed.connect(self._layer_removed)
        self.show_model_settings()

    def settings(self) -> SegmentationSettings:
        """The settings the sliders show."""
        return SegmentationSettings.of({name: w.value for name, w in self.post.items()})

    def show_model_settings(self, _value=None) -> None:
        """Show the settings the model holds for the maps the next prediction makes."""
        model, tta = self.state.model, self.state.tta
        if model is None:
            return
        self._show(model.segmentation(tta))
        if not tta:
            self.state.status = ""
        elif model.tta_segmentation is not None:
            self.state.status = "Settings tuned for test-time augmentation."
        else:
            self.state.status = (
                "This model has no settings tuned for test-time augmentation: its others are "
                "shown (Tune on labels, or cellseg tune-postprocess --tta, tunes them)."
            )

    def _show(self, settings: SegmentationSettings) -> None:
        for name, value in settings.as_dict().items():
            self.post[name].value = value  # re-segments the maps shown

    # --- segmenting the maps shown ------------------------------------------------------------

    def update_instances(self, _value=None) -> None:
        """Re-run only the segmentation on the maps shown (one run at a time, latest wins)."""
        maps = self.state.maps
        if maps is None:
            return
        if self._post_worker is not None:
            self._post_pending = True
            return
        settings = self.settings()
        self._post_worker = start_worker(
            segment_for_layer,
            maps,
            settings,
            self.stitch.value,
            returned=lambda result: self._show_instances(maps, settings, *result),
            finished=self._post_done,
        )

    def _show_instances(
        self, maps: Maps, settings: SegmentationSettings, labels: np.ndarray, count: int, features
    ) -> None:
        if maps is not self.state.maps:  # dropped meanwhile (another model, layer deleted)
            return
        layer = output_layer(
            self.viewer,
            labels,
            kind="labels",
            name=f"{maps.name} instances",
            tag=f"instances:{maps.name}",
            **maps.placement,
        )
        layer.features = features
        if self.scored is None or self.scored.settings != settings:  # keep a tuning's result
            self.state.status = f"'{maps.name}': {count} objects."

    def _layer_removed(self, event) -> None:
        """The user deleted the instances of the maps shown: stop re-segmenting them (a
        slider moved later would bring the layer back)."""
        maps = self.state.maps
        if maps is not None and event.value.metadata.get(OWNER_KEY) == f"instances:{maps.name}":
            self.state.maps = None
            self.state.status = f"The instances of '{maps.name}' were deleted."

    def _post_done(self) -> None:
        self._post_worker = None
        if self._post_pending:
            self._post_pending = False
            self.update_instances()

    # --- tuning on the user's labels --------------------------------------------------------

    def tune_settings(self) -> None:
        """Tune the settings on the maps shown and the selected labels layer (in a worker)."""
        truth, maps = self.viewer.layers.selection.active, self.state.maps
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
        self.state.status = f"Tuning the settings on '{truth.name}'…"
        start_worker(
            functools.partial(tune_on_annotation, blob_label=maps.blob_label),
            maps.objects,
            maps.boundaries,
            np.array(truth.data),  # a copy: the user may paint on while it is tuned
            self.settings(),
            returned=lambda result: self._show_tuning(truth.name, *result),
            errored=lambda _exc: setattr(self.state, "status", "Tuning failed."),
            finished=lambda: setattr(self.tune, "enabled", True),
        )

    def _show_tuning(self, name: str, tuned, before: float, objects: int) -> None:
        scores = f"mean AP {before:.3f} -> {tuned.mean_ap:.3f}"
        if objects < MIN_TUNING_OBJECTS:  # as the command line: the settings stay
            self.state.status = (
                f"Not tuned on '{name}' ({objects} objects): the settings stay as they are."
            )
            show_info(
                f"{self.state.status} Settings tuned on fewer than {MIN_TUNING_OBJECTS} "
                f"objects fit their noise (here {scores} with {tuned.settings.describe()}): "
                "annotate more objects, or more slices, and tune again."
            )
            return
        self._show(tuned.settings)
        self.scored = Scored(self.settings(), tuned.mean_ap, name)
        self.state.status = f"Tuned on '{name}' ({objects} objects): {scores}."
        show_info(f"{self.state.status} 'Save settings to model' keeps them.")

    def save_settings(self) -> None:
        """Write the settings shown into the model yaml (the tta ones when its box is ticked)."""
        path, settings, tta = current_model.path, self.settings(), self.state.tta
        try:
            if not path:
                raise CellsegError("No model: pick a model .yaml file or train one first.")
            tuned = self.scored if self.scored and self.scored.settings == settings else None
            save_segmentation(
                path,
                settings,
                tta=tta,
                mean_ap=tuned.mean_ap if tuned else None,
                data=f"napari layer '{tuned.layer}'" if tuned else "set in the Predict dock",
            )
            self.state.model = read_model(path)
        except CellsegError as exc:
            show_error(str(exc))
            return
        except OSError as exc:
            show_error(
                f"Cannot write the settings into '{path}' ({exc.strerror or exc}): copy the "
                "model (.yaml and .pt) to a folder you can write to and pick that copy."
            )
            return
        kind = " for test-time augmentation" if tta else ""
        self.state.status = f"Settings{kind} saved into '{path}'."
        show_info(self.state.status)
