"""The Optuna study of a search: its storage, its sampler, and opening or joining it.

See :mod:`napari_cellseg.training.tuning` for how a study is searched and shared.
"""

from __future__ import annotations

import dataclasses
import random
import time
import warnings
from pathlib import Path

import numpy as np
import optuna  # noqa: TID253 - this module is the study; only the tuning entry points import it

from napari_cellseg.config import TrainConfig, TuneConfig
from napari_cellseg.errors import ConfigError

__all__ = ["open_storage", "open_study", "TrialSeededTPE", "PER_WORKER", "HEARTBEAT_SECONDS"]

#: Settings a worker may choose for itself; every other one must match the study's.
PER_WORKER = (
    "train_data",
    "val_data",
    "model",
    "tb_dir",
    "csv_log",
    "args_load_path",
    "resume",
    "device",
    "num_workers",
    "tb_samples",
    "tune_postprocess",
)
HEARTBEAT_SECONDS = 10
"""Database storages: a running trial's heartbeat; one silent for 3 beats is interrupted."""
_OPEN_ATTEMPTS = 5  # of a database storage


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage: a database URL (``sqlite:///x.db``, ...) or a journal file path.

    Raises
    ------
    ConfigError
        When the storage cannot be opened, naming it.
    """
    from sqlalchemy.exc import IntegrityError, OperationalError

    for _ in range(_OPEN_ATTEMPTS):
        try:
            if "://" not in url:
                path = str(Path(url).resolve())
                return optuna.storages.JournalStorage(
                    optuna.storages.journal.JournalFileBackend(path)
                )
            engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine,
                    heartbeat_interval=HEARTBEAT_SECONDS,
                    grace_period=3 * HEARTBEAT_SECONDS,
                )
        except (OperationalError, IntegrityError) as exc:
            # workers starting together race to create the tables and their version row
            error = exc
            time.sleep(random.uniform(0.5, 2.0))
        except Exception as exc:  # a wrong URL or path, a missing database driver
            error = exc
            break
    raise ConfigError(
        f"Cannot open the study storage '{url}' ({type(error).__name__}: {error}). "
        "Check the --storage URL or path, and that the database server is reachable."
    )


def open_study(tune_cfg: TuneConfig, cfg: TrainConfig, search) -> optuna.Study:
    """Create, resume or join the study of ``tune_cfg``; refuse one made with other
    settings.  ``search``: its direction and the settings it searches (``params``)."""
    """Create the study, or load it and check it was made with the same settings."""
    output = Path(tune_cfg.output)
    output.mkdir(parents=True, exist_ok=True)
    url = tune_cfg.storage or f"sqlite:///{(output / 'study.db').resolve()}"
    name = tune_cfg.study or tune_cfg.mode
    pruner = (
        optuna.pruners.MedianPruner(
            n_startup_trials=tune_cfg.prune_startup_trials,
            n_warmup_steps=tune_cfg.prune_warmup_epochs,
        )
        if tune_cfg.prune
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(
        storage=open_storage(url),
        study_name=name,
        direction=search.direction,
        sampler=TrialSeededTPE(cfg.seed, n_startup_trials=min(10, max(3, tune_cfg.trials // 3))),
        pruner=pruner,
        load_if_exists=True,
    )
    fixed = {
        **{
            k: v
            for k, v in dataclasses.asdict(cfg).items()
            if k not in PER_WORKER and k not in search.params
        },
        **{k: getattr(tune_cfg, k) for k in ("mode", "lr_min", "lr_max", "batch_min", "batch_max")},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # trials of killed workers: run them again
    known = study.user_attrs.get("fixed")
    if known is None:
        study.set_user_attr("fixed", fixed)
    elif known != fixed:
        changed = ", ".join(
            f"{k}={known.get(k)!r} (now {fixed.get(k)!r})"
            for k in sorted(set(known) | set(fixed))
            if known.get(k) != fixed.get(k)
        )
        raise ConfigError(
            f"Study '{name}' in '{url}' was made with other settings: {changed}. Give the "
            "same settings to resume or join it, or another --study or --output for a new one."
        )
    return study


class TrialSeededTPE(optuna.samplers.BaseSampler):
    """Optuna's TPE sampler, its random state seeded with (``seed``, trial number).

    One seeded sampler per process would make every worker that joins a study propose
    the same settings; this keeps a one-process study reproducible and workers distinct.
    """

    def __init__(self, seed: int, *, n_startup_trials: int) -> None:
        self._seed, self._n_startup_trials = seed, n_startup_trials
        self._tpe = self._make(0)

    def _make(self, number: int) -> optuna.samplers.TPESampler:
        return optuna.samplers.TPESampler(
            seed=int(np.random.SeedSequence([self._seed, number]).generate_state(1)[0]),
            n_startup_trials=self._n_startup_trials,
            multivariate=True,
            constant_liar=True,  # running trials of other workers count as bad: no duplicates
        )

    def before_trial(self, study, trial):
        self._tpe = self._make(trial.number)
        self._tpe.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._tpe.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._tpe.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._tpe.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values):
        self._tpe.after_trial(study, trial, state, values)
