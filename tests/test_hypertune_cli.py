"""`python -m napari_cellseg.hypertune` with the seed's commands, and workers sharing a study."""

# ruff: noqa: TID253 - tests of the search, so optuna and torch are imported at module level

import csv
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
from small_runs import TINY_NETWORK, as_flags

from napari_cellseg.cli.tune import main, make_parser
from napari_cellseg.config import TrainConfig, TuneConfig
from napari_cellseg.config_io import config_from_args


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks train faster on one thread, and the machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def tiny_flags(data: Path) -> list[str]:
    """Training flags of a U-Net that trains an epoch in a fraction of a second."""
    return [
        *as_flags(TINY_NETWORK), "--train_data", str(data), "--val_fraction", "0.25",
        "--epochs", "2", "--batch", "2", "--augments", "0", "--num_workers", "0",
        "--tb_samples", "1",
    ]  # fmt: skip


def test_seed_commands_parse_into_search_and_training_settings():
    args = make_parser().parse_args(
        ["tune_batch", "--architecture", "dcan", "--epochs", "7", "--train_data", "d",
         "--val_data", "v", "--trials", "3", "--seed", "5", "--output", "o",
         "--storage", "sqlite:///s.db", "--study", "run1", "--keep-all", "--lr", "0.01"]
    )  # fmt: skip
    assert config_from_args(TuneConfig, args) == TuneConfig(
        mode="tune_batch", trials=3, output="o", storage="sqlite:///s.db", study="run1",
        keep_all=True,
    )  # fmt: skip
    assert config_from_args(TrainConfig, args) == TrainConfig(
        architecture="dcan", epochs=7, train_data="d", val_data="v", seed=5, lr=0.01
    )


def test_tune_lr_prints_each_trial_and_the_best_settings(synthetic_dir, tmp_path, capsys):
    output = tmp_path / "tuning"
    code = main(["tune_lr", *tiny_flags(synthetic_dir), "--trials", "2", "--output", str(output)])
    out = capsys.readouterr().out
    assert code == 0
    trial_lines = [line for line in out.splitlines() if line.startswith("trial ")]
    assert [line.split()[:2] for line in trial_lines] == [["trial", "0"], ["trial", "1"]]
    assert all("val_loss" in line and "2 epochs" in line for line in trial_lines)
    assert f"--args_load_path {output / 'best.yaml'}" in out
    assert {p.name for p in output.iterdir()} >= {
        "study.db",
        "trials.csv",
        "trials.png",
        "best.yaml",
    }


def test_a_study_where_every_trial_diverges_ends_with_exit_1(synthetic_dir, tmp_path, capsys):
    flags = ["--lr_min", "1e13", "--lr_max", "1e18", "--trials", "2", "--epochs", "1"]
    code = main(["tune_lr", *tiny_flags(synthetic_dir), *flags, "--output", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert out.count("  diverged  ") == 2 and "no trial completed" in out


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--train_data", "missing-folder"], "missing-folder"),
        (["--lr_min", "0.1", "--lr_max", "0.01"], "lr_min"),
        (["--val_fraction", "0"], "--val_data"),
    ],
)
def test_user_errors_exit_2_with_one_paragraph(synthetic_dir, tmp_path, capsys, flags, message):
    code = main(["tune_lr", *tiny_flags(synthetic_dir), *flags, "--output", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_joining_a_study_with_other_settings_names_them(synthetic_dir, tmp_path, capsys):
    flags = [*tiny_flags(synthetic_dir), "--trials", "1", "--output", str(tmp_path)]
    assert main(["tune_lr", *flags, "--epochs", "1"]) == 0
    assert main(["tune_lr", *flags, "--epochs", "3"]) == 2
    assert "epochs=1 (now 3)" in capsys.readouterr().err


def test_two_processes_share_one_study(synthetic_dir, tmp_path):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    command = [
        sys.executable, "-m", "napari_cellseg.hypertune", "tune_lr", *tiny_flags(synthetic_dir),
        "--trials", "4", "--epochs", "1", "--storage", storage,
        "--output", str(tmp_path / "tuning"),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], [err for _, err in outputs]
    numbers = [
        int(line.split()[1])
        for out, _ in outputs
        for line in out.splitlines()
        if line.startswith("trial ")
    ]
    assert sorted(numbers) == list(range(4))  # each trial run once, by one of the workers
    trials = [
        t
        for t in optuna.load_study(study_name="tune_lr", storage=storage).get_trials()
        # a worker that starts a trial just as the other starts the last one stops there
        if t.user_attrs["result"]["state"] != "surplus"
    ]
    assert len(trials) == 4 and len({t.params["lr"] for t in trials}) == 4
    assert len(read_rows(tmp_path / "tuning" / "trials.csv")) == 4


def test_an_output_that_is_a_file_is_refused(synthetic_dir, tmp_path, capsys):
    from napari_cellseg.cli.tune import main

    afile = tmp_path / "afile"
    afile.write_text("")
    assert main(["tune_lr", *tiny_flags(synthetic_dir), "--output", str(afile)]) == 2
    assert "Setting 'output' is" in capsys.readouterr().err and afile.read_text() == ""
