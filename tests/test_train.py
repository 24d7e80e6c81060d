"""The training engine: events, files, numbers, stop, resume, determinism."""

import csv
import dataclasses
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from napari_cellseg.config_io import load_yaml
from napari_cellseg.data.stacks import stacks_from_arrays
from napari_cellseg.data.synthetic import make_nuclei
from napari_cellseg.device import precision_name
from napari_cellseg.errors import CellsegError, ConfigError, DataError, TrainingDiverged
from napari_cellseg.models.registry import build_model
from napari_cellseg.segmentation.settings import SegmentationSettings
from napari_cellseg.training.checkpoints import EarlyStopping
from napari_cellseg.training.events import (
    BatchEnded,
    CheckpointSaved,
    EpochEnded,
    TrainFinished,
    TrainStarted,
)
from napari_cellseg.training.inputs import TrainData
from napari_cellseg.training.loop import run_training, train


def synthetic_stacks(n, seed=0, shape=(64, 64)):
    pairs = [make_nuclei(shape, seed=seed + i, blobs=1 if i == 0 else 0) for i in range(n)]
    return stacks_from_arrays([p[0] for p in pairs], [p[1] for p in pairs])


@pytest.fixture
def data():
    return TrainData(train=synthetic_stacks(4), val=synthetic_stacks(2, seed=100))


