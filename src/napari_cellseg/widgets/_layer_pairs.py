"""The Train dock's image/labels pairs: each image with the labels the user means.

Which labels layer trains an image: of the labels layers of its size and not named after
another image, the one the user edited last (the correction loop: predict, correct the
instances, train), else the user's own annotation (named after the image first); the
plugin's untouched predictions come last.
A row follows the user's newest edits until the user picks its labels by hand, and a line
under the rows says plainly which layer trains which image.
"""

from __future__ import annotations

import itertools
import weakref

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, PushButton
from napari.layers import Image, Labels

from napari_cellseg.errors import DataError
from napari_cellseg.widgets._layers import OWNER_KEY, breakable, image_array, layer_combo

__all__ = ["EditLog", "LayerPairs", "training_labels"]


class EditLog:
    """The order in which a viewer's labels layers were last edited by hand (painted,
    filled, erased); ``on_edit(layer)`` is called after each edit."""

    def __init__(self, viewer, on_edit) -> None:
        self._count = itertools.count(1)
        self._last: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._on_edit = on_edit
        for layer in viewer.layers:
            self._watch(layer)
        viewer.layers.events.inserted.connect(self._inserted)

    def rank(self, layer: Labels) -> int:
        """How recent the layer's last edit is (0: never edited)."""
        return self._last.get(layer, 0)

    def _inserted(self, event) -> None:
        self._watch(event.value)

    def _watch(self, layer) -> None:
        if isinstance(layer, Labels):
            layer.events.paint.connect(self._edited)  # a method: napari holds it weakly
            layer.events.features.connect(self._reviewed)

    def _reviewed(self, event) -> None:
        """A labels layer's table changed (a review started or went on)."""
        self._on_edit(None)

    def _edited(self, event) -> None:
        self._last[event.source] = next(self._count)
        self._on_edit(event.source)


