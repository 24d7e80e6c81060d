"""The cosine learning-rate schedule, aware of a time budget.

``lr_schedule: cosine`` lowers the learning rate from ``lr`` to ``lr / 100`` along half
a cosine, a little after every batch, over the epochs the run will make: ``epochs``, or
fewer when ``max_minutes`` will end training first.  After every epoch the plan becomes
the number of epochs that fit in ``max_minutes`` at the mean epoch time so far, so a
time-limited run ends with a fully lowered rate instead of being cut at a high one.
The plan then depends on the machine's speed: such runs repeat only approximately.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from napari_cellseg.config import TrainConfig

__all__ = ["CosineSchedule", "make_scheduler"]

FINAL_FRACTION = 0.01
"""The last learning rate as a fraction of ``lr``."""


@dataclass
class CosineSchedule:
    """Learning rate as a function of the epochs done (fractional within an epoch).

    Examples
    --------
    >>> schedule = CosineSchedule(lr=1.0, epochs=100, max_minutes=10)
    >>> schedule.rate(0.0), round(schedule.rate(50.0), 3)
    (1.0, 0.505)
    >>> schedule.plan(epochs_done=2, minutes=1.0)  # 2 epochs per minute: 20 fit in 10 min
    >>> schedule.planned, round(schedule.rate(20.0), 3)
    (20.0, 0.01)
    """

    lr: float
    epochs: int
    max_minutes: float = 0.0
    planned: float = 0.0

    def __post_init__(self) -> None:
        self.planned = self.planned or float(max(self.epochs, 1))

    def rate(self, progress: float) -> float:
        """The learning rate after ``progress`` epochs."""
        low = self.lr * FINAL_FRACTION
        t = min(progress / self.planned, 1.0)
        return low + (self.lr - low) * (1 + math.cos(math.pi * t)) / 2

    def plan(self, epochs_done: int, minutes: float) -> None:
        """Re-plan the run's length after ``epochs_done`` epochs took ``minutes`` in all."""
        if self.max_minutes > 0 and minutes > 0:
            fit = self.max_minutes * epochs_done / minutes
            self.planned = min(float(self.epochs), max(fit, float(epochs_done)))

    def state_dict(self) -> dict[str, float]:
        """The plan, kept in the train state for ``resume``."""
        return {"planned": self.planned}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.planned = state["planned"]


def make_scheduler(cfg: TrainConfig, optimizer):
    """``plateau``: lr / 10 after ``lr_patience`` epochs without progress (the seed's);
    ``cosine``: from ``lr`` down to ``lr / 100`` over the epochs or the time budget
    (:mod:`napari_cellseg.training.schedule`; suits a fixed budget)."""
    from torch.optim import lr_scheduler

    if cfg.lr_schedule == "plateau":
        return lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=0.1, patience=cfg.lr_patience
        )
    return CosineSchedule(cfg.lr, cfg.epochs, cfg.max_minutes)
