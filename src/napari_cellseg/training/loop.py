"""Training as a generator of events: every front end (CLI, napari, tuning) drives the same loop.

>>> for event in train(cfg):          # doctest: +SKIP
...     print(event)

Setting the ``stop`` event ends the run after the current batch: the weights are
saved and :class:`~napari_cellseg.training.events.TrainFinished` (``reason="stopped"``)
is the last event.

Under ``torchrun`` every process runs this same loop on its share of each epoch
(DistributedDataParallel; see :mod:`napari_cellseg.training.distributed`): the epoch's
metrics are summed over the processes, so every process takes the same decisions, and
rank 0 alone writes the weights, the yaml and the logs.

Checkpoints: the model path holds the last weights; with validation data,
``<model>-best-val-loss.pt`` (the final model), ``-best-val-objects-iou.pt`` and
``-best-val-boundaries-iou.pt`` hold the best epochs by those validation metrics.  Without
validation data no best checkpoints are written: the last weights are the model.
Early stopping follows the validation loss, or the training loss without validation data.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_cellseg import __version__
from napari_cellseg.config import TrainConfig
from napari_cellseg.data.io import Stack, drop_unlabelled_slices, read_folder, split_stacks
from napari_cellseg.data.labels import count_objects
from napari_cellseg.device import autocast, precision_name
from napari_cellseg.errors import ConfigError, DataError, TrainingDiverged
from napari_cellseg.io_utils import atomic_write
from napari_cellseg.model_file import model_yaml, save_segmentation, write_model, yaml_beside
from napari_cellseg.segmentation.settings import SegmentationSettings
from napari_cellseg.segmentation.tuning import MIN_TUNING_OBJECTS
from napari_cellseg.training.distributed import World, join
from napari_cellseg.training.events import (
    BatchEnded,
    CheckpointSaved,
    EpochEnded,
    EpochStarted,
    Event,
    PostprocessTuned,
    TrainFinished,
    TrainStarted,
)
from napari_cellseg.training.schedule import CosineSchedule

__all__ = ["TrainData", "train", "run_training", "checkpoint_path", "EarlyStopping"]

#: Checkpoints kept besides the last weights when there is validation data:
#: name suffix -> (validation metric, larger is better).
BEST_CHECKPOINTS = {
    "best-val-loss": ("loss", False),
    "best-val-objects-iou": ("objects_iou", True),
    "best-val-boundaries-iou": ("boundaries_iou", True),
}


@dataclass
class TrainData:
    """In-memory training data (napari layers); ``val=None`` holds out ``val_fraction``."""

    train: list[Stack]
    val: list[Stack] | None = None


@dataclass
class EarlyStopping:
    """Stops after ``patience`` epochs in a row whose loss is not ``min_delta`` below the best."""

    min_delta: float
    patience: int
    best_loss: float = math.inf
    stale_epochs: int = 0

    def update(self, loss: float) -> bool:
        """Record an epoch's loss; return whether training should stop."""
        if loss < self.best_loss - self.min_delta:
            self.best_loss, self.stale_epochs = loss, 0
        else:
            self.stale_epochs += 1
        return self.stale_epochs >= self.patience

    def state(self) -> dict[str, float]:
        """Its progress, kept in the train state for ``resume``."""
        return {"best_loss": self.best_loss, "stale_epochs": self.stale_epochs}


def checkpoint_path(model: str | Path, kind: str) -> Path:
    """``models/x.pt`` + ``best-val-loss`` -> ``models/x-best-val-loss.pt``; 'last' -> the model."""
    model = Path(model)
    return model if kind == "last" else model.with_name(f"{model.stem}-{kind}{model.suffix}")


def train_state_path(model: str | Path) -> Path:
    """Optimiser, scheduler, best values and early-stopping state of the last epoch."""
    model = Path(model)
    return model.with_name(f"{model.stem}-train-state.pt")


