"""The review dock: a prediction's objects from least to most confident, one key each.

The instances layer of a prediction carries each object's confidence (its features).  The
dock lists the objects not reviewed yet, least confident first, and jumps to each; on the
canvas (the layer selected) **A** accepts it, **D** deletes it, **J** joins it with the
neighbour clicked next, **U** marks it as a blob (unsure: training ignores it), **N** skips
to the next.  Each decision is recorded in the layer's ``review`` column, so the Train
dock can train on the reviewed objects only (:func:`~napari_cellseg.analysis.review.
ignore_unreviewed`).  Deleting, joining and marking go through napari's undo (Ctrl+Z).
*Save for training…* adds the image, the labels and the record to a data set folder, which
training from folders (the Train dock, ``cellseg train``) reads the same way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from magicgui.widgets import Container, Label, PushButton
from napari.layers import Image, Labels
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from napari_cellseg.analysis.review import reconcile, record_path, review_queue, write_record
from napari_cellseg.data.io import write_pair
from napari_cellseg.errors import CellsegError
from napari_cellseg.widgets._dock import TabsOnFirstShow, scrolling_layout
from napari_cellseg.widgets._layers import OWNER_KEY, breakable, focus, image_array, layer_combo

__all__ = ["ReviewWidget", "KEYS"]

KEYS = {"a": "accepted", "d": "deleted", "j": "joined", "u": "blob", "n": "next"}
"""The review keys on the canvas and what each does (napari's labels tools keep theirs)."""

_COLUMNS = ("label", "confidence", "review")
CONTEXT = 8
"""The object shown fills an eighth of the canvas: its neighbours are in view (to join)."""


class ReviewWidget(TabsOnFirstShow, QWidget):
    """Review a labels layer's objects, least confident first."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.layer: Labels | None = None  # the layer under review
        self.current: int | None = None  # the label value shown
        self._position = 0  # its place in the queue
        self._rows: dict[int, int] = {}  # the table's row of each label value
        self.labels = layer_combo(napari_viewer, Labels, label="objects")
        self.start = PushButton(text="Review, least confident first")
        self.buttons = {
            state: PushButton(text=f"{text} ({key.upper()})")
            for key, state, text in (
                ("a", "accepted", "Accept"),
                ("d", "deleted", "Delete"),
                ("j", "joined", "Join with…"),
                ("u", "blob", "Blob"),
                ("n", "next", "Next"),
            )
        }
        self.count = Label(value="")
        self.image = layer_combo(napari_viewer, Image, label="image")
        self.save = PushButton(text="Save for training…")
        self.save.tooltip = (
            "add the image, these labels and their review record to a data set folder "
            "(images/, labels/): train on it from folders, in the Train dock or the CLI"
        )
        self.status = Label(value="Predict an image, then review its objects here.")
        self.status.native.setWordWrap(True)
        self.table = QTableWidget(0, len(_COLUMNS))
        self.table.setHorizontalHeaderLabels(_COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setMinimumHeight(160)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        buttons = list(self.buttons.values())
        rows = [
            Container(widgets=part, layout="horizontal", labels=False)
            for part in (buttons[:3], buttons[3:])
        ]
        widgets = [self.labels, self.start, *rows, self.count, self.status, self.image, self.save]
        form = Container(widgets=widgets)
        layout = scrolling_layout(self)
        layout.addWidget(form.native)
        layout.addWidget(self.table, stretch=1)
        self.start.changed.connect(lambda: self.start_review())
        for state, button in self.buttons.items():
            button.changed.connect(lambda _v=None, s=state: self.decide(s))
        self.save.changed.connect(lambda: self.save_for_training())
        self.table.cellClicked.connect(lambda row, _col: self.show(self._row_label(row)))
        for event in ("inserted", "removed", "renamed"):
            for combo in (self.labels, self.image):
                getattr(napari_viewer.layers.events, event).connect(combo.reset_choices)

    # --- the queue ----------------------------------------------------------------------

    def start_review(self, layer: Labels | None = None) -> None:
        """Start (or go on with) the review of ``layer`` (the chosen one by default)."""
        layer = layer or self.labels.value
        try:
            if layer is None:
                raise CellsegError("No labels layer: predict an image first.")
            if layer.ndim != 2 or layer.multiscale:
                raise CellsegError(
                    f"'{layer.name}' is a stack or a multiscale layer: the review works on "
                    "2D labels; review one slice at a time (open it as its own layer)."
                )
            if "confidence" not in layer.features:
                raise CellsegError(
                    f"'{layer.name}' has no confidence for its objects: it is not a "
                    "prediction of this plugin.  Predict the image in the Predict dock, "
                    "or press Measure objects there after predicting it."
                )
        except CellsegError as exc:
            show_error(str(exc))
            return
        layer.metadata.pop(OWNER_KEY, None)  # the review is the user's: no result replaces it
        self.layer = layer
        self._sync()
        source = layer.name.removesuffix(" instances")  # the Predict dock's name for it
        if source in self.viewer.layers and isinstance(self.viewer.layers[source], Image):
            self.image.value = self.viewer.layers[source]
        for key, state in KEYS.items():
            layer.bind_key(key, lambda _layer, s=state: self.decide(s), overwrite=True)
        self.viewer.layers.selection.active = layer
        self._fill_table()
        queue = self.queue()
        self.show(queue[0] if queue else None, queue)

    def queue(self) -> list[int]:
        """The label values not reviewed yet, least confident first."""
        if self.layer is None:
            return []
        features = self.layer.features
        present = np.unique(self.layer.data)
        return review_queue(features["index"], features["confidence"], features["review"], present)

    def show(self, label: int | None, queue: list[int] | None = None) -> None:
        """Jump to object ``label`` (None: the review is done); ``queue``: :meth:`queue`,
        when the caller has it."""
        self.current = label
        queue = self.queue() if queue is None else queue
        self._show_count(queue)
        self._position = queue.index(label) if label in queue else 0
        if label is None or self.layer is None:
            self.status.value = "Every object is reviewed." if self.layer is not None else ""
            return
        where = np.nonzero(self.layer.data == label)
        if not where[0].size:
            return self._go_on(label)
        centre = [float(np.mean(axis)) for axis in where]
        extent = [int(axis.max() - axis.min() + 1) for axis in where]
        focus(self.viewer, self.layer, centre, extent, share=CONTEXT)
        self.layer.selected_label = label
        row = self._confidence(label)
        self.status.value = breakable(
            f"Object {label}: confidence {row:.2f}.  A accept · D delete · J join · U blob · N next"
        )
        self._select_row(label)

    # --- decisions ----------------------------------------------------------------------

    def decide(self, state: str) -> None:
        """Apply ``state`` (a :data:`KEYS` value) to the current object and go on."""
        label, layer = self.current, self.layer
        if label is None or layer is None:
            return
        if state == "next":
            return self._go_on(label)
        if state == "joined":
            return self._arm_join(label)
        if state in ("deleted", "blob"):
            where = np.nonzero(layer.data == label)
            layer.data_setitem(where, 0 if state == "deleted" else 1)
        self._record(label, state)
        self._go_on(label)

    def _arm_join(self, label: int) -> None:
        """The next click on the layer names the neighbour ``label`` joins."""
        layer = self.layer
        layer.mode = "pan_zoom"  # the click picks, it does not paint
        self.status.value = f"Click the neighbour object {label} should join."

        def pick(_layer, event):
            layer.mouse_drag_callbacks.remove(pick)
            other = layer.get_value(event.position, world=True)
            if other in (None, 0, 1, label):
                self.status.value = "No neighbour clicked: nothing joined."
                return
            layer.data_setitem(np.nonzero(layer.data == label), int(other))
            self._record(label, "joined")
            self._record(int(other), "accepted")
            self._go_on(label)

        layer.mouse_drag_callbacks.append(pick)

    def _record(self, label: int, state: str) -> None:
        features = self.layer.features
        features.loc[features["index"] == label, "review"] = state
        self.layer.features = features
        if label in self._rows:
            self.table.setItem(self._rows[label], 2, QTableWidgetItem(state))

    # --- the record ---------------------------------------------------------------------

    def save_for_training(self, folder: str | None = None):
        """Add the chosen image, the labels under review and their review record to the data
        set ``folder`` (asked for when None); returns the label file's path (None: not
        saved, a notification says why)."""
        try:
            if self.layer is None:
                raise CellsegError("Start a review first: its labels and record are saved.")
            image = None if self.image.value is None else image_array(self.image.value)
            if image is None or image.shape != self.layer.data.shape:
                raise CellsegError(
                    f"Choose the image of '{self.layer.name}' (2D, "
                    f"{' x '.join(map(str, self.layer.data.shape))} pixels) in 'image'."
                )
            folder = folder or QFileDialog.getExistingDirectory(self, "Data set folder")
            if not folder:
                return None
            self._sync()
            labels = write_pair(folder, self.image.value.name, image, self.layer.data)
            features = self.layer.features
            record = record_path(labels)
            write_record(record, features["index"], features["confidence"], features["review"])
        except CellsegError as exc:
            show_error(str(exc))
            return None
        show_info(
            f"Saved for training in '{folder}': '{labels.name}' and its review record "
            f"'{record.name}'.  Training from the folder learns the reviewed objects only."
        )
        return labels

    def _sync(self) -> None:
        """Give the layer a ``review`` column, and a row per object the user painted."""
        features = self.layer.features.copy()
        if "review" not in features:
            features["review"] = ""
        added = reconcile(features["index"], np.unique(self.layer.data))
        if added:  # the other columns (measurements) of a painted object are not known
            rows = pd.DataFrame({"index": added, "confidence": np.nan, "review": "added"})
            features = pd.concat([features, rows], ignore_index=True)
        self.layer.features = features

    def _fill_table(self) -> None:
        features = self.layer.features
        order = np.argsort(features["confidence"].fillna(-1).to_numpy(), kind="stable")
        self.table.setRowCount(len(order))
        self._rows = {int(features["index"].iloc[i]): row for row, i in enumerate(order)}
        for row, i in enumerate(order):
            values = (
                str(int(features["index"].iloc[i])),
                f"{features['confidence'].iloc[i]:.2f}",
                str(features["review"].iloc[i]),
            )
            for col, text in enumerate(values):
                self.table.setItem(row, col, QTableWidgetItem(text))

    def _show_count(self, queue: list[int]) -> None:
        """Show how many objects are reviewed and left."""
        if self.layer is not None:
            reviewed = int((self.layer.features["review"] != "").sum())
            self.count.value = f"{reviewed} reviewed, {len(queue)} left"

    def _confidence(self, label: int) -> float:
        features = self.layer.features
        return float(features.loc[features["index"] == label, "confidence"].iloc[0])

    def _go_on(self, label: int) -> None:
        """Show the object after ``label``: the next in the queue when it was skipped
        (around to the start), the one now at its place when it was decided."""
        queue = self.queue()  # once per decision: it reads the whole labels image
        if label in queue:
            at = queue.index(label)
            rest = queue[at + 1 :] + queue[:at]
            following = rest[0] if rest else None
        else:
            following = queue[min(self._position, len(queue) - 1)] if queue else None
        self.show(following, queue)

    def _row_label(self, row: int) -> int:
        return int(self.table.item(row, 0).text())

    def _select_row(self, label: int) -> None:
        if label in self._rows:
            self.table.selectRow(self._rows[label])
