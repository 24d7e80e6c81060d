"""The blob inspector: list the blobs of a labels layer, visit them, split them with the model."""

from __future__ import annotations

import math

import numpy as np
from magicgui.widgets import CheckBox, Container, Label, PushButton, SpinBox
from napari.layers import Image, Labels
from napari.utils.notifications import show_error
from qtpy.QtWidgets import QAbstractItemView, QTableWidget, QTableWidgetItem, QWidget

from napari_cellseg.analysis.blobs import (
    SPLIT_CONTEXT,
    Blob,
    crop_box,
    find_blobs,
    split_blob,
    split_values,
    summarize,
)
from napari_cellseg.config import TrainConfig
from napari_cellseg.data.labels import median_diameter
from napari_cellseg.errors import CellsegError, DataError
from napari_cellseg.model_file import read_model
from napari_cellseg.segmentation.instances import instances
from napari_cellseg.widgets._dock import TabsOnFirstShow, scrolling_layout
from napari_cellseg.widgets._layers import (
    OWNER_KEY,
    focus,
    image_array,
    layer_combo,
    output_layer,
    placement,
)
from napari_cellseg.widgets._model_panel import model_picker
from napari_cellseg.widgets._worker import current_model, predict_maps, start_worker

__all__ = ["BlobsWidget"]

_COLUMNS = ("id", "area (px)", "bounding box", "est. cells")
_HIGHLIGHT_TAG = "blob highlight"


def _proposal_text(cells: int, estimate: float) -> str:
    """The status after a proposal: its cell count against the blob's estimated count."""
    text = f"Proposal: {cells} cells in the blob"
    if np.isfinite(estimate):
        text += f" (its area suggests {estimate:.1f})"
        if abs(cells - estimate) >= max(2.0, estimate / 2):
            text += "; look closely before accepting"
    return text + ". Accept or discard?"


def _bbox_text(blob: Blob) -> str:
    """'y 20–73  x 278–345' (with 'z' or axis numbers before for stacks)."""
    names = [f"axis {i}" for i in range(len(blob.bbox) - 3)] + ["z", "y", "x"]
    spans = zip(names[-len(blob.bbox) :], blob.bbox, strict=True)
    return "  ".join(f"{n} {s.start}–{s.stop - 1}" for n, s in spans)