def run_training(cfg: TrainConfig, **kwargs) -> TrainFinished:
    """Run :func:`train` to the end and return its final event."""
    event: Event | None = None
    for event in train(cfg, **kwargs):  # noqa: B007 - the last event is the result
        pass
    assert isinstance(event, TrainFinished)
    return event


def train(
    cfg: TrainConfig,
    *,
    data: TrainData | None = None,
    stop: threading.Event | None = None,
) -> Iterator[Event]:
    """Train the network ``cfg`` describes, yielding an event after each batch and epoch.

    Parameters
    ----------
    cfg
        Every setting of the run; it is saved as the model's yaml.
    data
        In-memory data; when ``None`` the folders ``cfg.train_data``/``cfg.val_data`` are read.
    stop
        Set it (from any thread) to end the run after the current batch.  Under torchrun
        a stop asked for in any process stops every process.

    Yields
    ------
    Event
        ``TrainStarted``, then per epoch ``EpochStarted``, ``BatchEnded`` per batch,
        ``CheckpointSaved`` per file written and ``EpochEnded``; ``PostprocessTuned``
        when the thresholds were tuned; ``TrainFinished`` last.  Under torchrun every
        process yields them (``BatchEnded.loss`` is that process's batch, the epoch
        metrics are those of all processes); ``PostprocessTuned`` comes from rank 0,
        which alone writes the files.
    """
    run = _Run(cfg, data, stop or threading.Event(), join(cfg.device))
    yield from run.events()