def test_events_arrive_in_order_and_files_are_written(tiny_train_config, data):
    events = list(train(tiny_train_config, data=data))
    assert isinstance(events[0], TrainStarted) and isinstance(events[-1], TrainFinished)
    epochs = [e for e in events if isinstance(e, EpochEnded)]
    assert [e.epoch for e in epochs] == [0, 1]
    assert {"loss", "objects_iou", "boundaries_iou"} <= set(epochs[0].val)
    assert {"loss", "objects_iou", "boundaries_iou"} <= set(epochs[0].train)
    batches = [e for e in events if isinstance(e, BatchEnded)]
    assert len(batches) == 2 * events[0].batches_per_epoch
    finished = events[-1]
    assert finished.reason == "completed" and finished.epochs_run == 2
    model = tiny_train_config.model
    kinds = {e.kind for e in events if isinstance(e, CheckpointSaved)}
    assert {"last", "best-val-loss"} <= kinds
    for suffix in ("", "-best-val-loss", "-best-val-objects-iou", "-best-val-boundaries-iou"):
        weights = model.replace(".pt", f"{suffix}.pt")
        saved = load_yaml(weights.replace(".pt", ".yaml"))
        assert saved.model == weights
        assert isinstance(torch.load(weights), dict)
    assert finished.model_path == model.replace(".pt", "-best-val-loss.pt")
    with open(model.replace(".pt", "-log.csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert float(rows[1]["val_loss"]) == pytest.approx(epochs[1].val["loss"])


def test_without_validation_data_only_the_last_weights_are_written(tiny_train_config, tmp_path):
    events = list(train(tiny_train_config, data=TrainData(train=synthetic_stacks(4), val=[])))
    assert {e.kind for e in events if isinstance(e, CheckpointSaved)} == {"last"}
    assert sorted(p.name for p in tmp_path.glob("model*")) == [
        "model-log.csv",
        "model-train-state.pt",
        "model.pt",
        "model.yaml",
    ]
    finished = events[-1]
    assert (finished.model_path, finished.best) == (tiny_train_config.model, {})


def test_tensorboard_holds_scalars_and_sample_images(tiny_train_config, data, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = dataclasses.replace(tiny_train_config, tb_dir=str(tmp_path / "tb"))
    run_training(cfg, data=data)
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0}).Reload()
    assert [s.step for s in acc.Scalars("loss/val")] == [0, 1]
    assert "objects_iou/train" in acc.Tags()["scalars"]
    assert {"samples/val", "samples/train"} <= set(acc.Tags()["images"])


@pytest.mark.parametrize("mixed_precision", [True, False])
def test_loss_falls_on_synthetic_data(tiny_train_config, data, mixed_precision):
    cfg = dataclasses.replace(
        tiny_train_config, epochs=8, lr=3e-3, start_filters=8, mixed_precision=mixed_precision
    )
    events = list(train(cfg, data=data))
    assert events[0].device == f"cpu ({precision_name('cpu', mixed_precision)})"
    losses = [e.train["loss"] for e in events if isinstance(e, EpochEnded)]
    assert losses[-1] < 0.6 * losses[0]


def test_same_seed_same_numbers(tiny_train_config, data, tmp_path):
    def losses(name):
        cfg = dataclasses.replace(tiny_train_config, model=str(tmp_path / name / "m.pt"))
        return [e.loss for e in train(cfg, data=data) if isinstance(e, BatchEnded)]

    assert losses("a") == losses("b")


def test_stop_ends_after_the_batch_and_keeps_usable_weights(tiny_train_config, data):
    stop = threading.Event()
    events = []
    for event in train(dataclasses.replace(tiny_train_config, epochs=50), data=data, stop=stop):
        events.append(event)
        if isinstance(event, BatchEnded) and event.epoch == 1:
            stop.set()
    finished = events[-1]
    assert finished.reason == "stopped" and finished.epochs_run == 2
    state = torch.load(tiny_train_config.model)
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert load_yaml(finished.model_path.replace(".pt", ".yaml")).epochs == 50


def test_resume_continues_from_the_last_epoch(tiny_train_config, data):
    run_training(tiny_train_config, data=data)
    cfg = dataclasses.replace(tiny_train_config, epochs=4, resume=True)
    events = list(train(cfg, data=data))
    assert events[0].start_epoch == 2
    assert [e.epoch for e in events if isinstance(e, EpochEnded)] == [2, 3]
    record = yaml.safe_load(open(cfg.model.replace(".pt", ".yaml")))["record"]
    assert record["epochs_trained"] == 4


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(
    tiny_train_config, data, tmp_path
):
    # each epoch's order and augmentation follow from (seed, epoch), not from the run's past
    straight = dataclasses.replace(tiny_train_config, model=str(tmp_path / "straight" / "m.pt"))
    run_training(straight, data=data)
    run_training(dataclasses.replace(tiny_train_config, epochs=1), data=data)
    run_training(dataclasses.replace(tiny_train_config, resume=True), data=data)
    expected, resumed = torch.load(straight.model), torch.load(tiny_train_config.model)
    assert all(torch.equal(expected[k], resumed[k]) for k in expected)


def test_a_kill_between_weights_and_train_state_resumes_exactly(tiny_train_config, data, tmp_path):
    import csv
    import shutil

    from napari_cellseg.training.checkpoints import train_state_path

    cfg = dataclasses.replace(tiny_train_config, epochs=3)
    straight = dataclasses.replace(cfg, model=str(tmp_path / "straight" / "m.pt"))
    run_training(straight, data=data)
    run_training(dataclasses.replace(cfg, epochs=1), data=data)
    state = train_state_path(cfg.model)
    shutil.copy(state, tmp_path / "state-after-epoch-1")
    run_training(dataclasses.replace(cfg, epochs=2, resume=True), data=data)
    # killed after epoch 2's weights and log row, before its train state: m.pt is ahead
    shutil.copy(tmp_path / "state-after-epoch-1", state)
    run_training(dataclasses.replace(cfg, resume=True), data=data)
    expected, resumed = torch.load(straight.model), torch.load(cfg.model)
    assert all(torch.equal(expected[k], resumed[k]) for k in expected)
    with open(Path(cfg.model).with_name("model-log.csv"), newline="") as fh:
        assert [row["epoch"] for row in csv.DictReader(fh)] == ["0", "1", "2"]  # once each


def test_resume_without_a_train_state_refuses_and_says_how_to_fine_tune(tiny_train_config, data):
    from napari_cellseg.training.checkpoints import train_state_path

    run_training(tiny_train_config, data=data)
    train_state_path(tiny_train_config.model).unlink()  # a copied model
    before = torch.load(tiny_train_config.model)
    with pytest.raises(ConfigError, match="no train state.*--init_model .*model.yaml"):
        run_training(dataclasses.replace(tiny_train_config, resume=True), data=data)
    after = torch.load(tiny_train_config.model)
    assert all(torch.equal(before[k], after[k]) for k in before)  # kept


def test_a_learning_rate_far_too_high_stops_as_diverged(tiny_train_config, data):
    with pytest.raises(TrainingDiverged, match="training diverged. Lower the learning rate"):
        run_training(dataclasses.replace(tiny_train_config, lr=1e6), data=data)


def test_channels_without_neighbouring_slices_are_refused(tiny_train_config, data):
    with pytest.raises(DataError, match="'channels' is 3, but every training image is a single"):
        run_training(dataclasses.replace(tiny_train_config, channels=3), data=data)


def test_temporary_files_of_killed_saves_are_removed(tiny_train_config, data):
    folder = Path(tiny_train_config.model).parent
    folder.mkdir(parents=True, exist_ok=True)
    leftovers = [folder / ".model.pt.k2j4.tmp", folder / ".model-train-state.pt.x9.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a checkpoint")
    others = folder / ".other.pt.k2j4.tmp"  # another model's: not ours to remove
    others.write_bytes(b"")
    run_training(tiny_train_config, data=data)
    assert not any(path.exists() for path in leftovers) and others.exists()


@pytest.mark.parametrize("validation", [True, False])
def test_a_resumed_run_stops_early_and_keeps_the_bests_of_an_uninterrupted_one(
    tiny_train_config, data, tmp_path, validation
):
    # the loss stalls from the first epoch: a resumed run that forgot the stale epochs
    # before the interruption would stop later
    data = data if validation else TrainData(train=data.train, val=[])
    cfg = dataclasses.replace(
        tiny_train_config, epochs=30, lr=1e-9, early_stop_patience=3, early_stop_min_delta=1.0
    )
    straight = run_training(
        dataclasses.replace(cfg, model=str(tmp_path / "straight" / "m.pt")), data=data
    )
    run_training(dataclasses.replace(cfg, epochs=2), data=data)
    resumed = run_training(dataclasses.replace(cfg, resume=True), data=data)
    assert (straight.reason, straight.epochs_run) == ("early_stopping", 4)
    assert (resumed.reason, resumed.epochs_run) == ("early_stopping", 4)
    assert resumed.best == straight.best and bool(resumed.best) == validation


def test_held_out_fraction_is_used_when_no_validation_is_given(tiny_train_config):
    cfg = dataclasses.replace(tiny_train_config, val_fraction=0.25)
    started = next(train(cfg, data=TrainData(train=synthetic_stacks(4))))
    assert (started.train_samples, started.val_samples) == (3 * (1 + cfg.augments), 1)


@pytest.mark.parametrize("validation", [True, False])
def test_early_stopping_stops_when_the_loss_stalls(tiny_train_config, data, validation):
    # without validation data the training loss is the one watched
    data = data if validation else TrainData(train=data.train, val=[])
    cfg = dataclasses.replace(
        tiny_train_config, epochs=30, lr=1e-9, early_stop_patience=2, early_stop_min_delta=1.0
    )
    finished = run_training(cfg, data=data)
    assert (finished.reason, finished.epochs_run) == ("early_stopping", 3)


def test_early_stopping_counts_from_the_last_gain_larger_than_min_delta():
    stopping = EarlyStopping(min_delta=0.1, patience=3)
    # gains of 0.06 each: no single epoch beats the best by 0.1, every second one does
    stops = [stopping.update(loss) for loss in (1.0, 0.94, 0.88, 0.82, 0.76, 0.76, 0.76, 0.76)]
    assert stops == [False] * 7 + [True]
    assert (stopping.best_loss, stopping.stale_epochs) == (0.76, 3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": ""}, "'model' is empty"),
        ({"model": "out/model.h5"}, "must end in .pt"),
        ({"architecture": "dcan", "channels": 3}, "unet"),
    ],
)
def test_bad_settings_raise_clear_errors(tiny_train_config, data, change, message):
    with pytest.raises(CellsegError, match=message):
        next(train(dataclasses.replace(tiny_train_config, **change), data=data))