class LayerPairs(Container):
    """Rows of (image layer, labels layer) pairs; a 3D stack pair counts as its slices."""

    def __init__(self, viewer) -> None:
        self._viewer = viewer
        self._rows = Container(labels=False)
        self._chosen_by_hand: weakref.WeakSet = weakref.WeakSet()  # rows' labels boxes
        self._edits = EditLog(viewer, self._follow_edit)
        self.summary = Label(value="")
        self.summary.native.setWordWrap(True)
        self.reviewed_only = CheckBox(
            value=True,
            text="only the reviewed objects",
            tooltip="labels reviewed in the Review dock: the objects not accepted yet are "
            "ignored (as blobs), so ten reviewed objects can start a fine-tuning",
            visible=False,
        )
        add = PushButton(text="+ add image/labels pair")
        add.changed.connect(self.add_row)
        super().__init__(widgets=[self._rows, add, self.summary, self.reviewed_only], labels=False)
        self.margins = (0, 0, 0, 0)
        self.add_row()

    def add_row(self) -> None:
        """Add one pair row (image, labels, remove button)."""
        image = layer_combo(self._viewer, Image, tooltip="image layer")
        labels = layer_combo(self._viewer, Labels, tooltip="its labels layer")
        remove = PushButton(text="✕", tooltip="remove this pair")
        remove.max_width = 32
        row = Container(widgets=[image, labels, remove], layout="horizontal", labels=False)
        row.margins = (0, 0, 0, 0)
        remove.changed.connect(lambda: self._remove(row))
        used = [r[0].value for r in self._rows]
        free = [c for c in image.choices if c not in used]
        if free:  # else the first choice, or none in an empty viewer
            image.value = free[0]
        self._match(image, labels)
        image.changed.connect(lambda _value: self._match(image, labels))
        labels.changed.connect(lambda _value: self._picked(labels))
        self._rows.append(row)
        self.describe()

    def _remove(self, row: Container) -> None:
        self._rows.remove(row)
        self.describe()

    def reset_choices(self, *_args) -> None:
        """Update the layer choices (layers added, removed, renamed) and the rows that
        follow the rule."""
        super().reset_choices()
        self._follow_edit()

    def _match(self, image: ComboBox, labels: ComboBox) -> None:
        """Give the row the labels the user most likely means for its image."""
        best = self.best_labels(image.value, labels.choices)
        if best is not None:
            labels.value = best
            self._chosen_by_hand.discard(labels)
        self.describe()

    def _picked(self, labels: ComboBox) -> None:
        """The labels box changed: by hand unless it now holds what the rule would choose."""
        row = next(r for r in self._rows if r[1] is labels)
        if labels.value is not self.best_labels(row[0].value, labels.choices):
            self._chosen_by_hand.add(labels)
        self.describe()

    def best_labels(self, image: Image | None, choices) -> Labels | None:
        """The labels layer for ``image`` among ``choices`` of its height and width: not
        named after another image, the one edited last, else the user's own (named after
        the image first), else the plugin's prediction; layer order breaks ties."""
        if image is None:
            return None
        shape = image.data.shape[: -1 if image.rgb else None]
        fits = [layer for layer in choices if layer.data.shape == shape]
        images = [layer.name for layer in self._viewer.layers if isinstance(layer, Image)]

        def owner(labels: Labels) -> str | None:  # the image it is named after
            return max((n for n in images if labels.name.startswith(n)), key=len, default=None)

        return max(
            fits,
            key=lambda layer: (
                owner(layer) in (image.name, None),
                self._edits.rank(layer),
                OWNER_KEY not in layer.metadata,
                owner(layer) == image.name,
            ),
            default=None,
        )

    def _follow_edit(self, _edited: Labels | None = None) -> None:
        """Apply the rule again to the rows whose labels were not picked by hand."""
        for row in self._rows:
            if row[1] not in self._chosen_by_hand:
                self._match(row[0], row[1])
        self.describe()

    def describe(self) -> None:
        """Say which labels layer trains which image, and which were edited by hand."""
        lines = []
        for image, labels in ((r[0].value, r[1].value) for r in self._rows):
            if image is not None and labels is not None:
                edited = " (edited by you)" if self._edits.rank(labels) else ""
                lines.append(f"'{image.name}' learns from '{labels.name}'{edited}")
        self.summary.value = breakable("; ".join(lines) + "." if lines else "No pair chosen.")
        self.reviewed_only.visible = any(
            r[1].value is not None and "review" in r[1].value.features for r in self._rows
        )

    def pairs(self) -> list[tuple[Image, Labels]]:
        """The chosen pairs; an error names the row that lacks a layer."""
        pairs = []
        for i, row in enumerate(self._rows, start=1):
            image, labels = row[0].value, row[1].value
            if image is None or labels is None:
                what = "image" if image is None else "labels"
                raise DataError(
                    f"Pair {i} lacks its {what} layer: open or paint one (Labels layers hold "
                    "the annotation), or remove the pair."
                )
            pairs.append((image, labels))
        if not pairs:
            raise DataError("No image/labels pair chosen: add a pair of layers to train on.")
        return pairs

    def stacks(self, blob_label: int | None = 1) -> list:
        """The chosen pairs as ``data.io.Stack`` objects (labels copied: painting may go on);
        with *only the reviewed objects*, a reviewed layer's other objects are ignored."""
        from napari_cellseg.data.stacks import stacks_from_arrays

        pairs = self.pairs()
        reviewed = self.reviewed_only.value
        return stacks_from_arrays(
            [image_array(image) for image, _ in pairs],
            [training_labels(labels, reviewed, blob_label) for _, labels in pairs],
            [image.name for image, _ in pairs],
        )


def training_labels(layer: Labels, reviewed_only: bool, blob_label: int | None) -> np.ndarray:
    """A copy of a labels layer's data to train on: with ``reviewed_only`` and a review
    record (the Review dock's), the objects not confirmed become ignored pixels."""
    from napari_cellseg.analysis.review import reviewed_training_labels

    data = np.array(layer.data)
    if not reviewed_only or "review" not in layer.features:
        return data
    features = layer.features
    fix = "untick 'only the reviewed objects'"
    return reviewed_training_labels(
        data, features["index"], features["review"], blob_label, f"'{layer.name}'", fix
    )
