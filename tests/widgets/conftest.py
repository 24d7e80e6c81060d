"""Fixtures of the napari widget tests: a viewer with synthetic layers, caught notifications."""

from __future__ import annotations

import pytest

from napari_cellseg.data.synthetic import make_nuclei


@pytest.fixture
def notes():
    """Messages of the napari notifications (errors, infos) shown during the test."""
    from napari.utils.notifications import notification_manager

    messages: list[str] = []

    def keep(event):
        messages.append(str(event.message if hasattr(event, "message") else event))

    notification_manager.notification_ready.connect(keep)
    yield messages
    notification_manager.notification_ready.disconnect(keep)


@pytest.fixture
def viewer(make_napari_viewer):
    """A viewer with two small synthetic image/labels pairs: 'a' + 'a labels', 'b' + 'b labels'."""
    viewer = make_napari_viewer()
    for name, seed in (("a", 0), ("b", 1)):
        image, labels = make_nuclei((64, 64), blobs=1, seed=seed)
        viewer.add_image(image, name=name)
        viewer.add_labels(labels, name=f"{name} labels")
    return viewer


@pytest.fixture
def open_widget(viewer):
    """Open one of the plugin's dock widgets by its manifest name, as the Plugins menu does."""

    def open_(name: str):
        _dock, widget = viewer.window.add_plugin_dock_widget("napari-cellseg", name)
        return widget

    return open_
