"""Records that the training generator yields; every front end consumes the same ones.

The CLI prints them, the CSV and TensorBoard writers record them, the napari widget
plots them.  They are plain dataclasses of numbers, strings and small numpy arrays (no
tensors), so they cross threads and processes freely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from napari_cellseg.segmentation.tuning import TunedSettings

__all__ = [
    "Event",
    "TrainStarted",
    "EpochStarted",
    "BatchEnded",
    "EpochEnded",
    "CheckpointSaved",
    "PostprocessTuned",
    "TrainFinished",
]


@dataclass(frozen=True)
class Event:
    """Base of every training event."""


@dataclass(frozen=True)
class TrainStarted(Event):
    """Training is about to run its first batch."""

    epochs: int
    batches_per_epoch: int
    train_samples: int
    val_samples: int
    device: str
    start_epoch: int = 0
    notes: tuple[str, ...] = ()  # about the data, e.g. slices left out for lack of labels


@dataclass(frozen=True)
class EpochStarted(Event):
    """An epoch (0-based ``epoch``) begins."""

    epoch: int


@dataclass(frozen=True)
class BatchEnded(Event):
    """One optimisation step finished; ``batch`` is 0-based within the epoch."""

    epoch: int
    batch: int
    batches: int
    loss: float


@dataclass(frozen=True)
class EpochEnded(Event):
    """An epoch finished: its train and validation metrics (``loss``, ``objects_iou``, ...)."""

    epoch: int
    train: dict[str, float]
    val: dict[str, float]
    lr: float
    seconds: float
    samples: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    """Predictions on fixed samples per split (``train``, ``val``): rows of side-by-side
    panels (:func:`~napari_cellseg.training.writers.sample_panels`); empty on ranks other
    than 0 and with ``tb_samples`` 0."""


@dataclass(frozen=True)
class CheckpointSaved(Event):
    """A weights file and its yaml were written.

    ``kind`` is 'last' (the model path) or, with validation data only, 'best-val-loss',
    'best-val-objects-iou' or 'best-val-boundaries-iou'.
    """

    epoch: int
    path: str
    kind: str


@dataclass(frozen=True)
class PostprocessTuned(Event):
    """Segmentation settings tuned on the validation data and written to ``path``.

    ``tuned`` holds the settings and the mean AP they reach.
    """

    path: str
    tuned: TunedSettings


@dataclass(frozen=True)
class ModelsCompared(Event):
    """A fine-tuning run's new model and the one it started from, scored on the same
    validation data: ``init`` and ``final`` hold each one's ``ap`` (mean AP of the
    instances over IoU 0.5..0.95) and ``ap50``."""

    init_path: str
    final_path: str
    init: dict[str, float]
    final: dict[str, float]

    @property
    def improved(self) -> bool:
        """Whether the new model scores at least the mean AP of the one it started from."""
        return self.final["ap"] >= self.init["ap"]

    def describe(self) -> str:
        """One sentence for the user: which is better, by how much."""
        change = self.final["ap"] - self.init["ap"]
        scores = (
            f"mean AP {self.final['ap']:.3f} (AP@0.5 {self.final['ap50']:.3f}) against "
            f"{self.init['ap']:.3f} ({self.init['ap50']:.3f}) for the model it started from"
        )
        if self.improved:
            return f"The fine-tuned model is better by {change:.3f} mean AP: {scores}."
        return (
            f"The fine-tuned model is WORSE by {-change:.3f} mean AP on the validation data: "
            f"{scores}; keep predicting with '{self.init_path}', or train on more "
            "(or better corrected) data."
        )


@dataclass(frozen=True)
class TrainFinished(Event):
    """Training ended; ``reason`` is 'completed', 'early_stopping', 'time_limit' or 'stopped'.

    ``model_path`` is the best-val-loss checkpoint, or the last weights when there was no
    validation; ``best`` holds the best validation value per metric (empty without validation).
    """

    reason: str
    epochs_run: int
    model_path: str
    best: dict[str, float] = field(default_factory=dict)
