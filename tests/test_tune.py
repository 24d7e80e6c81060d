"""Hyper-parameter search on tiny synthetic nuclei: learning rate, divergence, pruning,
batch sizes, joint search, resume and the files a study writes."""

# ruff: noqa: TID253 - tests of the search, so optuna and torch are imported at module level

import csv
import dataclasses
import math
import threading
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import optuna
import pytest
import torch
from optuna.trial import TrialState
from small_runs import TINY_NETWORK

from napari_cellseg.config import TrainConfig, TuneConfig
from napari_cellseg.config_io import config_from_args, load_yaml
from napari_cellseg.data.synthetic import write_dataset
from napari_cellseg.device import is_out_of_memory
from napari_cellseg.errors import ConfigError
from napari_cellseg.training.tuning import batch_sizes, trial_dir, tune


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks train faster on one thread, and the machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """12 training and 4 validation images of 64x64 (6 batches of 2 per epoch)."""
    root = tmp_path_factory.mktemp("nuclei")
    write_dataset(root / "train", 12, shape=(64, 64), seed=0)
    write_dataset(root / "val", 4, shape=(64, 64), seed=100)
    return root


def tiny(data: Path, **settings) -> TrainConfig:
    """A U-Net that trains an epoch in a fraction of a second on one CPU core."""
    base = dict(
        **TINY_NETWORK, epochs=3, batch=2, augments=0, num_workers=0, tb_samples=1,
        train_data=str(data / "train"), val_data=str(data / "val"),
    )  # fmt: skip
    return TrainConfig(**{**base, **settings})


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def load_study(output: Path, name: str = "tune_lr") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{output / 'study.db'}")


# --- learning rate ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lr_study(data, tmp_path_factory):
    """8 trials over lr 1e-4..10.  After 3 epochs on this problem lr 3e-3..0.2 reach a val
    loss of 0.25-0.85, lr <= 1e-3 barely moves it from its start (1.1-1.2), and lr >= 0.3
    blows it up (1e3-1e9 in the first epoch)."""
    output = tmp_path_factory.mktemp("lr")
    settings = TuneConfig(
        mode="tune_lr", trials=8, output=str(output), lr_min=1e-4, lr_max=10,
        prune_startup_trials=3, prune_warmup_epochs=0,
    )  # fmt: skip
    return output, tune(settings, tiny(data)), tiny(data)


def test_lr_search_picks_a_rate_in_the_good_range(lr_study):
    output, result, _ = lr_study
    assert len(result.trials) == 8
    assert 1e-3 < result.best.settings["lr"] < 0.3
    assert result.best.value < 0.9
    assert result.best.value == min(t.value for t in result.trials if t.state == "complete")


def test_trials_behind_the_median_are_pruned(lr_study):
    output, result, _ = lr_study
    trials = load_study(output).get_trials()
    pruned = [t for t in trials if t.user_attrs["result"]["state"] == "pruned"]
    assert pruned and all(t.state == TrialState.PRUNED for t in pruned)
    for trial in pruned:  # Optuna's median rule, recomputed by hand
        epoch = max(trial.intermediate_values)
        finished_before = [
            t.intermediate_values[epoch]
            for t in trials
            if t.state == TrialState.COMPLETE and t.number < trial.number
        ]
        assert len(finished_before) >= 3  # prune_startup_trials
        assert min(trial.intermediate_values.values()) > np.median(finished_before)
    assert any(r.epochs < 3 for r in result.trials if r.state == "pruned")


