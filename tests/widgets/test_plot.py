"""The live training plot (pyqtgraph): a log loss axis, the legend outside, values on hover."""

from __future__ import annotations

import math

import pytest

from napari_cellseg.widgets._train_status import training_curves


def shown(plot, name: str) -> list[float]:
    """The x values curve ``name`` draws."""
    x, _y = plot._curves[name].getData()
    return [] if x is None else list(x)


@pytest.fixture
def plot(qtbot):
    plot = training_curves()
    qtbot.addWidget(plot)
    plot.resize(420, 520)
    plot.show()
    for epoch in (1, 2, 3):
        plot.add_point("train loss", epoch, 1.0 / epoch)
        plot.add_point("val loss", epoch, 1.5 / epoch)
        plot.add_point("val objects IoU", epoch, 0.2 * epoch)
    plot.add_point("val loss", 4, math.nan)  # skipped, as a diverged epoch's is
    plot.redraw()
    qtbot.wait(10)
    return plot


def test_points_reach_the_curves_and_nan_is_skipped(plot):
    assert shown(plot, "val loss") == [1, 2, 3]
    assert plot._curves["val loss"].yData[-1] == pytest.approx(0.5)
    assert plot.points("val loss")[-1] == (3, 0.5)
    plot.clear()
    assert plot.points("train loss") == [] and shown(plot, "train loss") == []


def test_loss_axis_is_logarithmic_and_iou_linear(plot):
    assert plot._items["loss"].getAxis("left").logMode
    assert not plot._items["IoU"].getAxis("left").logMode
    plot.add_point("batch loss (smoothed)", 0.5, 0.0)  # cannot be shown on a log axis
    plot.redraw()
    assert shown(plot, "batch loss (smoothed)") == []


def test_legend_sits_outside_every_panel(plot):
    legend = plot.legend.sceneBoundingRect()
    for item in plot._items.values():
        assert not legend.intersects(item.vb.sceneBoundingRect())
    entries = [label.text for _sample, label in plot.legend.items]
    assert entries == [
        "train",
        "validation",
        "batch loss",
        "boundary IoU",
        "instances' AP (@0.5 dashed)",
    ]


def test_hovering_shows_every_curve_at_the_nearest_epoch(plot):
    view = plot._items["IoU"].vb
    position = view.mapViewToScene(view.mapToView(view.boundingRect().center()))
    position.setX(view.mapViewToScene(type(position)(2.2, 0.3)).x())
    plot.canvas.scene().sigMouseMoved.emit(position)
    text = plot.readout.text()
    assert text.startswith("epoch 2:")
    assert "train loss 0.5," in text and "val loss 0.75," in text and "val objects IoU 0.4" in text
