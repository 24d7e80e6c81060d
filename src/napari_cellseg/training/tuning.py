"""Hyper-parameter search with Optuna: learning rate, batch size, dropout and loss weights.

A study is a set of trials; each trial trains a network (:func:`napari_cellseg.training.loop.train`)
with the settings the search proposes and reports its val score after every epoch.

- **Learning rate** (and, in ``tune_all``, dropout and loss weights): Optuna's TPE
  sampler, log-uniform over ``[lr_min, lr_max]``.  The first third of the trials (3 to
  10) sample at random over the whole range (coarse), the rest concentrate where the
  best trials lie (fine).  The sampler's randomness depends on ``seed`` and the trial
  number only: the same seed proposes the same settings in the same order, and workers
  that join one study propose different settings.
- **Batch size** (``tune_batch``): powers of two from ``batch_min`` up to ``batch_max``,
  smallest first, one trial each.  A size that runs out of memory is recorded as
  ``infeasible`` and no larger size is tried (``tune_all`` narrows its range the same way).
- **Pruning**: Optuna's :class:`~optuna.pruners.MedianPruner` stops a trial whose best
  score so far is worse than the median of the finished trials at the same epoch.
  Unlike successive halving / Hyperband it has no budget to tune besides a few startup
  trials and warm-up epochs, suits the small studies (10-30 trials) and the early-stopped,
  variable-length trainings run here, and prunes the same way in every worker.
- **Divergence**: a trial whose loss becomes NaN/inf, or whose training loss grows a
  hundredfold (:data:`~napari_cellseg.training.checkpoints.DIVERGENCE_FACTOR`), is stopped and
  recorded as ``diverged``; to Optuna it is a pruned trial with a NaN score, because TPE learns from
  pruned trials (ranking a NaN worst) but ignores failed ones, and would keep proposing
  learning rates that diverge.
- **Storage**: an SQLite file ``<output>/study.db`` by default; running the command again
  resumes the study, ``trials`` being the total wanted.  Several workers join one study
  through a shared ``storage``: processes of one machine through the SQLite file (writes
  are a few per epoch; a 60 s busy timeout makes a writer wait for the lock instead of
  failing with "database is locked"), several machines through a database server URL, or
  a journal file in a network folder (Optuna's file-lock journal, safe over NFS where
  SQLite is not).  Database storages keep a heartbeat of each running trial: the trial
  of a killed worker is marked interrupted 30 s after its last beat and run again.

Outputs in ``output``: ``trials/trial-<n>/`` (model files, CSV and TensorBoard logs of
each trial; only the best trial keeps its ``.pt`` files unless ``keep_all``),
``trials.csv``, ``trials.png`` and ``best.yaml`` (every training setting of the best
trial, for ``train --args_load_path best.yaml``).
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable
from pathlib import Path

import optuna  # noqa: TID253 - this module is the search; only the tuning entry points import it
from optuna.trial import FrozenTrial, TrialState  # noqa: TID253

from napari_cellseg.config import TrainConfig, TuneConfig
from napari_cellseg.device import is_out_of_memory
from napari_cellseg.errors import ConfigError, TrainingDiverged
from napari_cellseg.training.events import CheckpointSaved, EpochEnded, TrainFinished
from napari_cellseg.training.tuning_report import Reports, TrialResult, TuneResult, trial_dir
from napari_cellseg.training.tuning_study import open_study

__all__ = ["TrialResult", "TuneResult", "tune", "batch_sizes"]

DROPOUT = (0.0, 0.5)
"""Range of ``dropout`` in ``tune_all``."""
BND_WEIGHT = (0.1, 0.9)
"""Range of DCAN's ``bnd_weight`` in ``tune_all``; ``obj_weight = 1 - bnd_weight`` keeps the
loss scale of the default 0.5 / 0.5, so the learning rate keeps its meaning."""
UNET_BND_CLASS_WEIGHT = (1.0, 20.0)
"""Range (log) of U-Net's ``unet_bnd_class_weight`` in ``tune_all``."""