def test_study_files_csv_plot_best_yaml_and_only_the_best_model(lr_study):
    output, result, cfg = lr_study
    best = result.best
    rows = read_csv(output / "trials.csv")
    assert [int(r["number"]) for r in rows] == list(range(8))
    assert list(rows[0]) == [
        "number", "state", "lr", "val_loss", "val_objects_iou", "val_boundaries_iou",
        "epochs", "seconds", "reason",
    ]  # fmt: skip
    assert [r["state"] for r in rows] == [t.state for t in result.trials]
    assert float(rows[best.number]["lr"]) == best.settings["lr"]
    assert float(rows[best.number]["val_loss"]) == pytest.approx(best.value, rel=1e-5)

    # best.yaml: every training setting, the best lr; train --args_load_path accepts it
    saved = load_yaml(output / "best.yaml", strict=True)
    expected = dataclasses.replace(cfg, lr=best.settings["lr"], model=str(output / "model.pt"))
    assert saved == expected
    from napari_cellseg.cli.train import make_parser

    parsed = config_from_args(
        TrainConfig, make_parser().parse_args(["--args_load_path", str(output / "best.yaml")])
    )
    assert dataclasses.replace(parsed, args_load_path="") == expected

    # the best trial keeps its weights, the others keep only their logs and yaml
    assert Path(best.model).is_file() and Path(best.model).parent == trial_dir(output, best.number)
    for trial in result.trials:
        weights = list(trial_dir(output, trial.number).glob("*.pt"))
        assert bool(weights) == (trial is best)
        assert (trial_dir(output, trial.number) / "model.yaml").is_file()

    assert iio.imread(output / "trials.png").shape[:2] == (400, 450)  # 4.5 x 4 in at 100 dpi


def test_diverging_trials_are_recorded_and_the_study_goes_on(data, tmp_path):
    # lr >= 1e12 overflows the weights: the loss is NaN in the first epoch
    settings = TuneConfig(mode="tune_lr", trials=3, output=str(tmp_path), lr_min=1e13, lr_max=1e18)
    result = tune(settings, tiny(data, epochs=2))
    assert [(t.state, t.reason, t.value) for t in result.trials] == [
        ("diverged", "loss diverged in epoch 1", None)
    ] * 3
    assert result.best is None and not (tmp_path / "best.yaml").exists()
    # to Optuna a pruned trial scored NaN, which its TPE sampler ranks worst
    for trial in load_study(tmp_path).get_trials():
        assert trial.state == TrialState.PRUNED and math.isnan(trial.intermediate_values[0])
    assert [r["state"] for r in read_csv(tmp_path / "trials.csv")] == ["diverged"] * 3


# --- resume, reproducibility, storages ----------------------------------------------------------


def test_an_interrupted_study_resumes_and_matches_an_uninterrupted_one(data, tmp_path):
    cfg = tiny(data, epochs=2)
    settings = TuneConfig(
        mode="tune_lr", trials=3, lr_min=1e-4, lr_max=10, prune_startup_trials=2,
        prune_warmup_epochs=0,
    )  # fmt: skip
    resumed = dataclasses.replace(settings, output=str(tmp_path / "resumed"))
    stop, first = threading.Event(), []

    def stop_after_two(trial):
        first.append(trial.number)
        if len(first) == 2:
            stop.set()

    tune(resumed, cfg, stop=stop, on_trial=stop_after_two)
    second = []
    result = tune(resumed, cfg, on_trial=lambda trial: second.append(trial.number))
    assert (first, second) == ([0, 1], [2])

    straight = tune(dataclasses.replace(settings, output=str(tmp_path / "straight")), cfg)
    assert [t.settings for t in result.trials] == [t.settings for t in straight.trials]
    assert [t.value for t in result.trials] == pytest.approx([t.value for t in straight.trials])
    assert len({t.settings["lr"] for t in result.trials}) == 3


def test_journal_file_storage_holds_a_resumable_study(data, tmp_path):
    journal = tmp_path / "study.log"
    for trials in (1, 2):
        settings = TuneConfig(trials=trials, output=str(tmp_path / "out"), storage=str(journal))
        tune(settings, tiny(data, epochs=1))
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))
    )
    assert len(optuna.load_study(study_name="tune_lr", storage=storage).trials) == 2
    assert not (tmp_path / "out" / "study.db").exists()


# --- batch size and the joint search -------------------------------------------------------------


