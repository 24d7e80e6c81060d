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

Checkpoints (:mod:`napari_cellseg.training.checkpoints`): with validation data the best
val-loss checkpoint is the final model; without, the last weights are.  Early stopping
follows the validation loss, or the training loss without validation data.  The CSV and
TensorBoard logs are written by :class:`~napari_cellseg.training.writers.RunLogs`, which
records the events this loop yields.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from napari_cellseg import __version__
from napari_cellseg.config import TrainConfig
from napari_cellseg.device import autocast, precision_name
from napari_cellseg.errors import ConfigError
from napari_cellseg.io_utils import atomic_write
from napari_cellseg.model_file import write_model
from napari_cellseg.segmentation.settings import SegmentationSettings
from napari_cellseg.segmentation.tuning import MIN_TUNING_OBJECTS, count_tuning_objects
from napari_cellseg.training.checkpoints import (
    BEST_CHECKPOINTS,
    EarlyStopping,
    check_divergence,
    check_paths,
    checkpoint_path,
    init_weights,
    model_lock,
    read_train_state,
    remove_leftovers,
    train_state_path,
)
from napari_cellseg.training.distributed import World, join
from napari_cellseg.training.events import (
    BatchEnded,
    CheckpointSaved,
    EpochEnded,
    EpochStarted,
    Event,
    TrainFinished,
    TrainStarted,
)
from napari_cellseg.training.inputs import (
    TrainData,
    load_stacks,
    make_loaders,
    median_side,
    seed_everything,
    to_device,
)
from napari_cellseg.training.schedule import make_scheduler
from napari_cellseg.training.scoring import InstanceScore, compare_models, tune_on_validation
from napari_cellseg.training.writers import predict_samples