#: Trial states (``TrialResult.state``) that count towards ``trials``; "interrupted"
#: (stopped, Ctrl-C, killed worker) and "error" trials are run again.
COUNTED = ("running", "complete", "pruned", "diverged", "infeasible")
_RESULT = "result"  # trial user attribute: state, reason, value, val, epochs, model
_SETTINGS = "settings"  # trial user attribute: the training settings the trial used


def tune(
    tune_cfg: TuneConfig,
    cfg: TrainConfig,
    *,
    stop: threading.Event | None = None,
    on_trial: Callable[[TrialResult], None] | None = None,
) -> TuneResult:
    """Run (or resume, or join) a study until it holds ``tune_cfg.trials`` trials.

    Parameters
    ----------
    tune_cfg
        What to search, where to store the study and its outputs.
    cfg
        Every other training setting, held fixed; ``seed`` also seeds the search.
    stop
        Set it (from any thread) to end the running trial after its current batch
        (recorded ``interrupted``, run again on resume) and return.
    on_trial
        Called with each trial this process finishes.

    Raises
    ------
    ConfigError
        Bad search ranges, no validation data, a storage that cannot be opened, a study
        of the same name made with other settings, or no batch size that fits in memory.
    KeyboardInterrupt
        Passed on after the running trial is recorded ``interrupted`` and the reports
        are written.
    """
    from napari_cellseg.data.io import read_folder
    from napari_cellseg.training.inputs import TrainData

    search = _Search(tune_cfg, cfg)
    output = Path(tune_cfg.output)
    data = TrainData(
        train=read_folder(cfg.train_data),
        val=read_folder(cfg.val_data) if cfg.val_data else None,
    )
    study = open_study(tune_cfg, cfg, search)
    objective = _Objective(search, cfg, data, output, stop or threading.Event())
    reports = Reports(
        cfg,
        output,
        params=search.params,
        metric=search.metric,
        maximize=search.direction == "maximize",
        keep_all=tune_cfg.keep_all,
    )

    def write(trials: list[FrozenTrial], plot: bool) -> TuneResult:
        return reports.write([_result(t) for t in trials if _state(t) != "surplus"], plot=plot)

    def finished(study: optuna.Study, trial: FrozenTrial) -> None:
        write(study.get_trials(deepcopy=False), plot=False)
        if on_trial and _state(trial) != "surplus":
            on_trial(_result(trial))

    try:
        while (
            not objective.stop.is_set() and search.remaining(study.get_trials(deepcopy=False)) > 0
        ):
            study.optimize(objective, n_trials=1, callbacks=[finished])
    finally:
        trials = study.get_trials(deepcopy=False)
        result = write(trials, plot=True)
    if not search.feasible_batches(trials):
        raise ConfigError(
            f"Batch size {search.batches[0]} runs out of memory on device '{cfg.device}': "
            "lower the batch size (--batch, --batch_min), im_dim or start_filters."
        )
    return result


def batch_sizes(low: int, high: int) -> list[int]:
    """Powers of two from ``low`` up to ``high``: ``batch_sizes(2, 20) == [2, 4, 8, 16]``."""
    sizes = [1 << k for k in range(high.bit_length()) if low <= 1 << k <= high]
    if not sizes:
        raise ConfigError(
            f"No power of two lies between batch_min ({low}) and batch_max ({high}); "
            "widen the range."
        )
    return sizes


# --- the search space ---------------------------------------------------------------------


def _state(trial: FrozenTrial) -> str:
    if trial.state in (TrialState.RUNNING, TrialState.WAITING):
        return "running"
    # a FAIL without a result: its worker was killed and the heartbeat marked it
    return trial.user_attrs.get(_RESULT, {}).get("state", "interrupted")


def _counted(trials: list[FrozenTrial], before: int | None = None) -> list[FrozenTrial]:
    return [t for t in trials if _state(t) in COUNTED and (before is None or t.number < before)]