class _Run:
    """One training run; ``events()`` drives it."""

    def __init__(
        self, cfg: TrainConfig, data: TrainData | None, stop: threading.Event, world: World
    ):
        import torch

        from napari_cellseg.models.registry import build_model, prepare_model

        _check_paths(cfg, data)
        self.cfg = dataclasses.replace(cfg, world_size=world.size)
        self.stop, self.world, self.device = stop, world, world.device
        _seed_everything(cfg.seed)
        train_stacks, val_stacks, self.notes = _load_stacks(cfg, data)
        # self.model is the network (saved, validated); self.train_model trains it (DDP)
        self.model = prepare_model(build_model(cfg), self.device)
        if cfg.init_model:
            self.model.load_state_dict(_init_weights(cfg))
        self.train_model = world.wrap(self.model, sync_bn=cfg.sync_bn)
        self.train_loader, self.val_loader, self.samples = _make_loaders(
            cfg, train_stacks, val_stacks, world
        )
        self.val_stacks = val_stacks
        self.tune = cfg.tune_postprocess and bool(val_stacks)
        if self.tune and _count_val_objects(val_stacks, cfg.blob_label) < MIN_TUNING_OBJECTS:
            self.tune = False
            self.notes.append(
                f"The validation data holds fewer than {MIN_TUNING_OBJECTS} objects: too few "
                "to tune the segmentation settings on, so the model keeps "
                f"{SegmentationSettings.of(cfg).describe()}.  Give more validation data to "
                "tune them."
            )
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.scheduler = _make_scheduler(cfg, self.optimizer)
        self.start_epoch = 0
        self.best: dict[str, float] = {}  # best validation value of each BEST_CHECKPOINTS metric
        self.early_stopping = EarlyStopping(cfg.early_stop_min_delta, cfg.early_stop_patience)
        self.minutes = 0.0  # training time so far, resumed runs included
        self.record = {"train_image_side": _median_side(train_stacks)}
        if cfg.resume:
            self._resume()

    # --- the loop -------------------------------------------------------------------------

    def events(self) -> Iterator[Event]:
        cfg = self.cfg
        logs = _Logs(cfg, append=self.start_epoch > 0) if self.world.is_main else None
        try:
            yield TrainStarted(
                epochs=cfg.epochs,
                batches_per_epoch=len(self.train_loader),
                train_samples=len(self.train_loader.dataset),
                val_samples=len(self.val_loader.dataset) if self.val_loader else 0,
                device=f"{self.device} ({precision_name(self.device, cfg.mixed_precision)})",
                start_epoch=self.start_epoch,
                notes=tuple(self.notes),
            )
            if logs:
                logs.graph(self.model, self.samples)
            reason, epoch = "completed", self.start_epoch - 1
            clock = time.monotonic()
            for epoch in range(self.start_epoch, cfg.epochs):
                yield EpochStarted(epoch)
                started = time.perf_counter()
                train_metrics = yield from self._train_epoch(epoch)
                if train_metrics is None:
                    reason = "stopped"
                    yield self._save("last", epoch)
                    break
                val_metrics = self._validate() if self.val_loader else {}
                monitored = val_metrics or train_metrics
                if not math.isfinite(monitored["loss"]):
                    raise TrainingDiverged(
                        f"The loss became {monitored['loss']} in epoch {epoch + 1}: training "
                        f"diverged. Lower the learning rate (setting 'lr', now {cfg.lr:g})."
                    )
                self.minutes += self._mean_over_ranks(time.monotonic() - clock) / 60
                clock = time.monotonic()
                if cfg.lr_schedule == "plateau":
                    self.scheduler.step(monitored["loss"])
                else:
                    self.scheduler.plan(epoch + 1, self.minutes)
                ended = EpochEnded(
                    epoch=epoch,
                    train=train_metrics,
                    val=val_metrics,
                    lr=self.optimizer.param_groups[0]["lr"],
                    seconds=time.perf_counter() - started,
                )
                if logs:
                    logs.epoch(ended, self._sample_panels())
                stalled = self.early_stopping.update(monitored["loss"])
                for kind in self._new_bests(val_metrics):
                    yield self._save(kind, epoch)
                yield self._save("last", epoch)
                yield ended
                if stalled:
                    reason = "early_stopping"
                    break
                if self._stop_requested():
                    reason = "stopped"
                    break
                if 0 < cfg.max_minutes <= self.minutes:
                    reason = "time_limit"
                    break
        finally:
            if logs:
                logs.close()
        model_path = (
            checkpoint_path(cfg.model, "best-val-loss") if "loss" in self.best else Path(cfg.model)
        )
        if self.tune and reason != "stopped":
            if self.world.is_main:
                yield self._tune_postprocess(model_path)
            self.world.barrier()
        yield TrainFinished(
            reason=reason, epochs_run=epoch + 1, model_path=str(model_path), best=dict(self.best)
        )

    def _train_epoch(self, epoch: int):
        """Yield ``BatchEnded`` per batch; return the epoch's metrics, or None when stopped."""
        import torch

        from napari_cellseg.models.registry import probabilities
        from napari_cellseg.training.losses import compute_loss
        from napari_cellseg.training.metrics import MetricAccumulator

        self.train_model.train()
        self.train_loader.sampler.set_epoch(epoch)
        self.train_loader.dataset.set_epoch(epoch)
        metrics, loss_sum, count = MetricAccumulator(), 0.0, 0
        batches = len(self.train_loader)
        cosine = self.cfg.lr_schedule == "cosine"
        for index, batch in enumerate(self.train_loader):
            if cosine:
                for group in self.optimizer.param_groups:
                    group["lr"] = self.scheduler.rate(epoch + (index + 1) / batches)
            batch = self._to_device(batch)
            with self._autocast():
                logits = self.train_model(batch["image"])
            loss, _ = compute_loss(self.cfg, logits, batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            size = batch["image"].shape[0]
            loss_sum += loss.item() * size
            count += size
            with torch.no_grad():
                metrics.update(*probabilities(self.cfg, logits.detach().float()), batch)
            yield BatchEnded(epoch=epoch, batch=index, batches=batches, loss=loss.item())
            if self._stop_requested():
                return None
        return self.world.reduce_metrics(metrics, loss_sum, count)

    def _validate(self) -> dict[str, float]:
        import torch

        from napari_cellseg.models.registry import probabilities
        from napari_cellseg.training.losses import compute_loss
        from napari_cellseg.training.metrics import MetricAccumulator

        self.world.broadcast_buffers(self.model)
        self.model.eval()
        metrics, loss_sum, count = MetricAccumulator(), 0.0, 0
        with torch.inference_mode():
            for batch in self.val_loader:
                batch = self._to_device(batch)
                with self._autocast():
                    logits = self.model(batch["image"]).float()
                loss, _ = compute_loss(self.cfg, logits, batch)
                size = batch["image"].shape[0]
                loss_sum += loss.item() * size
                count += size
                metrics.update(*probabilities(self.cfg, logits), batch)
        return self.world.reduce_metrics(metrics, loss_sum, count)

    def _mean_over_ranks(self, value: float) -> float:
        """The mean of ``value`` over the processes (the same on every rank)."""
        import torch

        total = self.world.sum(torch.tensor([value], dtype=torch.float64, device=self.device))
        return float(total[0]) / self.world.size

    def _autocast(self):
        return autocast(self.device, self.cfg.mixed_precision)

    def _stop_requested(self) -> bool:
        """Whether a stop was asked for, in this process or in any other."""
        return self.world.any(self.stop.is_set())

    def _to_device(self, batch: dict) -> dict:
        from napari_cellseg.models.registry import prepare_batch

        out = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        out["image"] = prepare_batch(out["image"], self.device)
        return out

    # --- checkpoints ------------------------------------------------------------------------

    def _new_bests(self, val_metrics: dict[str, float]) -> list[str]:
        """Record the validation values that beat the best; return those checkpoints' kinds.

        Without validation data (``val_metrics`` empty) there is no best checkpoint.
        """
        kinds = []
        for kind, (name, larger) in BEST_CHECKPOINTS.items():
            value, best = val_metrics.get(name), self.best.get(name)
            if value is not None and (best is None or (value > best if larger else value < best)):
                self.best[name] = value
                kinds.append(kind)
        return kinds

    def _save(self, kind: str, epoch: int) -> CheckpointSaved:
        """Write weights + yaml for ``kind`` (and the resume state with 'last'), atomically.

        Only rank 0 writes; every rank returns the event.
        """
        path = checkpoint_path(self.cfg.model, kind)
        if self.world.is_main:
            self._write_checkpoint(path, kind, epoch)
        return CheckpointSaved(epoch=epoch, path=str(path), kind=kind)

    def _write_checkpoint(self, path: Path, kind: str, epoch: int) -> None:
        import torch

        state = self.model.state_dict()
        atomic_write(path, lambda tmp: torch.save(state, tmp))
        record = {
            **self.record,
            "epochs_trained": epoch + 1,
            "best": dict(self.best),
            "napari_cellseg_version": __version__,
        }
        write_model(self.cfg, path, record)
        if kind == "last":
            train_state = {
                "epoch": epoch,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "best": self.best,
                "early_stopping": self.early_stopping.state(),
                "minutes": self.minutes,
            }
            atomic_write(train_state_path(self.cfg.model), lambda tmp: torch.save(train_state, tmp))

    def _tune_postprocess(self, model_path: Path) -> PostprocessTuned:
        """Tune the segmentation thresholds of the final model on the validation data."""
        from napari_cellseg.inference.predictor import load_model
        from napari_cellseg.segmentation.tuning import tune_postprocessing

        yaml_path = yaml_beside(model_path)
        predictor = load_model(yaml_path, device=str(self.device))
        maps = [predictor.predict(stack.image) for stack in self.val_stacks]
        tuned = tune_postprocessing(maps, self.val_stacks, ignore_label=self.cfg.blob_label)
        data = self.cfg.val_data or "held-out training data"
        save_segmentation(yaml_path, tuned.settings, mean_ap=tuned.mean_ap, data=data)
        return PostprocessTuned(path=str(yaml_path), tuned=tuned)

    def _resume(self) -> None:
        """Load the last checkpoint and training state; every rank reads rank 0's files."""
        import torch

        weights, state_file = Path(self.cfg.model), train_state_path(self.cfg.model)
        if weights.is_file() and state_file.is_file():
            self.model.load_state_dict(torch.load(weights, map_location=self.device))
            state = torch.load(state_file, map_location=self.device)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.best = state["best"]
            self.early_stopping = dataclasses.replace(
                self.early_stopping, **state["early_stopping"]
            )
            self.minutes = state["minutes"]
            self.start_epoch = state["epoch"] + 1
        if not self.world.same(self.start_epoch):
            raise ConfigError(
                f"Not every process could read the checkpoint '{weights}' to resume from: "
                "with several machines, put --model in a folder that every machine shares."
            )

    def _sample_panels(self) -> dict[str, np.ndarray]:
        """Predictions on the fixed TensorBoard samples, as side-by-side panels per split."""
        import torch

        from napari_cellseg.models.registry import probabilities
        from napari_cellseg.training.writers import sample_panels

        self.model.eval()
        panels = {}
        with torch.inference_mode():
            for split, batch in self.samples.items():
                batch = self._to_device(batch)
                objects, boundaries = probabilities(self.cfg, self.model(batch["image"]))
                centre = batch["image"][:, batch["image"].shape[1] // 2]
                panels[split] = sample_panels(
                    *(
                        t.float().cpu().numpy()
                        for t in (
                            centre,
                            batch["objects"][:, 0],
                            batch["boundaries"][:, 0],
                            objects,
                            boundaries,
                        )
                    )
                )
        return panels


class _Logs:
    """The CSV log and TensorBoard writer of a run (paths from the settings)."""

    def __init__(self, cfg: TrainConfig, *, append: bool) -> None:
        from napari_cellseg.training.writers import CsvLog, TensorBoardLog

        model = Path(cfg.model)
        csv_path = cfg.csv_log or model.with_name(f"{model.stem}-log.csv")
        tb_dir = cfg.tb_dir or model.parent / "tensorboard" / model.stem
        self.csv = CsvLog(csv_path, append=append)
        self.tensorboard = TensorBoardLog(tb_dir)

    def graph(self, model, samples: dict) -> None:
        example = next(iter(samples.values()))["image"][:1]
        device = next(model.parameters()).device
        self.tensorboard.graph(model, example.to(device))

    def epoch(self, event: EpochEnded, panels: dict[str, np.ndarray]) -> None:
        self.csv.write(event)
        self.tensorboard.scalars(event)
        for split, images in panels.items():
            self.tensorboard.samples(f"samples/{split}", images, event.epoch)

    def close(self) -> None:
        self.tensorboard.close()


# --- set-up helpers --------------------------------------------------------------------------


def _check_paths(cfg: TrainConfig, data: TrainData | None) -> None:
    if not cfg.model:
        raise ConfigError(
            "Setting 'model' is empty: give the output path of the weights file, "
            "e.g. --model models/nuclei.pt."
        )
    if Path(cfg.model).suffix != ".pt":
        raise ConfigError(
            f"Setting 'model' is '{cfg.model}': the weights file must end in .pt "
            f"(e.g. '{Path(cfg.model).with_suffix('.pt')}')."
        )
    if data is None and not cfg.train_data:
        raise ConfigError(
            "Setting 'train_data' is empty: give a folder holding images/ and labels/."
        )
    folder = Path(cfg.model).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise ConfigError(
            f"Setting 'model' is '{cfg.model}' but its folder cannot be written "
            f"({exc.strerror}); choose a folder you can write to."
        ) from None


def _init_weights(cfg: TrainConfig) -> dict:
    """The weights of the model ``cfg.init_model`` names, checked to fit ``cfg``'s network.

    Raises ConfigError when the model cannot be read, when its network settings differ
    from the run's, or when the run would overwrite the files it starts from.
    """
    from napari_cellseg.inference.predictor import load_model

    yaml_path = model_yaml(cfg.init_model)
    if not yaml_path.is_file():
        missing = "which" if str(yaml_path) == cfg.init_model else f"but '{yaml_path}'"
        raise ConfigError(
            f"Setting 'init_model' is '{cfg.init_model}', {missing} does not exist; give the "
            ".yaml of a trained model (written next to its .pt)."
        )
    try:
        start = load_model(yaml_path, device="cpu")
    except ConfigError as exc:
        raise ConfigError(f"Setting 'init_model': {exc}") from None
    outputs = [checkpoint_path(cfg.model, kind) for kind in ("last", *BEST_CHECKPOINTS)]
    outputs = {p.resolve() for path in outputs for p in (path, yaml_beside(path))}
    if {yaml_path.resolve(), start.model_file.weights.resolve()} & outputs:
        raise ConfigError(
            f"Settings 'model' ('{cfg.model}') and 'init_model' ('{cfg.init_model}') name the "
            "same files: training would overwrite the model it starts from; give 'model' a "
            "new name."
        )
    keys = ["architecture", "channels", "start_filters"]
    keys.append("unet_levels" if cfg.architecture == "unet" else "dcan_final_act")
    differ = [
        f"{key} {getattr(cfg, key)} (the model's: {getattr(start.config, key)})"
        for key in keys
        if getattr(cfg, key) != getattr(start.config, key)
    ]
    if differ:
        raise ConfigError(
            f"Setting 'init_model' is '{cfg.init_model}', a network other than the one this "
            f"run describes: {', '.join(differ)}.  Load the model's settings (--args_load_path "
            f"{yaml_path}, or Load settings in napari) or set these to the model's."
        )
    return start.model.state_dict()


def _make_scheduler(cfg: TrainConfig, optimizer):
    """``plateau``: lr / 10 after ``lr_patience`` epochs without progress (the seed's);
    ``cosine``: from ``lr`` down to ``lr / 100`` over the epochs or the time budget
    (:mod:`napari_cellseg.training.schedule`; suits a fixed budget)."""
    from torch.optim import lr_scheduler

    if cfg.lr_schedule == "plateau":
        return lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=0.1, patience=cfg.lr_patience
        )
    return CosineSchedule(cfg.lr, cfg.epochs, cfg.max_minutes)


def _seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _load_stacks(
    cfg: TrainConfig, data: TrainData | None
) -> tuple[list[Stack], list[Stack], list[str]]:
    """Training and validation stacks, and notes on the slices left out (no labels)."""
    train_stacks = data.train if data else read_folder(cfg.train_data)
    train_stacks, notes = drop_unlabelled_slices(train_stacks)
    if data and data.val is not None:
        val_stacks = data.val
    elif not data and cfg.val_data:
        val_stacks = read_folder(cfg.val_data)
    elif cfg.val_fraction > 0:
        train_stacks, val_stacks = split_stacks(train_stacks, cfg.val_fraction, cfg.seed)
    else:
        val_stacks = []
    if not train_stacks:
        raise DataError("No training images: add images to the training data.")
    _check_objects(train_stacks, cfg.blob_label)
    if cfg.blob_label is not None:
        notes += _blob_notes(train_stacks, cfg.blob_label)
    val_stacks, val_notes = drop_unlabelled_slices(val_stacks)
    return train_stacks, val_stacks, notes + [f"Validation {n}" for n in val_notes]


def _blob_notes(stacks: list[Stack], blob_label: int) -> list[str]:
    """Where the training labels hold blobs, and how much (a cell painted 1 shows here)."""
    blob = [int(np.count_nonzero(stack.labels == blob_label)) for stack in stacks]
    where = [stack.name for stack, pixels in zip(stacks, blob, strict=True) if pixels]
    if not where:
        return []
    share = 100 * sum(blob) / sum(int(np.count_nonzero(stack.labels)) for stack in stacks)
    named = ", ".join(f"'{name}'" for name in where)
    if len(where) > 3:
        named = f"{len(where)} of {len(stacks)} images"
    return [
        f"Blobs (label {blob_label}, ignored by the loss) in {named}: {share:.1f} % of the "
        "labelled pixels."
    ]


def _count_val_objects(stacks: list[Stack], blob_label: int | None) -> int:
    """Objects of the validation stacks, each slice's counted on its own."""
    return sum(count_objects(page, blob_label) for stack in stacks for page in stack.labels)


def _check_objects(stacks: list[Stack], blob_label: int | None) -> None:
    """Refuse training labels without a single object (all 0, or all blob)."""
    if any(count_objects(stack.labels, blob_label) for stack in stacks):
        return
    names = ", ".join(f"'{stack.name}'" for stack in stacks[:3])
    names += ", ..." if len(stacks) > 3 else ""
    if blob_label is not None and any((stack.labels == blob_label).any() for stack in stacks):
        raise DataError(
            f"The training labels ({names}) hold no objects: every labelled pixel has the "
            f"value {blob_label}, which marks blobs (regions the loss ignores).  Give each "
            f"object its own value from {blob_label + 1} up (in napari: set the label to "
            f"{blob_label + 1} in the layer controls, then press M for each next object), or "
            f"set blob_label to none if {blob_label} marks cells."
        )
    raise DataError(
        f"The training labels ({names}) are empty (all 0): annotate some objects first."
    )


def _median_side(stacks: list[Stack]) -> float:
    """Median image side of the training data (prediction rescales to the trained scale)."""
    return float(np.median([np.sqrt(s.image.shape[-2] * s.image.shape[-1]) for s in stacks]))


def _make_loaders(
    cfg: TrainConfig, train_stacks: list[Stack], val_stacks: list[Stack], world: World
):
    """DataLoaders for training and validation, and fixed sample batches for TensorBoard.

    Each rank loads its share: in training a shuffled ``1 / world.size`` of the items
    (the order of epoch ``e`` is drawn from ``cfg.seed + e``; the share is padded with a
    few repeated items to be the same size on every rank), in validation every
    ``world.size``-th item, so that each item is validated exactly once.
    """
    import torch
    from torch.utils.data import DataLoader, DistributedSampler

    from napari_cellseg.data.dataset import SegmentationDataset
    from napari_cellseg.device import default_num_workers

    workers = default_num_workers(cfg.num_workers)
    train_set = SegmentationDataset(train_stacks, cfg, train=True)
    sampler = DistributedSampler(
        train_set, num_replicas=world.size, rank=world.rank, shuffle=True, seed=cfg.seed
    )
    train_loader = DataLoader(
        train_set,
        batch_size=cfg.batch,
        sampler=sampler,
        drop_last=len(sampler) > cfg.batch,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
    )
    samples = {"train": _sample_batch(SegmentationDataset(train_stacks, cfg, train=False), cfg)}
    val_loader = None
    if val_stacks:
        val_set = SegmentationDataset(val_stacks, cfg, train=False)
        val_loader = DataLoader(
            val_set,
            batch_size=cfg.batch,
            sampler=range(world.rank, len(val_set), world.size),
            num_workers=workers,
        )
        samples["val"] = _sample_batch(val_set, cfg)
    return train_loader, val_loader, samples


def _sample_batch(dataset, cfg: TrainConfig) -> dict:
    """The first ``tb_samples`` items of a dataset as one batch."""
    from torch.utils.data import default_collate

    count = max(1, min(cfg.tb_samples, len(dataset)))
    return default_collate([dataset[i] for i in range(count)])
