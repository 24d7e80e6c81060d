"""The blob inspector on the sample data: table, navigation, a split proposed, accepted, undone."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from skimage.measure import label

from napari_cellseg.config_io import load_yaml, save_yaml
from napari_cellseg.widgets._worker import current_model

TIMEOUT = 120_000  # ms


@pytest.fixture
def blobs_widget(viewer, open_widget):
    viewer.layers.clear()
    viewer.open_sample("napari-cellseg", "nuclei")
    widget = open_widget("Blob inspector")
    widget.labels.value = viewer.layers["nuclei labels"]
    return widget


def table(widget) -> list[list[str]]:
    t = widget.table
    return [[t.item(r, c).text() for c in range(t.columnCount())] for r in range(t.rowCount())]


def test_lists_every_blob_of_the_sample_labels(blobs_widget, viewer):
    labels = viewer.layers["nuclei labels"].data
    regions = label(labels == 1, connectivity=2)
    rows = table(blobs_widget)
    assert len(rows) == regions.max() == 2
    assert sorted(int(r[1]) for r in rows) == sorted(np.bincount(regions.ravel())[1:])
    share = np.count_nonzero(labels == 1) / np.count_nonzero(labels)
    assert blobs_widget.summary.value == f"2 blobs, {share:.1%} of the annotated pixels."
    # estimated cells: area / median object area
    areas = np.bincount(labels.ravel())[2:]
    median = np.median(areas[areas > 0])
    assert [float(r[3]) for r in rows] == [round(int(r[1]) / median, 1) for r in rows]


def test_selecting_a_row_centres_outlines_and_show_only(blobs_widget, viewer):
    layer = viewer.layers["nuclei labels"]
    layer.scale = (2.0, 2.0)
    blobs_widget.table.selectRow(1)
    blob = blobs_widget.blobs[1]
    centre = [(s.start + s.stop - 1) / 2 * 2.0 for s in blob.bbox]
    assert np.allclose(viewer.scene.camera.center[-2:], centre)
    outline = viewer.layers["blob highlight"]
    lo, hi = outline.data[0].min(axis=0), outline.data[0].max(axis=0)
    assert np.allclose(lo, [s.start - 0.5 for s in blob.bbox])
    assert np.allclose(hi, [s.stop - 0.5 for s in blob.bbox])
    blobs_widget.only.value = True
    assert layer.show_selected_label and layer.selected_label == 1


@pytest.fixture
def greedy_model(model_yaml, tmp_path) -> str:
    """The tiny model with post-processing that makes the whole blob one object."""
    cfg = dataclasses.replace(
        load_yaml(model_yaml), obj_threshold=0.0, bnd_threshold=1.0, min_size=1
    )
    return str(save_yaml(cfg, tmp_path / "greedy.yaml"))


def test_propose_accept_and_undo(qtbot, blobs_widget, viewer, greedy_model):
    layer = viewer.layers["nuclei labels"]
    before = np.array(layer.data)
    current_model.set(greedy_model)
    blobs_widget.image.value = viewer.layers["nuclei"]
    blobs_widget.table.selectRow(0)
    blob = blobs_widget.blobs[0]
    blobs_widget.propose_split()
    qtbot.waitUntil(lambda: blobs_widget.accept.enabled, timeout=TIMEOUT)

    proposal = viewer.layers["nuclei labels split proposal"]
    starts = [max(s.start - 64, 0) for s in blob.bbox]
    assert np.allclose(proposal.translate, starts)
    inside = blobs_widget.components == blob.id
    crop = tuple(slice(a, a + n) for a, n in zip(starts, proposal.data.shape, strict=True))
    assert np.array_equal(proposal.data > 0, inside[crop])  # the whole blob, nothing else
    assert blobs_widget.status.value.startswith("Proposal: 1 cells in the blob (its area")

    blobs_widget.accept.changed.emit()
    new = before.max() + 1
    assert np.array_equal(layer.data, np.where(inside, new, before))
    assert not (layer.data[inside] == 1).any()  # no fragment stays a blob
    assert "nuclei labels split proposal" not in viewer.layers
    # the table lists the blob left, selected and outlined; the labels layer is active
    assert len(blobs_widget.blobs) == blobs_widget.table.rowCount() == 1
    assert blobs_widget.selected() is blobs_widget.blobs[0]
    outline = viewer.layers["blob highlight"].data[0]
    assert np.allclose(outline.min(axis=0), [s.start - 0.5 for s in blobs_widget.blobs[0].bbox])
    assert viewer.layers.selection.active is layer
    assert "1 blobs left" in blobs_widget.status.value

    layer.undo()
    assert np.array_equal(layer.data, before)
    assert blobs_widget.table.rowCount() == 2  # the table follows the undo
    assert "undone" in blobs_widget.status.value


def test_bad_requests_are_notifications(blobs_widget, viewer, notes):
    blobs_widget.propose_split()
    assert any("Select a blob" in n for n in notes)
    viewer.add_image(np.zeros((10, 10), np.uint8), name="small")
    blobs_widget.image.value = viewer.layers["small"]
    blobs_widget.table.selectRow(0)
    blobs_widget.propose_split()
    assert any("same shape" in n for n in notes)
    assert blobs_widget.propose.enabled
