"""A run's files: checkpoints (weights + yaml), the train state for resuming, and when a
run ends early (early stopping, divergence).

The model path holds the last weights; with validation data,
``<model>-best-val-loss.pt`` (the final model), ``-best-val-objects-iou.pt``,
``-best-val-boundaries-iou.pt`` and ``-best-val-ap.pt`` hold the best epochs by those
validation metrics (the last: the mean AP of the validation images' instances).
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from napari_cellseg.config import TrainConfig
from napari_cellseg.errors import ConfigError, TrainingDiverged
from napari_cellseg.model_file import model_yaml, yaml_beside

if TYPE_CHECKING:
    from napari_cellseg.training.inputs import TrainData

__all__ = [
    "BEST_CHECKPOINTS",
    "EarlyStopping",
    "DIVERGENCE_FACTOR",
    "check_divergence",
    "checkpoint_path",
    "train_state_path",
    "check_paths",
    "check_writable",
    "remove_leftovers",
    "read_train_state",
    "model_lock",
    "init_weights",
]

#: Checkpoints kept besides the last weights when there is validation data:
#: name suffix -> (validation metric, larger is better).
BEST_CHECKPOINTS = {
    "best-val-loss": ("loss", False),
    "best-val-objects-iou": ("objects_iou", True),
    "best-val-boundaries-iou": ("boundaries_iou", True),
    "best-val-ap": ("ap", True),
}


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


DIVERGENCE_FACTOR = 100.0
"""An epoch's training loss this many times the first batch's ends the run as diverged.