def test_only_the_labelled_slices_of_a_stack_train(tiny_train_config, data):
    pair = data.train[1]
    volume = np.concatenate([pair.image] * 4)
    labels = np.concatenate([pair.labels, 0 * pair.labels, pair.labels, 0 * pair.labels])
    partly = stacks_from_arrays([volume], [labels], names=["partly"])
    started = next(train(tiny_train_config, data=TrainData(partly, data.val)))
    whole = stacks_from_arrays([volume[:2]], [np.stack([pair.labels[0]] * 2)])
    labelled = next(train(tiny_train_config, data=TrainData(whole, data.val)))
    assert started.train_samples == labelled.train_samples
    assert started.notes == ("'partly': 2 of 4 slices hold labels; the others are left out.",)


def test_the_blobs_of_the_training_labels_are_reported(tiny_train_config, data):
    blob, labelled = (
        sum(int(np.count_nonzero(f(s.labels))) for s in data.train)
        for f in (lambda labels: labels == 1, lambda labels: labels)
    )
    started = next(train(tiny_train_config, data=data))
    assert blob and started.notes == (
        f"Blobs (label 1, ignored by the loss) in 'image 0': {100 * blob / labelled:.1f} % "
        "of the labelled pixels.",
    )
    relaxed = dataclasses.replace(tiny_train_config, blob_label=None)
    assert next(train(relaxed, data=data)).notes == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [(1, "every labelled pixel has the value 1, which marks blobs"), (0, "are empty")],
)
def test_labels_without_objects_are_refused(tiny_train_config, data, value, message):
    painted = [dataclasses.replace(s, labels=np.where(s.labels > 0, value, 0)) for s in data.train]
    with pytest.raises(DataError, match=message):
        next(train(tiny_train_config, data=TrainData(painted, data.val)))
    relaxed = dataclasses.replace(tiny_train_config, blob_label=None)
    if value:  # painted cells with 1 train when 1 does not mark blobs
        assert isinstance(next(train(relaxed, data=TrainData(painted, data.val))), TrainStarted)