class BlobsWidget(TabsOnFirstShow, QWidget):
    """Table of the blobs of a labels layer; select one to visit it, propose and accept a split."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.blobs: list[Blob] = []
        self.components: np.ndarray | None = None
        self.proposal = None  # (labels layer, box, proposal labels)
        self._accepted = None  # (labels layer, indices, values) of the split written last
        self.worker = None
        field = TrainConfig.__dataclass_fields__["blob_label"]
        self.labels = layer_combo(napari_viewer, Labels, label="labels")
        self.blob_value = SpinBox(value=field.default, min=0, max=2**31 - 1, label="blob value")
        self.blob_value.tooltip = field.metadata["help"]
        self.refresh = PushButton(text="Find blobs")
        self.summary = Label(value="")
        self.only = CheckBox(text="Show blobs only", value=False)
        self.image = layer_combo(napari_viewer, Image, label="image")
        self.model = model_picker()
        self.propose = PushButton(text="Propose split")
        self.accept = PushButton(text="Accept", enabled=False)
        self.discard = PushButton(text="Discard", enabled=False)
        self.table = QTableWidget(0, len(_COLUMNS))
        self.table.setHorizontalHeaderLabels(_COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.status = Label(value="")

        layout = scrolling_layout(self)
        layout.addWidget(
            Container(
                widgets=[self.labels, self.blob_value, self.refresh, self.summary, self.only]
            ).native
        )
        layout.addWidget(self.table)
        split_row = Container(
            widgets=[self.propose, self.accept, self.discard], layout="horizontal"
        )
        layout.addWidget(Container(widgets=[self.image, self.model, split_row, self.status]).native)

        self.refresh.changed.connect(self.find)
        self.labels.changed.connect(self.find)
        self.blob_value.changed.connect(self.find)
        self.only.changed.connect(self._show_only)
        self.table.itemSelectionChanged.connect(self._go_to_selected)
        self.propose.changed.connect(self.propose_split)
        self.accept.changed.connect(self.accept_split)
        self.discard.changed.connect(self.discard_split)
        for event in ("inserted", "removed", "renamed", "reordered"):
            getattr(napari_viewer.layers.events, event).connect(self._refresh_layers)
        self.find()

    def _refresh_layers(self, _event=None) -> None:
        self.labels.reset_choices()
        self.image.reset_choices()

    # --- table -------------------------------------------------------------------------------

    def find(self, _value=None) -> None:
        """Find the blobs of the chosen labels layer and list them."""
        layer = self.labels.value
        self.blobs, self.components = [], None
        if layer is not None:
            self.components, self.blobs = find_blobs(np.asarray(layer.data), self.blob_value.value)
        self.table.setRowCount(len(self.blobs))
        for row, blob in enumerate(self.blobs):
            cells = "–" if math.isnan(blob.cells) else f"{blob.cells:.1f}"
            for col, text in enumerate((str(blob.id), str(blob.area), _bbox_text(blob), cells)):
                self.table.setItem(row, col, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        if layer is None:
            self.summary.value = "Choose a labels layer."
        else:
            s = summarize(layer.data, self.blobs)
            self.summary.value = f"{s.n_blobs} blobs, {s.share:.1%} of the annotated pixels."
        self._show_only()

    def selected(self) -> Blob | None:
        """The blob of the selected table row."""
        rows = self.table.selectionModel().selectedRows()
        return self.blobs[rows[0].row()] if rows else None

    def _show_only(self, _value=None) -> None:
        layer = self.labels.value
        if layer is not None:
            layer.selected_label = self.blob_value.value
            layer.show_selected_label = self.only.value

    def _go_to_selected(self) -> None:
        """Centre and zoom on the selected blob and outline it."""
        blob, layer = self.selected(), self.labels.value
        if blob is None or layer is None:
            return
        focus(self.viewer, layer, blob.centre, blob.extent)
        (y0, x0), (y1, x1) = (
            [s.start - 0.5 for s in blob.bbox[-2:]],
            [s.stop - 0.5 for s in blob.bbox[-2:]],
        )
        lead = [s.start for s in blob.bbox[:-2]]
        corners = np.array([[*lead, y, x] for y, x in ((y0, x0), (y0, x1), (y1, x1), (y1, x0))])
        self._highlight(layer, corners)

    def _highlight(self, layer: Labels, corners: np.ndarray) -> None:
        for existing in self.viewer.layers:
            if existing.metadata.get(OWNER_KEY) == _HIGHLIGHT_TAG:
                existing.data = [corners]
                for key, value in placement(layer).items():
                    setattr(existing, key, value)
                return
        self.viewer.add_shapes(
            [corners],
            shape_type="rectangle",
            edge_color="yellow",
            face_color="transparent",
            edge_width=2,
            name=_HIGHLIGHT_TAG,
            metadata={OWNER_KEY: _HIGHLIGHT_TAG},
            **placement(layer),
        )
        self.viewer.layers.selection.active = layer

    # --- proposing a split ------------------------------------------------------------------------

    def propose_split(self) -> None:
        """Predict the cells of the selected blob (worker) and show them over it.

        The model sees the blob with ``SPLIT_CONTEXT`` pixels around it, at the object size of
        the annotated objects there, with test-time augmentation (measured in
        ``benchmarks/blob_split.py``); its objects are grown to cover the whole blob.
        """
        blob, labels, image = self.selected(), self.labels.value, self.image.value
        try:
            if blob is None:
                raise DataError("Select a blob in the table first.")
            if (
                image is None
                or image.data.shape[-2:] != labels.data.shape[-2:]
                or image.ndim != labels.ndim
            ):
                raise DataError(
                    f"Choose the image layer the labels '{labels.name}' annotate (same shape)."
                )
            if not current_model.path:
                raise CellsegError("No model: pick a model .yaml file or train one first.")
            model = read_model(current_model.path)
            box = crop_box(blob.bbox, labels.data.shape, SPLIT_CONTEXT)
            crop = image_array(image)[box]
            # the annotated objects around the blob give the object size (0: estimate it)
            blob_label = model.config.blob_label
            diameter = median_diameter(labels.data[box], blob_label) or 0.0
        except CellsegError as exc:
            show_error(str(exc))
            return
        mask = self.components[box] == blob.id
        self.propose.enabled = False
        self.status.value = "Proposing a split…"
        self.worker = start_worker(
            predict_maps,
            current_model.path,
            crop,
            diameter,
            True,
            returned=lambda maps: self._show_proposal(labels, box, mask, maps, model, blob),
            finished=lambda: setattr(self.propose, "enabled", True),
        )

    def _show_proposal(self, labels: Labels, box, mask, maps, model, blob: Blob) -> None:
        settings = model.segmentation(tta=True)
        proposal = split_blob(instances(*maps, **settings.as_dict()), mask, settings.min_size)
        offset = np.array([s.start for s in box]) * np.asarray(labels.scale)
        layer = output_layer(
            self.viewer,
            proposal,
            kind="labels",
            name=f"{labels.name} split proposal",
            tag="proposal",
            **{**placement(labels), "translate": np.asarray(labels.translate) + offset},
        )
        layer.contour = 2  # outlines, so the blob stays visible beneath
        self.viewer.layers.selection.active = labels
        self.proposal = (labels, box, proposal)
        self.accept.enabled = self.discard.enabled = True
        self.status.value = _proposal_text(int(proposal.max()), blob.cells)

    def accept_split(self) -> None:
        """Write the proposed cells into the labels layer as new values (Ctrl+Z undoes it);
        the table then lists the blobs left and the next one is selected."""
        labels, box, proposal = self.proposal
        try:
            indices, values = split_values(np.asarray(labels.data), box, proposal)
        except CellsegError as exc:
            show_error(str(exc))
            return
        row = self.table.currentRow()
        labels.data_setitem(indices, values)
        self._accepted = (labels, indices, values)
        labels.events.set_data.connect(self._check_undone)  # undo emits it (once connected)
        self.discard_split()
        self.find()
        self._select_row(min(row, len(self.blobs) - 1))
        self.viewer.layers.selection.active = labels
        if values.size:
            self.status.value = (
                f"Wrote labels {values.min()}–{values.max()} into '{labels.name}'; "
                f"{len(self.blobs)} blobs left (Ctrl+Z in the layer undoes it)."
            )

    def _check_undone(self, _event=None) -> None:
        """List the blobs again when the split written last was undone (Ctrl+Z)."""
        if self._accepted is None:
            return
        labels, indices, values = self._accepted
        if not np.array_equal(np.asarray(labels.data)[indices], values):
            self._accepted = None
            self.find()
            self.status.value = "The split was undone: the blob is listed again."

    def _select_row(self, row: int) -> None:
        """Select table row ``row`` (visit its blob), or clear the outline without rows."""
        if row >= 0:
            self.table.clearSelection()  # so that selecting the same row visits its new blob
            self.table.selectRow(row)
            return
        for layer in list(self.viewer.layers):
            if layer.metadata.get(OWNER_KEY) == _HIGHLIGHT_TAG:
                self.viewer.layers.remove(layer)

    def discard_split(self) -> None:
        """Remove the proposal layer."""
        for layer in list(self.viewer.layers):
            if layer.metadata.get(OWNER_KEY) == "proposal":
                self.viewer.layers.remove(layer)
        self.proposal = None
        self.accept.enabled = self.discard.enabled = False
        self.status.value = ""