A learning rate far too high (``lr 1e6``: training loss 3e10, val loss 3e13 after an
epoch on the tests' data) was saved as the model before.  With lr 0.19-3.4 the training
loss stays at 0.3-1.4 (first batch 1.6) while the val loss spikes to 5e2-1e6 for an
epoch and recovers: the training loss is the sign of divergence."""

DIVERGENCE_FLOOR = 0.1
"""The first batch's loss counts as at least this: a first batch almost all ignored (a
review's objects not reviewed yet, blobs) has a loss near 0 (2.4e-4 in the review
benchmark), and a healthy epoch would then look hundreds of times larger."""


def check_divergence(
    train_loss: float, monitored: float, first: float | None, epoch: int, lr: float
) -> None:
    """Stop a run whose loss is not finite, or whose training loss grew
    :data:`DIVERGENCE_FACTOR` times above its first batch's (``first``): a validation loss
    alone may spike for an epoch while batch norm settles, and recover."""
    if math.isfinite(monitored) and math.isfinite(train_loss):
        if first is None or train_loss <= DIVERGENCE_FACTOR * max(first, DIVERGENCE_FLOOR):
            return
        loss, grown = train_loss, f" ({train_loss / first:.3g} times the first batch's)"
    else:
        loss, grown = (monitored if not math.isfinite(monitored) else train_loss), ""
    raise TrainingDiverged(
        f"The loss became {loss:.4g}{grown} in epoch {epoch + 1}: training diverged. "
        f"Lower the learning rate (setting 'lr', now {lr:g})."
    )


def checkpoint_path(model: str | Path, kind: str) -> Path:
    """``models/x.pt`` + ``best-val-loss`` -> ``models/x-best-val-loss.pt``; 'last' -> the model."""
    model = Path(model)
    return model if kind == "last" else model.with_name(f"{model.stem}-{kind}{model.suffix}")


def train_state_path(model: str | Path) -> Path:
    """Optimiser, scheduler, best values and early-stopping state of the last epoch."""
    model = Path(model)
    return model.with_name(f"{model.stem}-train-state.pt")


def read_train_state(model: str | Path, device) -> dict | None:
    """The train state of a run's last checkpoint, with that epoch's weights under
    ``model``; None when the run has none (a first run).

    The state is written before the weights, so a kill between them leaves the state
    and its own weights: a resumed run goes on exactly.

    Raises
    ------
    ConfigError
        When the model exists without a train state (a copied model): resuming would
        start from scratch and overwrite it.
    """
    import torch

    weights, state_file = Path(model), train_state_path(model)
    if state_file.is_file():
        state = torch.load(state_file, map_location=device)
        if "model" not in state:  # written by an earlier version, after the weights
            state["model"] = torch.load(weights, map_location=device)
        return state
    if weights.is_file():
        raise ConfigError(
            f"Setting 'resume': '{weights}' has no train state '{state_file.name}' beside "
            "it (a copied model, or a run stopped inside its first epoch), so training "
            "cannot continue where it stopped.  To train further from these weights, "
            f"give --init_model {yaml_beside(weights)} and a new --model."
        )
    return None


def remove_leftovers(model: str | Path) -> list[Path]:
    """Remove the temporary files that killed saves of this model left beside it.

    Files are written to a hidden ``.<name>.<random>.tmp`` and renamed when complete
    (:func:`~napari_cellseg.io_utils.atomic_write`); a kill in between leaves the temporary
    file.  Returns the files removed.
    """
    model = Path(model)
    names = [checkpoint_path(model, kind) for kind in ("last", *BEST_CHECKPOINTS)]
    names += [yaml_beside(path) for path in names] + [train_state_path(model)]
    names.append(model.with_name(f"{model.stem}-log.csv"))
    removed = []
    for name in names:
        for leftover in model.parent.glob(f".{name.name}.*.tmp"):
            leftover.unlink(missing_ok=True)
            removed.append(leftover)
    return removed


@contextlib.contextmanager
def model_lock(model: str | Path) -> Iterator[Path]:
    """Hold the model path for one training run: a second run to it is refused.

    The lock is a hidden file ``.<model>.lock`` beside the model naming the process and
    the machine that holds it; a lock whose process is gone (a killed run on this
    machine) is stale and taken over.

    Raises
    ------
    ConfigError
        When another live run holds the model path, naming it.
    """
    model = Path(model)
    lock = model.with_name(f".{model.name}.lock")
    me = f"{os.getpid()} {socket.gethostname()}"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = lock.read_text().split() if lock.is_file() else []
            if holder and _is_stale(holder):
                lock.unlink(missing_ok=True)
                continue
            pid, host = (holder + ["?", "?"])[:2]
            raise ConfigError(
                f"Another training run (process {pid} on {host}) is writing '{model}': wait "
                "for it or stop it, or give 'model' another name.  (If no such run exists, "
                f"delete '{lock}'.)"
            ) from None
        with os.fdopen(fd, "w") as fh:
            fh.write(me)
        break
    try:
        yield lock
    finally:
        if lock.is_file() and lock.read_text() == me:
            lock.unlink(missing_ok=True)


def _is_stale(holder: list[str]) -> bool:
    """Whether a lock's process (``pid host``) is gone: only decidable on its machine."""
    if len(holder) != 2 or holder[1] != socket.gethostname() or not holder[0].isdigit():
        return False
    try:
        os.kill(int(holder[0]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def check_writable(path: str | Path, setting: str) -> None:
    """Refuse a file path whose folder cannot be made or written, naming ``setting``.

    Raises
    ------
    ConfigError
        With the folder's error and the fix.
    """
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise ConfigError(
            f"Setting '{setting}' is '{path}' but its folder cannot be written "
            f"({exc.strerror}); choose a folder you can write to."
        ) from None


def check_paths(cfg: TrainConfig, data: TrainData | None) -> None:
    """Refuse a run without a writable .pt model path or without training data."""
    if not cfg.model:
        raise ConfigError(
            "Setting 'model' is empty: give the output path of the weights file, "
            "e.g. --model models/nuclei.pt."
        )
    if Path(cfg.model).is_dir():
        raise ConfigError(
            f"Setting 'model' is '{cfg.model}', a folder: give the path of the weights file "
            f"in it, e.g. '{Path(cfg.model) / 'nuclei.pt'}'."
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
    check_writable(cfg.model, "model")
    _check_log_paths(cfg)
    earlier = [p for p in (Path(cfg.model), yaml_beside(cfg.model)) if p.exists()]
    if earlier and not (cfg.resume or cfg.overwrite):
        raise ConfigError(
            f"'{earlier[0]}' holds a model trained earlier: give 'model' a new name, add "
            "--resume to continue that run, or --overwrite to replace it."
        )


def _check_log_paths(cfg: TrainConfig) -> None:
    """Refuse a CSV log or TensorBoard folder that cannot be written, before training."""
    if cfg.csv_log:
        if Path(cfg.csv_log).is_dir():
            raise ConfigError(
                f"Setting 'csv_log' is '{cfg.csv_log}', a folder: give a file name, e.g. "
                f"'{Path(cfg.csv_log) / 'log.csv'}'."
            )
        check_writable(cfg.csv_log, "csv_log")
        if Path(cfg.csv_log).exists() and not os.access(cfg.csv_log, os.W_OK):
            raise ConfigError(
                f"Setting 'csv_log' is '{cfg.csv_log}', a file you may not write to: give "
                "another file name."
            )
    if cfg.tb_dir:
        if Path(cfg.tb_dir).is_file():
            raise ConfigError(
                f"Setting 'tb_dir' is '{cfg.tb_dir}', a file: give a folder for TensorBoard."
            )
        check_writable(Path(cfg.tb_dir) / "events", "tb_dir")


def init_weights(cfg: TrainConfig) -> dict:
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