def test_fine_tuning_starts_from_the_weights_of_the_given_model(tiny_train_config, data, tmp_path):
    run_training(dataclasses.replace(tiny_train_config, seed=7), data=data)  # other weights
    start = torch.load(tiny_train_config.model)
    # at a negligible learning rate the parameters stay those the run started from
    still = dict(epochs=1, lr=1e-9)
    tuned = dataclasses.replace(
        tiny_train_config,
        **still,
        model=str(tmp_path / "b" / "m.pt"),
        init_model=tiny_train_config.model.replace(".pt", ".yaml"),
    )
    fresh = dataclasses.replace(tiny_train_config, **still, model=str(tmp_path / "c" / "m.pt"))
    run_training(tuned, data=data)
    run_training(fresh, data=data)
    parameters = [name for name, _ in build_model(tiny_train_config).named_parameters()]
    after, scratch = torch.load(tuned.model), torch.load(fresh.model)
    assert all(torch.allclose(after[k], start[k], atol=1e-6) for k in parameters)
    assert not all(torch.allclose(scratch[k], start[k], atol=1e-2) for k in parameters)
    assert load_yaml(tuned.model.replace(".pt", ".yaml")).init_model == tuned.init_model


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"init_model": "gone.yaml"}, "'init_model' is 'gone.yaml', which does not exist"),
        ({"init_model": "gone.pt"}, "'init_model' is 'gone.pt', but 'gone.yaml' does not exist"),
        ({"start_filters": 8}, r"start_filters 8 \(the model's: 4\).*--args_load_path"),
        ({"model": "same"}, "training would overwrite the model it starts from"),
    ],
)
def test_fine_tuning_errors_name_the_setting(tiny_train_config, data, tmp_path, change, message):
    run_training(tiny_train_config, data=data)
    best = tiny_train_config.model.replace(".pt", "-best-val-loss.pt")
    cfg = dataclasses.replace(
        tiny_train_config, model=str(tmp_path / "b" / "m.pt"), init_model=best
    )
    if change.get("model") == "same":  # a run into the first one's name overwrites its checkpoints
        change = {"model": tiny_train_config.model, "overwrite": True}  # even so
    with pytest.raises(CellsegError, match=message):
        next(train(dataclasses.replace(cfg, **change), data=data))


