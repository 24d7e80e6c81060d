"""What the training dock shows of a run: its live curves, its clock, its closing words."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from napari_cellseg.training import events as ev
from napari_cellseg.widgets._plot import LivePlot, Series

__all__ = ["CURVES", "RunClock", "duration", "training_curves", "finished_text"]

_SMOOTHING = 0.9  # weight of the past in the running mean of the batch loss
CURVES = {
    "loss": "loss",
    "objects_iou": "objects IoU",
    "boundaries_iou": "boundaries IoU",
    "ap": "mean AP",
    "ap50": "AP@0.5",
}


@dataclass
class RunClock:
    """Batches done out of ``total`` (for the ETA) and the running mean of the batch loss."""

    total: int
    done: int = 0
    start: float = field(default_factory=time.monotonic)
    smooth: float | None = None

    def batch(self, loss: float) -> float:
        """Count one batch; the smoothed loss."""
        self.done += 1
        past = loss if self.smooth is None else self.smooth
        self.smooth = _SMOOTHING * past + (1 - _SMOOTHING) * loss
        return self.smooth

    def seconds_left(self) -> float:
        return (time.monotonic() - self.start) / max(self.done, 1) * (self.total - self.done)


def training_curves() -> LivePlot:
    series = {
        "batch loss (smoothed)": Series("loss", "#7f8fa6", width=1.0, markers=False),
        "train loss": Series("loss", "#4a90e2", width=2.0),
        "val loss": Series("loss", "#f5a623", width=2.0),
        "train objects IoU": Series("IoU", "#4a90e2"),
        "val objects IoU": Series("IoU", "#f5a623"),
        "train boundaries IoU": Series("IoU", "#4a90e2", dashed=True),
        "val boundaries IoU": Series("IoU", "#f5a623", dashed=True),
        "val mean AP": Series("IoU", "#d0021b", width=2.0),
        "val AP@0.5": Series("IoU", "#d0021b", dashed=True),
    }
    legend = {
        "train": Series("", "#4a90e2", width=2.0),
        "validation": Series("", "#f5a623", width=2.0),
        "batch loss": Series("", "#7f8fa6", width=1.0),
        "boundary IoU": Series("", "#7f8fa6", dashed=True),
        "instances' AP (@0.5 dashed)": Series("", "#d0021b", width=2.0),
    }
    return LivePlot({"loss": True, "IoU": False}, series, legend)


def duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {seconds:02d} s"


def finished_text(event: ev.TrainFinished, done: int, yaml_path, compared) -> str:
    """The dock's status at the end of a run: why it ended, the model, the best scores,
    and for a fine-tuning run which model the Predict dock keeps."""
    reason = event.reason.replace("_", " ")
    best = ", ".join(f"{k} {v:.3f}" for k, v in event.best.items())
    text = f"Finished ({reason}) after {done} epoch{'' if done == 1 else 's'}. Model: {yaml_path}"
    if compared is None:
        text += " (ready in the Predict widget)."
    elif compared.improved:
        text += f" (ready in the Predict widget). {compared.describe()}"
    else:
        text += (
            f". {compared.describe()}  The Predict widget keeps '{compared.init_path}'; "
            "pick the new model there to use it anyway."
        )
    return f"{text} Best on validation: {best}." if best else text
