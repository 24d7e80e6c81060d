"""The Predict dock's measurement part: measure a labels layer, export it as ImageJ ROIs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from magicgui.widgets import Container
from napari.layers import Image, Labels
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QFileDialog

from napari_cellseg.analysis.measure import features_table
from napari_cellseg.analysis.rois import write_rois
from napari_cellseg.errors import CellsegError
from napari_cellseg.widgets._layers import image_array, other_channels, pixel_size, z_spacing
from napari_cellseg.widgets._predict_state import PredictState
from napari_cellseg.widgets._segmentation_panel import button
from napari_cellseg.widgets._worker import start_worker

__all__ = ["MeasurePanel"]


class MeasurePanel(Container):
    """*Measure objects* and *Export ImageJ ROIs…* for the selected labels layer.

    ``image`` gives the image layer the dock predicts on: intensities are measured there.
    """

    def __init__(self, viewer, state: PredictState, image: Callable[[], Image | None]) -> None:
        self.viewer, self.state, self.image = viewer, state, image
        self.measure = button(
            "Measure objects",
            "size, shape and intensities (in the image above and in every other image layer "
            "of its shape: the other channels) of every object of the selected labels layer, "
            "e.g. after your corrections; sizes in µm too when the image has a scale.  Shown "
            "when the pointer is on an object and in Layers > Metadata > Features table "
            "widget, which saves them as CSV",
        )
        self.export = button(
            "Export ImageJ ROIs…",
            "save the objects of the selected labels layer as an ImageJ ROI set (.zip) for "
            "Fiji's ROI Manager: each object's outline along its pixel edges, a stack's on "
            "their slices",
        )
        super().__init__(widgets=[self.measure, self.export])
        self.measure.changed.connect(self.measure_layer)
        self.export.changed.connect(lambda: self.export_rois())

    def measure_layer(self) -> None:
        """Measure the objects of the selected labels layer in the dock's image (in a worker)."""
        labels, image = self.viewer.layers.selection.active, self.image()
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
        maps = self.state.maps  # of this image: the objects' confidence is measured too
        known = maps is not None and maps.name == image.name
        start_worker(
            features_table,
            np.array(labels.data),  # a copy: the user may paint on while it is measured
            intensities,
            pixel_size(image),
            other_channels(self.viewer, image),
            z_spacing(image),
            (maps.objects, maps.boundaries) if known else None,
            maps.augmented if known else None,
            returned=lambda features: self._show_measured(labels, features),
        )

    def _show_measured(self, layer: Labels, features: dict) -> None:
        layer.features = _with_review(layer.features, features)
        self.state.status = f"'{layer.name}': {len(features['index'])} objects measured."
        show_info(
            f"{self.state.status} Point at an object to see its area and intensity; "
            "Layers > Metadata > Features table widget lists, sorts and saves them."
        )

    def export_rois(self, path: str = "") -> None:
        """Save the selected labels layer's objects as an ImageJ ROI set (asks where when
        ``path`` is empty), in a worker."""
        labels = self.viewer.layers.selection.active
        if not isinstance(labels, Labels):
            show_error("Select the labels layer to export in the layer list.")
            return
        if not np.any(labels.data):
            show_error(f"'{labels.name}' holds no objects to export.")
            return
        if not path:
            path, _ = QFileDialog.getSaveFileName(
                self.native, "Save ImageJ ROIs", f"{labels.name}_rois.zip",
                "ImageJ ROI set (*.zip)",
            )  # fmt: skip
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


def _with_review(old, features: dict) -> dict:
    """New measurements with the review record of the old features (``old``) carried over
    by label value, and their confidence when it was not measured anew: measuring never
    loses a review.  An object without a row was painted during the review: ``added``."""
    if "review" not in old:
        return features
    by_label = old.set_index("index")
    for column, missing in (("confidence", np.nan), ("review", "added")):
        if column == "review" or column not in features:
            features[column] = np.array(
                [by_label[column].get(value, missing) for value in features["index"]],
                dtype=object if column == "review" else float,
            )
    return features