def test_diverging_training_names_the_learning_rate(tiny_train_config, data):
    cfg = dataclasses.replace(tiny_train_config, lr=1e12)
    with pytest.raises(TrainingDiverged, match="Lower the learning rate"):
        run_training(cfg, data=data)


def test_postprocessing_is_tuned_on_validation_data_at_the_end(tiny_train_config, data):
    from napari_cellseg.training.events import PostprocessTuned

    cfg = dataclasses.replace(tiny_train_config, tune_postprocess=True)
    val = synthetic_stacks(3, seed=100, shape=(224, 224))  # 119 objects
    events = list(train(cfg, data=TrainData(data.train, val)))
    tuned = events[-2]
    assert isinstance(tuned, PostprocessTuned)
    assert not any("fewer than" in note for note in events[0].notes)
    saved = load_yaml(tuned.path)
    assert tuned.path == events[-1].model_path.replace(".pt", ".yaml")
    assert SegmentationSettings.of(saved) == tuned.tuned.settings
    assert 0.0 <= tuned.tuned.mean_ap <= 1.0


def test_too_few_validation_objects_keep_the_segmentation_settings(tiny_train_config, data):
    from napari_cellseg.training.events import PostprocessTuned

    cfg = dataclasses.replace(tiny_train_config, tune_postprocess=True, obj_threshold=0.55)
    events = list(train(cfg, data=data))  # 8 validation objects
    assert not any(isinstance(event, PostprocessTuned) for event in events)
    assert "fewer than 100 objects" in events[0].notes[-1]
    assert "obj_threshold 0.55" in events[0].notes[-1]
    assert load_yaml(events[-1].model_path.replace(".pt", ".yaml")).obj_threshold == 0.55


def test_time_limit_ends_after_a_whole_epoch(tiny_train_config, data):
    cfg = dataclasses.replace(tiny_train_config, epochs=100, max_minutes=1e-9)
    finished = run_training(cfg, data=data)
    assert (finished.reason, finished.epochs_run) == ("time_limit", 1)


def test_unwritable_model_folder_is_named_before_training(tiny_train_config, data, tmp_path):
    (tmp_path / "file").write_text("")
    cfg = dataclasses.replace(tiny_train_config, model=str(tmp_path / "file" / "m.pt"))
    with pytest.raises(CellsegError, match="folder cannot be written"):
        next(train(cfg, data=data))


