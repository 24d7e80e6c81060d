"""PNG figures of predictions, drawn without a display (matplotlib's Agg canvas).

matplotlib is imported inside the function, and through ``Figure`` + ``FigureCanvasAgg``
rather than ``pyplot``, so the process-wide backend (napari's, for one) is untouched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_cellseg.io_utils import atomic_write

__all__ = ["save_prediction_figure"]


def save_prediction_figure(
    path: str | Path,
    image: np.ndarray,
    objects: np.ndarray,
    boundaries: np.ndarray,
    labels: np.ndarray,
    ground_truth: np.ndarray | None = None,
    *,
    title: str = "",
) -> Path:
    """Write a PNG with panels image, (ground truth), objects, boundaries, instances.

    Parameters
    ----------
    path
        The ``.png`` file to write (atomically).
    image, objects, boundaries, labels, ground_truth
        2D arrays of one page: the input image, the probability maps, the predicted
        instance labels and optionally the true labels.
    title
        Figure title, e.g. the image name.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from skimage.color import label2rgb

    panels = [("image", image, "gray")]
    if ground_truth is not None:
        panels.append((f"ground truth ({_count(ground_truth)})", label2rgb(ground_truth), None))
    panels += [
        ("objects", objects, "magma"),
        ("boundaries", boundaries, "magma"),
        (f"instances ({_count(labels)})", label2rgb(labels), None),
    ]
    figure = Figure(figsize=(3.2 * len(panels), 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    for ax, (name, data, cmap) in zip(figure.subplots(1, len(panels)), panels, strict=True):
        limits = {"vmin": 0, "vmax": 1} if name in ("objects", "boundaries") else {}
        ax.imshow(data, cmap=cmap, interpolation="nearest", **limits)
        ax.set_title(name)
        ax.set_axis_off()
    if title:
        figure.suptitle(title)
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=100))


def _count(labels: np.ndarray) -> str:
    values = np.unique(labels)
    return f"{np.count_nonzero(values)} objects"