def test_batch_sizes_are_the_powers_of_two_in_range():
    assert batch_sizes(1, 11) == [1, 2, 4, 8]
    assert batch_sizes(3, 32) == [4, 8, 16, 32]
    with pytest.raises(ConfigError, match="batch_min"):
        batch_sizes(5, 7)


def test_batch_search_tries_each_power_of_two_smallest_first(data, tmp_path):
    settings = TuneConfig(mode="tune_batch", output=str(tmp_path), batch_min=1, batch_max=11)
    result = tune(settings, tiny(data, epochs=1))
    assert [(t.number, t.settings, t.state) for t in result.trials] == [
        (0, {"batch": 1}, "complete"),
        (1, {"batch": 2}, "complete"),
        (2, {"batch": 4}, "complete"),
        (3, {"batch": 8}, "complete"),
    ]
    assert [r["batch"] for r in read_csv(tmp_path / "trials.csv")] == ["1", "2", "4", "8"]


def _ran_out_of_memory(output: Path, study: str, settings: dict, batch: int) -> None:
    """Store a study holding one trial whose batch size ran out of memory."""
    optuna.create_study(storage=f"sqlite:///{output / 'study.db'}", study_name=study).add_trial(
        optuna.trial.create_trial(
            state=TrialState.FAIL,
            user_attrs={
                "settings": settings,
                "result": {"state": "infeasible", "reason": "out of memory", "batch": batch},
            },
        )
    )


def test_no_batch_size_at_or_above_one_out_of_memory_is_tried(data, tmp_path):
    _ran_out_of_memory(tmp_path, "tune_batch", {"batch": 4}, 4)
    settings = TuneConfig(mode="tune_batch", output=str(tmp_path), batch_min=1, batch_max=16)
    result = tune(settings, tiny(data, epochs=1))
    assert [(t.settings["batch"], t.state) for t in result.trials] == [
        (4, "infeasible"), (1, "complete"), (2, "complete"),
    ]  # fmt: skip


def test_lr_search_with_a_batch_size_out_of_memory_is_a_user_error(data, tmp_path):
    _ran_out_of_memory(tmp_path, "tune_lr", {"lr": 0.001}, 2)
    with pytest.raises(ConfigError, match="Batch size 2 runs out of memory"):
        tune(TuneConfig(mode="tune_lr", output=str(tmp_path)), tiny(data, batch=2))


@pytest.mark.parametrize(
    "error, expected",
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8"), True),
        (MemoryError(), True),
        (RuntimeError("expected input[2, 3, 32, 32] to have 1 channels"), False),
    ],
)
def test_out_of_memory_errors_are_recognised(error, expected):
    assert is_out_of_memory(error) is expected


@pytest.mark.parametrize(
    "architecture, weights",
    [("dcan", {"bnd_weight", "obj_weight"}), ("unet", {"unet_bnd_class_weight"})],
)
def test_joint_search_scores_mean_iou_over_all_settings(data, tmp_path, architecture, weights):
    settings = TuneConfig(
        mode="tune_all", trials=3, output=str(tmp_path), lr_min=1e-3, lr_max=0.1,
        batch_min=2, batch_max=8, prune=False,
    )  # fmt: skip
    result = tune(settings, tiny(data, architecture=architecture, epochs=1))
    assert [t.state for t in result.trials] == ["complete"] * 3
    for trial in result.trials:
        s = trial.settings
        assert set(s) == {"lr", "batch", "dropout"} | weights
        assert 1e-3 <= s["lr"] <= 0.1 and s["batch"] in (2, 4, 8) and 0 <= s["dropout"] <= 0.5
        if architecture == "dcan":
            assert 0.1 <= s["bnd_weight"] <= 0.9 and s["obj_weight"] == 1 - s["bnd_weight"]
        else:
            assert 1 <= s["unet_bnd_class_weight"] <= 20
        assert trial.value == pytest.approx(
            (trial.val["objects_iou"] + trial.val["boundaries_iou"]) / 2
        )
    assert result.best.value == max(t.value for t in result.trials)
    assert "val_mean_iou" in read_csv(tmp_path / "trials.csv")[0]