def test_model_files_keep_the_usual_permissions(tiny_train_config, data):
    import os
    import stat

    run_training(dataclasses.replace(tiny_train_config, epochs=1), data=data)
    mode = stat.S_IMODE(os.stat(tiny_train_config.model).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_cosine_schedule_lowers_the_rate_smoothly_to_a_hundredth(tiny_train_config, data):
    cfg = dataclasses.replace(tiny_train_config, epochs=4, lr=1e-2, lr_schedule="cosine")
    rates = [e.lr for e in train(cfg, data=data) if isinstance(e, EpochEnded)]
    expected = [1e-4 + (1e-2 - 1e-4) * (1 + np.cos(np.pi * k / 4)) / 2 for k in (1, 2, 3, 4)]
    np.testing.assert_allclose(rates, expected, rtol=1e-6)


def test_a_batch_larger_than_the_free_memory_is_refused_before_it_is_tried(
    tiny_train_config, data, monkeypatch
):
    from napari_cellseg.models.registry import build_model, training_memory

    cfg = dataclasses.replace(tiny_train_config, im_dim=1024, batch=1)
    need = training_memory(build_model(cfg), cfg)
    assert 300 * 2**20 < need < 1000 * 2**20  # peak RSS measured: 527 MiB
    monkeypatch.setattr("napari_cellseg.device.free_memory", lambda device: need // 2)
    with pytest.raises(ConfigError, match=r"needs about 0\.\d GiB .*lower 'im_dim' or 'batch'"):
        run_training(cfg, data=data)


def test_a_nan_pixel_in_a_training_image_trains_as_background(tiny_train_config, data):
    image = data.train[0].image.astype(np.float32)
    image[0, 0, 0] = np.nan
    data.train[0] = stacks_from_arrays([image[0]], [data.train[0].labels[0]])[0]
    finished = run_training(tiny_train_config, data=data)
    assert finished.reason == "completed" and finished.epochs_run == 2


def test_the_instances_ap_is_scored_each_epoch_as_prediction_scores_it(
    tiny_train_config, data, tmp_path
):
    from napari_cellseg.analysis.matching import MatchingScores
    from napari_cellseg.inference.predictor import load_model

    cfg = dataclasses.replace(tiny_train_config, csv_log=str(tmp_path / "log.csv"))
    events = list(train(cfg, data=data))
    epochs = [e for e in events if isinstance(e, EpochEnded)]
    for epoch in epochs:
        assert 0.0 <= epoch.val["ap"] <= epoch.val["ap50"] <= 1.0
        assert "ap" not in epoch.train
    with open(cfg.csv_log, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert float(rows[-1]["val_ap"]) == pytest.approx(epochs[-1].val["ap"])
    assert Path(cfg.model.replace(".pt", "-best-val-ap.pt")).is_file()
    predictor = load_model(cfg.model.replace(".pt", ".yaml"), device="cpu")  # the last weights
    scores = MatchingScores(ignore_label=cfg.blob_label)
    for stack in data.val:
        scores.add(
            stack.name, stack.labels[0], predictor.instances(*predictor.predict(stack.image[0]))
        )
    assert scores.result().mean_ap == pytest.approx(epochs[-1].val["ap"], abs=1e-6)


def test_the_instance_score_keeps_to_its_share_of_an_epoch(tiny_train_config, data, monkeypatch):
    from napari_cellseg.training import scoring

    score = scoring.InstanceScore(tiny_train_config, data.val, torch.device("cpu"), {})
    network = build_model(tiny_train_config)
    monkeypatch.setattr(scoring, "BUDGET", 1e-9)  # an epoch of no time: one page a scoring
    score(network, 1.0)
    assert score.count == 1 and len(score.pages) == 2
    monkeypatch.setattr(scoring, "BUDGET", 1e9)
    score(network, 1.0)
    assert score.count == 1  # fixed by the first scoring: the epochs compare


def test_validation_without_objects_is_said_and_not_scored(tiny_train_config, data):
    empty = [dataclasses.replace(s, labels=np.zeros_like(s.labels)) for s in data.val]
    events = list(train(tiny_train_config, data=TrainData(data.train, empty)))
    assert any("validation data holds no objects" in note for note in events[0].notes)
    assert all("ap" not in e.val for e in events if isinstance(e, EpochEnded))


def test_a_fine_tuned_model_is_compared_with_its_start(tiny_train_config, data, tmp_path):
    from napari_cellseg.training.events import ModelsCompared

    run_training(tiny_train_config, data=data)
    start = tiny_train_config.model.replace(".pt", ".yaml")
    tuned = dataclasses.replace(
        tiny_train_config, epochs=1, lr=1e-9, model=str(tmp_path / "b" / "m.pt"), init_model=start
    )
    events = list(train(tuned, data=data))
    compared = events[-2]
    assert isinstance(compared, ModelsCompared) and compared.init_path == start
    assert compared.final_path == events[-1].model_path.replace(".pt", ".yaml")
    # at a negligible learning rate the new model is its start: the same scores
    assert compared.final == pytest.approx(compared.init) and compared.improved
    worse = ModelsCompared("a.yaml", "b.yaml", {"ap": 0.6, "ap50": 0.8}, {"ap": 0.5, "ap50": 0.7})
    assert not worse.improved
    assert worse.describe().startswith("The fine-tuned model is WORSE by 0.100 mean AP")
    assert "keep predicting with 'a.yaml'" in worse.describe()
    fresh = dataclasses.replace(tiny_train_config, epochs=1, model=str(tmp_path / "c" / "m.pt"))
    assert not any(isinstance(e, ModelsCompared) for e in train(fresh, data=data))


def test_a_first_batch_almost_all_ignored_is_no_sign_of_divergence():
    from napari_cellseg.training.checkpoints import check_divergence

    check_divergence(0.13, 0.2, 2.4e-4, 0, 1e-3)  # 535 times a first batch near 0: healthy
    with pytest.raises(TrainingDiverged, match="3e\\+10"):
        check_divergence(3e10, 3e13, 1.6, 0, 1e6)