class _Search:
    """The settings a mode searches, how a trial is scored, and how many trials remain."""

    def __init__(self, tune_cfg: TuneConfig, cfg: TrainConfig) -> None:
        _check(tune_cfg, cfg)
        self.tune_cfg, self.mode = tune_cfg, tune_cfg.mode
        self.batches = (
            [cfg.batch]
            if self.mode == "tune_lr"
            else batch_sizes(tune_cfg.batch_min, tune_cfg.batch_max)
        )
        self.params = {
            "tune_lr": ["lr"],
            "tune_batch": ["batch"],
            "tune_all": ["lr", "batch", "dropout"]
            + (
                ["bnd_weight", "obj_weight"]
                if cfg.architecture == "dcan"
                else ["unet_bnd_class_weight"]
            ),
        }[self.mode]
        self.metric = "mean_iou" if self.mode == "tune_all" else "loss"
        self.direction = "maximize" if self.metric == "mean_iou" else "minimize"

    def score(self, val: dict[str, float]) -> float:
        """The value the study optimises, from an epoch's val metrics."""
        if self.metric == "mean_iou":
            return (val["objects_iou"] + val["boundaries_iou"]) / 2
        return val["loss"]

    def better(self, a: float, b: float | None) -> bool:
        return b is None or (a > b if self.direction == "maximize" else a < b)

    def feasible_batches(self, trials: list[FrozenTrial]) -> list[int]:
        """Batch sizes smaller than every size that ran out of memory."""
        oom = [t.user_attrs[_RESULT]["batch"] for t in trials if _state(t) == "infeasible"]
        return [b for b in self.batches if b < min(oom, default=math.inf)]

    def remaining(self, trials: list[FrozenTrial]) -> int:
        """Trials still to start (over every worker)."""
        wanted = self.tune_cfg.trials - len(_counted(trials))
        if self.mode == "tune_batch":
            return min(wanted, len(self._free_batches(trials, math.inf)))
        return wanted if self.feasible_batches(trials) else 0

    def suggest(self, trial: optuna.Trial) -> dict | None:
        """The settings of a new trial; None when the study already has all its trials."""
        trials = trial.study.get_trials(deepcopy=False)
        if len(_counted(trials, before=trial.number)) >= self.tune_cfg.trials:
            return None
        if self.mode == "tune_batch":
            free = self._free_batches(trials, trial.number)
            return {"batch": free[0]} if free else None
        batches = self.feasible_batches(trials)
        if not batches:
            return None
        settings = {
            "lr": trial.suggest_float("lr", self.tune_cfg.lr_min, self.tune_cfg.lr_max, log=True)
        }
        if self.mode == "tune_all":
            exponent = trial.suggest_int(
                "log2_batch", batches[0].bit_length() - 1, batches[-1].bit_length() - 1
            )
            settings["batch"] = 1 << exponent
            settings["dropout"] = trial.suggest_float("dropout", *DROPOUT)
            if "bnd_weight" in self.params:
                settings["bnd_weight"] = trial.suggest_float("bnd_weight", *BND_WEIGHT)
                settings["obj_weight"] = 1.0 - settings["bnd_weight"]
            else:
                settings["unet_bnd_class_weight"] = trial.suggest_float(
                    "unet_bnd_class_weight", *UNET_BND_CLASS_WEIGHT, log=True
                )
        return settings

    def _free_batches(self, trials: list[FrozenTrial], before: float) -> list[int]:
        """tune_batch: feasible sizes no earlier trial took, minus those it is taking."""
        earlier = _counted(trials, before=before)
        taken = {t.user_attrs[_SETTINGS]["batch"] for t in earlier if _SETTINGS in t.user_attrs}
        pending = sum(_SETTINGS not in t.user_attrs for t in earlier)
        return [b for b in self.feasible_batches(trials) if b not in taken][pending:]


def _check(tune_cfg: TuneConfig, cfg: TrainConfig) -> None:
    if Path(tune_cfg.output).is_file():
        raise ConfigError(
            f"Setting 'output' is '{tune_cfg.output}', a file: give a folder for the study "
            "(it is made if missing)."
        )
    if not cfg.train_data:
        raise ConfigError(
            "Setting 'train_data' is empty: give the training data folder (images/ + labels/)."
        )
    if not cfg.val_data and cfg.val_fraction <= 0:
        raise ConfigError(
            "Tuning scores trials on validation data: give --val_data, or a val_fraction > 0."
        )


# --- the study ------------------------------------------------------------------------------


