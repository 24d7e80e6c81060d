"""Training records on disk: a CSV row and TensorBoard scalars per epoch, sample images, graph.

The writers consume the training events (:class:`RunLogs` records each event the loop
yields); the loop itself writes only the model files.
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

import numpy as np

from napari_cellseg.config import TrainConfig
from napari_cellseg.io_utils import atomic_write_text
from napari_cellseg.training.events import EpochEnded, Event


def epoch_row(event: EpochEnded) -> dict[str, float]:
    """Flatten an epoch's metrics into one row: epoch, lr, seconds, train_*, val_*."""
    row: dict[str, float] = {"epoch": event.epoch, "lr": event.lr, "seconds": event.seconds}
    row.update({f"train_{k}": v for k, v in event.train.items()})
    row.update({f"val_{k}": v for k, v in event.val.items()})
    return row


class CsvLog:
    """Append one row per epoch to a CSV file.

    A run resumed at ``start_epoch`` continues the file from that epoch: rows of that
    epoch and later (written before a kill, then trained again) are dropped first, so the
    log holds one row per epoch.
    """

    def __init__(self, path: str | Path, *, start_epoch: int = 0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fields: list[str] | None = None
        if start_epoch and self.path.is_file():
            with self.path.open(newline="") as fh:
                rows = list(csv.reader(fh))
            if rows:
                self._fields = rows[0]
                column = self._fields.index("epoch")
                kept = [rows[0], *(r for r in rows[1:] if int(float(r[column])) < start_epoch)]
                text = io.StringIO()
                csv.writer(text).writerows(kept)
                atomic_write_text(self.path, text.getvalue())
        else:
            self.path.write_text("")

    def write(self, event: EpochEnded) -> None:
        row = epoch_row(event)
        with self.path.open("a", newline="") as fh:
            if self._fields is None:
                self._fields = list(row)
                csv.writer(fh).writerow(self._fields)
            csv.DictWriter(fh, self._fields, extrasaction="ignore").writerow(row)


class TensorBoardLog:
    """Scalars, sample predictions and the model graph for TensorBoard."""

    def __init__(self, log_dir: str | Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def graph(self, model, example) -> None:
        """Record the network graph (skipped with a warning where tracing fails)."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.writer.add_graph(model, example)
        except Exception as exc:  # tracing is best effort; training must go on
            warnings.warn(f"TensorBoard graph not recorded: {exc}", stacklevel=2)

    def scalars(self, event: EpochEnded) -> None:
        for split, metrics in (("train", event.train), ("val", event.val)):
            for name, value in metrics.items():
                self.writer.add_scalar(f"{name}/{split}", value, event.epoch)
        self.writer.add_scalar("lr", event.lr, event.epoch)
        self.writer.flush()

    def samples(self, tag: str, panels: np.ndarray, epoch: int) -> None:
        """Record sample predictions: ``panels`` is (N, H, W') rows of side-by-side panels."""
        self.writer.add_images(tag, panels[:, None], epoch, dataformats="NCHW")

    def close(self) -> None:
        self.writer.close()


def sample_panels(image, objects, boundaries, pred_objects, pred_boundaries) -> np.ndarray:
    """Side-by-side panels per sample: input | objects target | prediction | boundaries target |
    prediction, each (N, H, W) in [0, 1]; returns (N, H, 5 * W) float32."""
    rows = [np.clip(a, 0, 1) for a in (image, objects, pred_objects, boundaries, pred_boundaries)]
    return np.concatenate(rows, axis=-1).astype(np.float32)


class RunLogs:
    """The CSV log and TensorBoard writer of a run (paths from the settings), fed events.

    Use as a context manager; :meth:`record` every event of the run.
    """

    def __init__(self, cfg: TrainConfig, *, start_epoch: int = 0) -> None:
        model = Path(cfg.model)
        csv_path = cfg.csv_log or model.with_name(f"{model.stem}-log.csv")
        tb_dir = cfg.tb_dir or model.parent / "tensorboard" / model.stem
        self.csv = CsvLog(csv_path, start_epoch=start_epoch)
        self.tensorboard = TensorBoardLog(tb_dir)

    def __enter__(self) -> RunLogs:
        return self

    def __exit__(self, *exc) -> None:
        self.tensorboard.close()

    def graph(self, model, samples: dict) -> None:
        """Record the network's graph, traced on one of the fixed samples (if any)."""
        if not samples:
            return
        example = next(iter(samples.values()))["image"][:1]
        device = next(model.parameters()).device
        self.tensorboard.graph(model, example.to(device))

    def record(self, event: Event) -> None:
        """Write what ``event`` holds for the logs: an epoch's row, scalars and samples."""
        if not isinstance(event, EpochEnded):
            return
        self.csv.write(event)
        self.tensorboard.scalars(event)
        for split, images in event.samples.items():
            self.tensorboard.samples(f"samples/{split}", images, event.epoch)


def predict_samples(model, samples: dict, cfg: TrainConfig, device) -> dict[str, np.ndarray]:
    """Predictions on the fixed samples of each split, as :func:`sample_panels` rows."""
    import torch

    from napari_cellseg.models.registry import probabilities
    from napari_cellseg.training.inputs import to_device

    model.eval()
    panels = {}
    with torch.inference_mode():
        for split, batch in samples.items():
            batch = to_device(batch, device)
            objects, boundaries = probabilities(cfg, model(batch["image"]))
            centre = batch["image"][:, batch["image"].shape[1] // 2]
            maps = (centre, batch["objects"][:, 0], batch["boundaries"][:, 0], objects, boundaries)
            panels[split] = sample_panels(*(t.float().cpu().numpy() for t in maps))
    return panels
