"""Open a model: dropping a model ``.yaml`` on napari makes it the current model.

The predict widget opens with it selected (and the blob inspector uses it).  Files
that are not model settings (no ``architecture`` key) are left to other readers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from napari_cellseg.model_file import is_model_yaml
from napari_cellseg.widgets._worker import current_model

__all__ = ["get_reader"]


def get_reader(path: str | list[str]) -> Callable[[str], list[tuple]] | None:
    """The reader of ``path`` when it is one model yaml written by training, else None."""
    if not isinstance(path, str):
        return None
    return open_model if is_model_yaml(path) else None


def open_model(path: str) -> list[tuple]:
    """Make ``path`` the current model and show the predict widget; adds no layer."""
    import napari

    current_model.set(str(Path(path).resolve()))
    viewer = napari.current_viewer()
    if viewer is not None:
        viewer.window.add_plugin_dock_widget("napari-cellseg", "Predict")
    return [(None,)]