# --- one trial ------------------------------------------------------------------------------


class _Objective:
    """Trains one trial and returns its score (Optuna's objective function)."""

    def __init__(self, search: _Search, cfg: TrainConfig, data, output: Path, stop) -> None:
        self.search, self.cfg, self.data, self.output, self.stop = search, cfg, data, output, stop

    def __call__(self, trial: optuna.Trial) -> float:
        from napari_cellseg.training.loop import train

        settings = self.search.suggest(trial)
        if settings is None:
            # Another worker started the last trial between this worker's count and its
            # new trial (Optuna cannot count and create at once): the extra trial is
            # recorded as failed, "surplus", and left out of counts and reports.
            trial.study.stop()
            return _record(trial, "surplus", "the study already had all its trials")
        trial.set_user_attr(_SETTINGS, settings)
        model = trial_dir(self.output, trial.number) / "model.pt"
        cfg = dataclasses.replace(
            self.cfg,
            **settings,
            model=str(model),
            tb_dir="",
            csv_log="",
            tune_postprocess=False,
            resume=False,
            args_load_path="",
        )
        best: dict = {"epochs": 0, "value": None, "val": {}}
        events = train(cfg, data=self.data, stop=self.stop)
        prune = False
        try:
            for event in events:
                if isinstance(event, EpochEnded):
                    prune = self._epoch(trial, event, best)
                elif isinstance(event, CheckpointSaved) and event.kind == "last" and prune:
                    raise optuna.TrialPruned()  # once the epoch's files are written
                elif isinstance(event, TrainFinished):
                    finished = event
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            _record(trial, "interrupted", "interrupted (Ctrl-C)", **best)
            raise
        except Exception as exc:
            if isinstance(exc, TrainingDiverged):
                trial.report(math.nan, best["epochs"])
                reason = f"loss diverged in epoch {best['epochs'] + 1}"
                _record(trial, "diverged", reason, **best)
                raise optuna.TrialPruned(reason) from None
            if is_out_of_memory(exc):
                _free_device_memory()
                reason = f"batch {cfg.batch} ran out of memory"
                return _record(trial, "infeasible", reason, batch=cfg.batch, **best)
            _record(trial, "error", str(exc), **best)
            raise
        finally:
            events.close()
        if finished.reason == "stopped":
            return _record(trial, "interrupted", "stopped", **best)
        reason = finished.reason.replace("_", " ")
        _record(trial, "complete", reason, model=finished.model_path, **best)
        return best["value"]

    def _epoch(self, trial: optuna.Trial, event: EpochEnded, best: dict) -> bool:
        """Report the epoch's score; return whether the trial is pruned (then recorded)."""
        if not event.val:
            raise ConfigError(
                "The validation set is empty: give --val_data or more training images."
            )
        value = self.search.score(event.val)
        trial.report(value, event.epoch)
        best["epochs"] = event.epoch + 1
        if self.search.better(value, best["value"]):
            best.update(value=value, val=dict(event.val))
        if not trial.should_prune():
            return False
        _record(
            trial,
            "pruned",
            f"pruned after epoch {event.epoch + 1}: behind the median of earlier trials",
            **best,
        )
        return True


def _record(trial: optuna.Trial, state: str, reason: str, **facts) -> float:
    """Store how a trial ended (state, reason, epochs, value, val, model, ...).

    Returns NaN: the objective value Optuna records as a failed trial.
    """
    trial.set_user_attr(_RESULT, {"state": state, "reason": reason, **facts})
    return math.nan


def _free_device_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _result(trial: FrozenTrial) -> TrialResult:
    info = trial.user_attrs.get(_RESULT, {})
    return TrialResult(
        number=trial.number,
        state=_state(trial),
        settings=trial.user_attrs.get(_SETTINGS, {}),
        value=info.get("value"),
        val=info.get("val", {}),
        epochs=info.get("epochs", 0),
        seconds=trial.duration.total_seconds() if trial.duration else None,
        reason=info.get(
            "reason",
            "worker lost: no heartbeat"
            if _RESULT not in trial.user_attrs and trial.state == TrialState.FAIL
            else "",
        ),
        model=info.get("model", ""),
    )
