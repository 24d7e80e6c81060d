"""All three docks open on a laptop screen: each usable, the Train dock's essentials in sight."""

from __future__ import annotations

from qtpy.QtWidgets import QApplication


def fully_visible(widget) -> bool:
    """Whether all of ``widget`` is on screen: shown, not scrolled or clipped away."""
    return widget.isVisible() and widget.visibleRegion().boundingRect().size() == widget.size()


def test_three_docks_fit_the_screen_as_tabs(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-cellseg", "dsb2018")
    window = viewer.window._qt_window
    window.showNormal()
    docks = {
        name: viewer.window.add_plugin_dock_widget("napari-cellseg", name)
        for name in ("Predict", "Train", "Blob inspector")
    }
    for size in ((1366, 768), (1920, 1080)):
        window.resize(*size)
        QApplication.processEvents()
        assert window.height() == size[1]  # the docks ask no more height than the screen has
        check_docks(window, docks, tmp_path / f"docks-{size[0]}x{size[1]}.png")


def check_docks(window, docks: dict, screenshot) -> None:
    """The docks are tabbed; Train's essentials and Predict's button are in sight."""
    predict_dock = docks["Predict"][0]
    tabbed = {d.name for d in window.tabifiedDockWidgets(predict_dock)}
    assert tabbed == {docks["Train"][0].name, docks["Blob inspector"][0].name}

    train_dock, train = docks["Train"]
    train_dock.raise_()
    QApplication.processEvents()
    window.grab().save(str(screenshot))
    assert fully_visible(train.start.native)
    assert fully_visible(train.form.widgets["model"].native)
    assert fully_visible(train.plot) and train.plot.height() >= 220

    predict_dock.raise_()
    QApplication.processEvents()
    predict = docks["Predict"][1]
    assert fully_visible(predict.run.native) and fully_visible(predict.model_panel.native)


def test_a_dock_alone_is_not_tabbed(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    dock, _widget = viewer.window.add_plugin_dock_widget("napari-cellseg", "Predict")
    QApplication.processEvents()
    assert viewer.window._qt_window.tabifiedDockWidgets(dock) == []