__all__ = ["train", "run_training"]


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
        ``EpochEnded`` and ``CheckpointSaved`` per file written; ``PostprocessTuned``
        when the thresholds were tuned; ``TrainFinished`` last.  Under torchrun every
        process yields them (``BatchEnded.loss`` is that process's batch, the epoch
        metrics are those of all processes); ``PostprocessTuned`` comes from rank 0,
        which alone writes the files.
    """
    from napari_cellseg.training.writers import RunLogs

    check_paths(cfg, data)
    world = join(cfg.device)
    if not world.is_main:  # rank 0 alone locks the model path and writes the files
        yield from _Run(cfg, data, stop or threading.Event(), world).events()
        return
    with model_lock(cfg.model):
        remove_leftovers(cfg.model)
        run = _Run(cfg, data, stop or threading.Event(), world)
        with RunLogs(run.cfg, start_epoch=run.start_epoch) as logs:
            logs.graph(run.model, run.samples)
            for event in run.events():
                logs.record(event)
                yield event


class _Run:
    """One training run; ``events()`` drives it."""

    def __init__(
        self, cfg: TrainConfig, data: TrainData | None, stop: threading.Event, world: World
    ):
        import torch

        from napari_cellseg.models.registry import (
            build_model,
            check_training_memory,
            prepare_model,
        )

        self.cfg = dataclasses.replace(cfg, world_size=world.size)
        self.stop, self.world, self.device = stop, world, world.device
        seed_everything(cfg.seed)
        train_stacks, val_stacks, self.notes = load_stacks(cfg, data)
        # self.model is the network (saved, validated); self.train_model trains it (DDP)
        self.model = prepare_model(build_model(cfg), self.device)
        check_training_memory(self.model, cfg, self.device)
        if cfg.init_model:
            self.model.load_state_dict(init_weights(cfg))
        self.train_model = world.wrap(self.model, sync_bn=cfg.sync_bn)
        self.train_loader, self.val_loader, self.samples = make_loaders(
            cfg, train_stacks, val_stacks, world
        )
        self.val_stacks = val_stacks
        self.record = {"train_image_side": median_side(train_stacks)}
        self.score = InstanceScore(cfg, val_stacks, self.device, self.record)
        self.notes += self.score.notes
        self.tune = cfg.tune_postprocess and bool(val_stacks)
        if self.tune and count_tuning_objects(val_stacks, cfg.blob_label) < MIN_TUNING_OBJECTS:
            self.tune = False
            self.notes.append(
                f"The validation data holds fewer than {MIN_TUNING_OBJECTS} objects: too few "
                "to tune the segmentation settings on, so the model keeps "
                f"{SegmentationSettings.of(cfg).describe()}.  Give more validation data to "
                "tune them."
            )
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.scheduler = make_scheduler(cfg, self.optimizer)
        self.start_epoch = 0
        self.best: dict[str, float] = {}  # best validation value of each BEST_CHECKPOINTS metric
        self.early_stopping = EarlyStopping(cfg.early_stop_min_delta, cfg.early_stop_patience)
        self.minutes = 0.0  # training time so far, resumed runs included
        self.first_loss: float | None = None  # of the run's first batch: divergence test
        self.ending: str | None = None  # why the run ends after this epoch, kept in the state
        if cfg.resume:
            self._resume()

    # --- the loop -------------------------------------------------------------------------

    def events(self) -> Iterator[Event]:
        """The run's events (see :func:`train`)."""
        cfg = self.cfg
        yield TrainStarted(
            epochs=cfg.epochs,
            batches_per_epoch=len(self.train_loader),
            train_samples=len(self.train_loader.dataset),
            val_samples=len(self.val_loader.dataset) if self.val_loader else 0,
            device=f"{self.device} ({precision_name(self.device, cfg.mixed_precision)})",
            start_epoch=self.start_epoch,
            notes=tuple(self.notes),
        )
        reason, epoch = self.ending or "completed", self.start_epoch - 1
        clock = time.monotonic()
        for epoch in range(self.start_epoch, cfg.epochs if not self.ending else 0):
            yield EpochStarted(epoch)
            started = time.perf_counter()
            train_metrics = yield from self._train_epoch(epoch)
            if train_metrics is None:
                reason = "stopped"
                yield self._save("last", epoch)
                break
            val_metrics = self._validate() if self.val_loader else {}
            if self.score:
                val_metrics.update(self._instance_score(time.perf_counter() - started))
            monitored = val_metrics or train_metrics
            check_divergence(
                train_metrics["loss"], monitored["loss"], self.first_loss, epoch, cfg.lr
            )
            self.minutes += self._mean_over_ranks(time.monotonic() - clock) / 60
            clock = time.monotonic()
            ended = self._end_epoch(epoch, train_metrics, val_metrics, started)
            bests = self._new_bests(val_metrics)
            # logged before the checkpoint: a kill in between trains the epoch again, and
            # the resumed log replaces its row
            yield ended
            for kind in bests:
                yield self._save(kind, epoch)
            yield self._save("last", epoch)  # with self.ending: a resumed run ends at once
            if self.ending:
                reason = self.ending
                break
            if self._stop_requested():
                reason = "stopped"
                break
        model_path = (
            checkpoint_path(cfg.model, "best-val-loss") if "loss" in self.best else Path(cfg.model)
        )
        if reason != "stopped":
            yield from self._after_training(model_path)
        yield TrainFinished(
            reason=reason, epochs_run=epoch + 1, model_path=str(model_path), best=dict(self.best)
        )

    def _end_epoch(self, epoch: int, train_metrics: dict, val_metrics: dict, started: float):
        """Step the schedule, decide whether the run ends (``self.ending``: early stopping
        or the time limit), and return the epoch's event."""
        monitored = val_metrics or train_metrics
        if self.cfg.lr_schedule == "plateau":
            self.scheduler.step(monitored["loss"])
        else:
            self.scheduler.plan(epoch + 1, self.minutes)
        if self.early_stopping.update(monitored["loss"]):
            self.ending = "early_stopping"
        elif 0 < self.cfg.max_minutes <= self.minutes:
            self.ending = "time_limit"
        return EpochEnded(
            epoch=epoch,
            train=train_metrics,
            val=val_metrics,
            lr=self.optimizer.param_groups[0]["lr"],
            seconds=time.perf_counter() - started,
            samples=self._sample_panels(),
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
            if self.first_loss is None:  # the same on every rank: their mean
                self.first_loss = self._mean_over_ranks(loss.item())
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

    def _instance_score(self, epoch_seconds: float) -> dict[str, float]:
        """The validation instances' ``ap`` and ``ap50``: rank 0's, on every rank."""
        import torch

        score = self.score(self.model, epoch_seconds) if self.world.is_main else {}
        values = [score.get("ap", 0.0), score.get("ap50", 0.0)]
        total = self.world.sum(torch.tensor(values, dtype=torch.float64).to(self.device))
        return {"ap": float(total[0]), "ap50": float(total[1])}

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
        return to_device(batch, self.device)

    def _sample_panels(self) -> dict[str, np.ndarray]:
        """Predictions on the fixed samples (rank 0 only: it writes the logs)."""
        if not self.world.is_main:
            return {}
        return predict_samples(self.model, self.samples, self.cfg, self.device)

    # --- checkpoints ------------------------------------------------------------------------

    def _new_bests(self, val_metrics: dict[str, float]) -> list[str]:
        """Record the validation values that beat the best; return those checkpoints' kinds
        (none without validation data)."""
        kinds = []
        for kind, (name, larger) in BEST_CHECKPOINTS.items():
            value, best = val_metrics.get(name), self.best.get(name)
            if value is not None and (best is None or (value > best if larger else value < best)):
                self.best[name] = value
                kinds.append(kind)
        return kinds

    def _save(self, kind: str, epoch: int) -> CheckpointSaved:
        """Write weights + yaml for ``kind`` (and the resume state with 'last'), atomically:
        rank 0 writes, every rank returns the event."""
        path = checkpoint_path(self.cfg.model, kind)
        if self.world.is_main:
            self._write_checkpoint(path, kind, epoch)
        return CheckpointSaved(epoch=epoch, path=str(path), kind=kind)

    def _write_checkpoint(self, path: Path, kind: str, epoch: int) -> None:
        import torch

        state = self.model.state_dict()
        if kind == "last":  # the state first: resuming reads its weights, not the model's
            train_state = {
                "epoch": epoch,
                "model": state,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "best": self.best,
                "early_stopping": self.early_stopping.state(),
                "minutes": self.minutes,
                "ending": self.ending,
            }
            atomic_write(train_state_path(self.cfg.model), lambda tmp: torch.save(train_state, tmp))
        atomic_write(path, lambda tmp: torch.save(state, tmp))
        record = {
            **self.record,
            "epochs_trained": epoch + 1,
            "best": dict(self.best),
            "napari_cellseg_version": __version__,
        }
        write_model(self.cfg, path, record)

    def _after_training(self, model_path: Path) -> Iterator[Event]:
        """Rank 0 tunes the segmentation settings on the validation data and compares a
        fine-tuned model with its start; the other ranks wait."""
        if self.world.is_main:
            if self.tune:
                yield tune_on_validation(self.cfg, model_path, self.val_stacks, self.device)
            if self.cfg.init_model and self.score:
                yield compare_models(self.cfg, model_path, self.val_stacks, self.device)
        self.world.barrier()

    def _resume(self) -> None:
        """Load the last checkpoint's train state; every rank reads rank 0's files."""
        state = read_train_state(self.cfg.model, self.device)
        if state is not None:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.best = state["best"]
            self.early_stopping = dataclasses.replace(
                self.early_stopping, **state["early_stopping"]
            )
            self.minutes, self.ending = state["minutes"], state.get("ending")
            self.start_epoch = state["epoch"] + 1
        if not self.world.same(self.start_epoch):
            raise ConfigError(
                f"Not every process could read the checkpoint '{self.cfg.model}' to resume "
                "from: with several machines, put --model in a folder that every machine shares."
            )
