"""`python -m napari_cellseg.train` with the seed's flags, end to end on real nuclei."""

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from small_runs import TINY_RUN, as_flags

from napari_cellseg.cli.train import main, make_parser
from napari_cellseg.config import TrainConfig


def few_images(source: Path, target: Path, count: int) -> Path:
    """A data set folder linking the first ``count`` image/label pairs of ``source``."""
    for sub in ("images", "labels"):
        (target / sub).mkdir(parents=True)
    for image in sorted((source / "images").glob("*.png"))[:count]:
        for sub in ("images", "labels"):
            os.symlink(source / sub / image.name, target / sub / image.name)
    return target


def run_cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "napari_cellseg.train", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


@pytest.mark.parametrize("architecture", ["unet", "dcan"])
def test_trains_on_real_nuclei_and_writes_every_file(shared_data, tmp_path, architecture):
    train_dir = few_images(shared_data / "train", tmp_path / "train", 4)
    val_dir = few_images(shared_data / "val", tmp_path / "val", 2)
    model = tmp_path / "models" / f"{architecture}.pt"
    result = run_cli(
        "--architecture",
        architecture,
        "--epochs",
        "2",
        "--batch",
        "2",
        "--augments",
        "1",
        "--trim_method",
        "resize",
        "--train_data",
        str(train_dir),
        "--val_data",
        str(val_dir),
        "--model",
        str(model),
        "--im_dim",
        "64",
        "--start_filters",
        "4",
        "--unet_levels",
        "2",
        "--lr",
        "0.001",
        "--seed",
        "7",
        "--num_workers",
        "0",
        "--no-tune_postprocess",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "epoch 2/2" in result.stdout and "val_loss" in result.stdout
    for stem in ("", "-best-val-loss", "-best-val-objects-iou", "-best-val-boundaries-iou"):
        assert model.with_name(f"{architecture}{stem}.pt").stat().st_size > 1000
        saved = yaml.safe_load(model.with_name(f"{architecture}{stem}.yaml").read_text())
        assert (saved["architecture"], saved["epochs"], saved["seed"]) == (architecture, 2, 7)
        assert saved["record"]["epochs_trained"] >= 1
    log = model.with_name(f"{architecture}-log.csv").read_text().splitlines()
    assert len(log) == 3 and log[0].startswith("epoch,lr,seconds,train_loss")
    assert list((model.parent / "tensorboard" / architecture).glob("events.out.tfevents.*"))
    assert not list(model.parent.glob(".*.tmp"))


def test_user_error_exits_nonzero_with_one_paragraph(tmp_path):
    result = run_cli("--train_data", str(tmp_path / "missing"), "--model", "m.pt", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "missing" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_seed_flag_is_accepted():
    seed_flags = (
        "--architecture dcan --epochs 1 --batch 1 --augments 0 --trim_method padding "
        "--train_data a --val_data b --model m.pt --channels 1 --lr 0.1 --im_dim 64 "
        "--bnd_weight 0.3 --obj_weight 0.7 --dropout 0.1 --dcan_final_act sigmoid "
        "--tb_dir tb --csv_log log.csv --seed 1 --args_load_path ''"
    ).split()
    args = make_parser().parse_args([a.strip("'") for a in seed_flags])
    assert (args.architecture, args.bnd_weight, args.tb_dir) == ("dcan", 0.3, "tb")


def test_help_lists_defaults_from_the_settings(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert f"(default: {TrainConfig().lr!r})" in out and "--trim_method" in out


def test_without_validation_data_the_last_weights_are_the_model(tmp_path, capsys):
    from napari_cellseg.data.synthetic import write_dataset

    data = write_dataset(tmp_path / "data", 2, shape=(64, 64), seed=3)
    model = tmp_path / "models" / "m.pt"
    code = main([
        "--train_data", str(data), "--val_fraction", "0", "--model", str(model), "--epochs", "2",
        "--augments", "0", *as_flags(TINY_RUN),
    ])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "no validation data" in out and f"model saved to {model}\n" in out
    assert not list(model.parent.glob("*best*"))
    assert yaml.safe_load(model.with_suffix(".yaml").read_text())["record"]["epochs_trained"] == 2


def test_sigterm_finishes_the_batch_saves_and_the_run_resumes(tmp_path):
    import signal
    import time

    from napari_cellseg.data.synthetic import write_dataset

    data = write_dataset(tmp_path / "data", 4, shape=(64, 64), seed=0)
    model = tmp_path / "models" / "m.pt"
    flags = ["--train_data", str(data), "--val_fraction", "0", "--model", str(model),
             "--augments", "0", *as_flags(TINY_RUN)]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "napari_cellseg.train", *flags, "--epochs", "1000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    state = model.with_name("m-train-state.pt")
    deadline = time.monotonic() + 120
    while not state.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)  # the first epoch ended: SLURM's warning comes now
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert "SIGTERM: stopping after the current batch" in err
    assert "give the same command with --resume" in err and "Traceback" not in err
    trained = yaml.safe_load(model.with_suffix(".yaml").read_text())["record"]["epochs_trained"]
    assert 1 <= trained < 1000
    resumed = run_cli(*flags, "--epochs", str(trained + 1), "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    record = yaml.safe_load(model.with_suffix(".yaml").read_text())["record"]
    assert record["epochs_trained"] == trained + 1


def test_a_second_run_to_the_same_model_is_refused_and_a_stale_lock_taken_over(tmp_path):
    from napari_cellseg.data.synthetic import write_dataset
    from napari_cellseg.training.checkpoints import model_lock

    data = write_dataset(tmp_path / "data", 2, shape=(64, 64), seed=0)
    model = tmp_path / "m.pt"
    flags = ["--train_data", str(data), "--val_fraction", "0", "--model", str(model),
             "--epochs", "1", "--augments", "0", *as_flags(TINY_RUN)]  # fmt: skip
    with model_lock(model) as lock:  # a live run holds it: this process
        result = run_cli(*flags, cwd=tmp_path)
        assert result.returncode == 2
        assert f"Another training run (process {os.getpid()}" in result.stderr
        assert lock.exists()
    assert not lock.exists()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)  # fmt: skip
    import socket

    lock.write_text(f"{gone.stdout.strip()} {socket.gethostname()}")  # a killed run's
    assert run_cli(*flags, cwd=tmp_path).returncode == 0
    assert not lock.exists() and model.exists()


def test_sigkill_at_random_moments_then_resume_ends_as_an_uninterrupted_run(tmp_path):
    import csv
    import random
    import time

    import torch

    from napari_cellseg.data.synthetic import write_dataset

    data = write_dataset(tmp_path / "data", 4, shape=(128, 128), seed=0)  # 16 crops each

    def flags(model: Path) -> list[str]:
        return ["--train_data", str(data), "--val_fraction", "0.25", "--model", str(model),
                "--epochs", "10", "--early_stop_patience", "100", "--augments", "0",
                "--trim_method", "reflect", *as_flags(TINY_RUN)]  # fmt: skip

    straight, killed = tmp_path / "straight" / "m.pt", tmp_path / "killed" / "m.pt"
    assert run_cli(*flags(straight), cwd=tmp_path).returncode == 0
    rng = random.Random(7)
    killed_mid_run = 0
    for _ in range(3):
        process = subprocess.Popen(
            [sys.executable, "-m", "napari_cellseg.train", *flags(killed), "--resume"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
        )  # fmt: skip
        time.sleep(rng.uniform(3.0, 4.5))  # in the start-up, an epoch or a save
        killed_mid_run += process.poll() is None
        process.kill()
        process.wait()
    assert killed_mid_run >= 2
    final = run_cli(*flags(killed), "--resume", cwd=tmp_path)
    assert final.returncode == 0, final.stderr
    expected, resumed = torch.load(straight), torch.load(killed)
    assert all(torch.equal(expected[k], resumed[k]) for k in expected)
    logs = []
    for model in (straight, killed):
        with open(model.with_name("m-log.csv"), newline="") as fh:
            logs.append([(row["epoch"], row["train_loss"]) for row in csv.DictReader(fh)])
    assert logs[1] == logs[0] and len(logs[0]) == 10  # one row per epoch, as without kills
    assert not list(killed.parent.glob(".*"))  # no lock, no temporary file left


def test_a_trained_model_is_kept_unless_overwrite_or_resume_is_given(tmp_path, capsys):
    from napari_cellseg.data.synthetic import write_dataset

    data = write_dataset(tmp_path / "data", 2, shape=(64, 64), seed=0)
    model = tmp_path / "m.pt"
    flags = ["--train_data", str(data), "--val_fraction", "0", "--model", str(model),
             "--epochs", "1", "--augments", "0", *as_flags(TINY_RUN)]  # fmt: skip
    assert main(flags) == 0
    before = model.read_bytes()
    capsys.readouterr()
    assert main(flags) == 2
    assert "holds a model trained earlier" in capsys.readouterr().err
    assert model.read_bytes() == before
    assert main([*flags, "--overwrite"]) == 0
    assert main(["--train_data", str(data), "--model", str(tmp_path)]) == 2
    assert "a folder: give the path of the weights file in it" in capsys.readouterr().err


@pytest.mark.parametrize(
    "problem, message",
    [
        ("garbage yaml", r"is not valid YAML \(it is not text\)"),
        ("csv_log folder", "Setting 'csv_log' is .*, a folder: give a file name"),
        ("tb_dir file", "Setting 'tb_dir' is .*, a file: give a folder"),
    ],
)
def test_bad_paths_end_with_a_message_not_a_traceback(tmp_path, capsys, problem, message):
    import re

    from napari_cellseg.data.synthetic import write_dataset

    data = write_dataset(tmp_path / "data", 2, shape=(64, 64), seed=0)
    flags = ["--train_data", str(data), "--model", str(tmp_path / "m.pt"), "--epochs", "1",
             *as_flags(TINY_RUN)]  # fmt: skip
    bad = tmp_path / "bad"
    if problem == "garbage yaml":
        bad.write_bytes(bytes(range(128, 256)))
        flags += ["--args_load_path", str(bad)]
    elif problem == "csv_log folder":
        bad.mkdir()
        flags += ["--csv_log", str(bad)]
    else:
        bad.write_text("")
        flags += ["--tb_dir", str(bad)]
    assert main(flags) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err


def test_labels_of_huge_values_train_with_object_diameter(tmp_path):
    import numpy as np
    import tifffile

    for sub in ("images", "labels"):
        (tmp_path / "data" / sub).mkdir(parents=True)
    labels = np.zeros((64, 64), np.uint32)
    labels[10:20, 10:20], labels[30:42, 30:42] = 4_000_000_000, 3_999_999_999
    tifffile.imwrite(tmp_path / "data" / "images" / "a.tif", (labels > 0).astype(np.uint8) * 200)
    tifffile.imwrite(tmp_path / "data" / "labels" / "a.tif", labels)
    flags = ["--train_data", str(tmp_path / "data"), "--model", str(tmp_path / "m.pt"),
             "--epochs", "1", "--val_fraction", "0", "--object_diameter", "20",
             "--trim_method", "reflect", *as_flags(TINY_RUN)]  # fmt: skip
    assert main(flags) == 0  # 30 GiB were asked for the objects' areas before


def test_a_review_record_beside_a_label_image_trains_its_reviewed_objects_only(tmp_path, capsys):
    from napari_cellseg.analysis.review import record_path, write_record
    from napari_cellseg.data.io import read_folder
    from napari_cellseg.data.synthetic import write_dataset
    from napari_cellseg.training.inputs import load_stacks

    data = write_dataset(tmp_path / "data", 2, shape=(96, 96), seed=3)
    labels_file = sorted((data / "labels").iterdir())[0]
    stack = read_folder(data)[0]
    values = sorted(set(np.unique(stack.labels).tolist()) - {0, 1})
    accepted = values[:2]
    states = ["accepted" if v in accepted else "" for v in values]
    write_record(record_path(labels_file), values, [0.5] * len(values), states)
    cfg = TrainConfig(train_data=str(data), val_fraction=0.0)
    reviewed = load_stacks(cfg, None)[0][0].labels
    assert set(np.unique(reviewed).tolist()) - {0, 1} == set(accepted)  # the rest ignored
    assert (reviewed[np.isin(stack.labels, values[2:])] == 1).all()
    everything = load_stacks(replace(cfg, reviewed_only=False), None)[0][0].labels
    assert np.array_equal(everything, stack.labels)

    flags = [
        "--train_data", str(data), "--val_fraction", "0", "--model", str(tmp_path / "m.pt"),
        "--epochs", "1", "--augments", "0", *as_flags(TINY_RUN),
    ]  # fmt: skip
    assert main(flags) == 0
    assert f"its {len(accepted)} reviewed objects train" in capsys.readouterr().out

    write_record(record_path(labels_file), values, [0.5] * len(values), [""] * len(values))
    assert main([*flags, "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert f"No object of '{labels_file}' (its record '{labels_file.stem}.review.csv')" in err
    assert "--no-reviewed_only" in err and "Traceback" not in err
    record_path(labels_file).write_text("label,review\nnot a number,accepted\n")
    assert main([*flags, "--overwrite"]) == 2
    assert "line 2 is not a review record row" in capsys.readouterr().err
