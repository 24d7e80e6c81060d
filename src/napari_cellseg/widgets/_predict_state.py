"""What the parts of the Predict dock share: an evented state each part connects to.

The model part sets ``model`` and ``tta``; a prediction sets ``maps``; the segmentation
part re-segments whenever ``maps`` change; every part reports through ``status``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from psygnal import evented

from napari_cellseg.model_file import ModelFile

__all__ = ["Maps", "PredictState"]


@dataclass(eq=False)  # compared by identity: a new prediction is a new Maps
class Maps:
    """Probability maps of one input layer, kept for re-running the segmentation."""

    name: str
    objects: np.ndarray
    boundaries: np.ndarray
    placement: dict  # scale, translate, units of the input layer
    blob_label: int | None  # of the model: no instance takes it
    image: np.ndarray  # the intensities predicted on, for the measurements
    pixel_size: tuple[float, float] | None  # of the image, in micrometres: None unknown
    z_spacing: float | None  # of a stack, in micrometres: None unknown
    channels: dict[str, np.ndarray] = field(default_factory=dict)  # other channels, measured
    augmented: list[np.ndarray] | None = None  # tta: the 8 symmetries' instances (agreement)


@evented
@dataclass(eq=False)
class PredictState:
    """The Predict dock's shared state; ``state.events.<field>`` fires on each change."""

    model: ModelFile | None = None  # the current model, read
    tta: bool = False  # predict (and segment) test-time augmented maps
    maps: Maps | None = None  # the maps of the last prediction, with the current model
    status: str = ""  # one line for the user
