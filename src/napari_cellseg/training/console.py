"""Training events on a terminal: a progress bar per epoch and one summary line per epoch."""

from __future__ import annotations

from collections.abc import Iterable

from napari_cellseg.training.events import (
    BatchEnded,
    EpochEnded,
    EpochStarted,
    Event,
    ModelsCompared,
    PostprocessTuned,
    TrainFinished,
    TrainStarted,
)


def format_epoch(event: EpochEnded, epochs: int) -> str:
    """``epoch 3/100  loss 0.412  val_loss 0.398  val_objects_iou 0.71 ...  lr 1e-03  12.3s``."""
    parts = [f"epoch {event.epoch + 1}/{epochs}", f"loss {event.train['loss']:.4f}"]
    parts += [
        f"val_{k} {v:.4f}"
        for k, v in event.val.items()
        if k.endswith(("loss", "iou")) or k in ("ap", "ap50")
    ]
    parts += [f"lr {event.lr:.0e}", f"{event.seconds:.1f}s"]
    return "  ".join(parts)


def print_training(events: Iterable[Event]) -> TrainFinished:
    """Consume training events, drawing progress with tqdm; return the final event."""
    from tqdm import tqdm

    bar, epochs, finished = None, 0, None
    for event in events:
        if isinstance(event, TrainStarted):
            epochs = event.epochs
            tqdm.write(
                f"training on {event.device}: {event.train_samples} samples per epoch, "
                f"{event.val_samples} for validation"
            )
            for note in event.notes:
                tqdm.write(note)
            if not event.val_samples:
                tqdm.write(
                    "no validation data: early stopping follows the training loss and the "
                    "last weights are the model (no best-val checkpoints)"
                )
        elif isinstance(event, EpochStarted):
            bar = tqdm(total=None, desc=f"epoch {event.epoch + 1}/{epochs}", leave=False)
        elif isinstance(event, BatchEnded):
            bar.total = event.batches
            bar.set_postfix(loss=f"{event.loss:.4f}", refresh=False)
            bar.update()
        elif isinstance(event, EpochEnded):
            bar.close()
            tqdm.write(format_epoch(event, epochs))
        elif isinstance(event, PostprocessTuned):
            tqdm.write(
                "segmentation settings tuned on the validation data: "
                f"{event.tuned.settings.describe()} -> mean AP {event.tuned.mean_ap:.3f}"
            )
        elif isinstance(event, ModelsCompared):
            tqdm.write(event.describe())
        elif isinstance(event, TrainFinished):
            if bar is not None:
                bar.close()
            finished = event
            tqdm.write(f"{event.reason}: model saved to {event.model_path}")
    return finished
