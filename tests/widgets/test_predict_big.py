"""A large image layer in the Predict dock: block by block into an OME-Zarr, never loaded whole.

Four copies of the sample (1040 x 1392, 588 nuclei) stand in for a slide: the dock's size
limits are lowered so that it counts as large, and its full resolution is a multiscale
layer's level 0 that records every region read from it.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import zarr

from napari_cellseg.bigimage import statistics, zarr_output
from napari_cellseg.config import PredictConfig
from napari_cellseg.data.io import read_image
from napari_cellseg.sharing.networks import SAMPLE_IMAGE
from napari_cellseg.widgets import _big_image

TIMEOUT = 120_000  # ms
BLOCKS = 12  # of 384 pixels over 1040 x 1392
SAMPLE = 20_000  # pixels read for the intensity range


class Source:
    """An image that records how many pixels each read returned (dask passes its regions
    down: the layer's level 0 is one dask chunk of it)."""

    def __init__(self, image: np.ndarray) -> None:
        self.image, self.shape, self.dtype, self.ndim = image, image.shape, image.dtype, 2
        self.reads: list[int] = []

    def __getitem__(self, key):
        region = self.image[key]
        self.reads.append(region.size)
        return region


@pytest.fixture
def slide(viewer, monkeypatch):
    monkeypatch.setattr(_big_image, "IN_MEMORY_PIXELS", 100_000)
    monkeypatch.setattr(PredictConfig, "block_size", 384)
    monkeypatch.setattr(statistics, "SAMPLE_PIXELS", SAMPLE)
    monkeypatch.setattr(zarr_output, "PYRAMID_SIDE", 800)
    image = np.tile(read_image(SAMPLE_IMAGE)[0], (2, 2))
    source = Source(image)
    levels = [da.from_array(source, chunks=image.shape), da.from_array(image[::2, ::2])]
    viewer.add_image(levels, name="slide", multiscale=True)
    return source


@pytest.fixture
def widget(open_widget, viewer, slide):
    widget = open_widget("Predict")
    widget.image.value = viewer.layers["slide"]
    widget.model_panel.diameter.value = 24
    return widget


def run(qtbot, widget, output) -> None:
    widget.predict(str(output))
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT)


def windows(source: Source) -> int:
    """The block windows read (every read but the intensity sample)."""
    return sum(size > SAMPLE for size in source.reads)


def test_a_large_layer_is_predicted_block_by_block_into_ome_zarr(
    qtbot, viewer, widget, slide, tmp_path
):
    slide.reads.clear()
    run(qtbot, widget, tmp_path / "slide")  # ".zarr" is added
    assert windows(slide) == BLOCKS and max(slide.reads) < 0.6 * 1040 * 1392  # never whole
    objects, boundaries, instances = (
        viewer.layers[f"slide {role}"] for role in ("objects", "boundaries", "instances")
    )
    for layer in (objects, boundaries, instances):
        assert layer.multiscale and [level.shape for level in layer.data] == [
            (1040, 1392),
            (520, 696),
        ]
        assert isinstance(layer.data[0], da.Array)  # read from disk as napari shows it
    labels = np.asarray(instances.data[0])
    count = len(np.unique(labels)) - 1
    assert count > 560 and instances.selected_label == count + 2  # a new object's value
    assert np.array_equal(
        labels, zarr.open_group(str(tmp_path / "slide.zarr"), mode="r")["labels/instances/0"][:]
    )
    assert f"{count} objects in {BLOCKS} blocks" in widget.state.status
    assert widget.progress_bar.value() == widget.progress_bar.maximum() == 2 * BLOCKS + 1
    assert widget.state.maps is None and widget.run.text == "Predict on current layer"


def test_a_cancelled_run_goes_on_where_it_stopped(qtbot, viewer, widget, slide, tmp_path):
    output = tmp_path / "slide.zarr"
    widget.predict(str(output))
    qtbot.waitUntil(lambda: widget.progress_bar.value() >= 2, timeout=TIMEOUT)
    widget.predict()  # the button, now "Cancel prediction"
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT)
    state = dict(zarr.open_group(str(output), mode="r").attrs)["napari-cellseg"]
    assert "Cancelled" in widget.state.status and not state["complete"]
    assert 2 <= len(state["pass1"]) < BLOCKS and "slide instances" not in viewer.layers
    assert widget._unfinished["slide"] == str(output)  # proposed for the next run
    slide.reads.clear()
    run(qtbot, widget, output)
    assert windows(slide) == BLOCKS - len(state["pass1"])  # finished blocks not redone
    assert "slide instances" in viewer.layers and "slide" not in widget._unfinished


def test_large_layers_the_dock_cannot_predict_say_why(
    qtbot, viewer, widget, slide, notes, tmp_path
):
    (tmp_path / "file.txt").write_text("")
    run(qtbot, widget, tmp_path / "file.txt" / "out.zarr")
    assert any("Cannot create" in note and "file.txt" in note for note in notes)
    assert widget.state.status == "Prediction failed."
    rgb = viewer.add_image(np.zeros((400, 400, 3), np.uint8), name="colour", rgb=True)
    series = viewer.add_image(da.zeros((2, 3, 400, 400), dtype=np.uint8), name="series")
    for layer, why in ((rgb, "Split RGB"), (series, "has 4 dimensions")):
        widget.image.value = layer
        widget.predict(str(tmp_path / "never.zarr"))
        assert widget.worker is None and any(why in note for note in notes)
    assert not (tmp_path / "never.zarr").exists() and len(viewer.layers) == 7
