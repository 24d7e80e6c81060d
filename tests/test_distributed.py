"""Training in 2 processes (DistributedDataParallel, gloo on the CPU) against one process."""

import csv
import dataclasses
import os
import pickle
import shutil
import socket
import subprocess
import sys
import threading

import pytest
import torch
import yaml
from small_runs import TINY_NETWORK, TINY_RUN, as_flags
from torch.utils.data import DistributedSampler, default_collate

from napari_cellseg.config import TrainConfig
from napari_cellseg.data.dataset import SegmentationDataset
from napari_cellseg.data.stacks import stacks_from_arrays
from napari_cellseg.data.synthetic import make_nuclei
from napari_cellseg.errors import ConfigError
from napari_cellseg.models.registry import build_model, probabilities
from napari_cellseg.training.distributed import World, join
from napari_cellseg.training.events import BatchEnded, EpochEnded, TrainFinished, TrainStarted
from napari_cellseg.training.inputs import TrainData
from napari_cellseg.training.loop import train
from napari_cellseg.training.losses import compute_loss
from napari_cellseg.training.metrics import MetricAccumulator

WORLD = 2
TORCHRUN_ENV = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def synthetic_stacks(n, seed):
    pairs = [make_nuclei((32, 32), n_objects=3, seed=seed + i) for i in range(n)]
    return stacks_from_arrays([p[0] for p in pairs], [p[1] for p in pairs])


# --- one process: the helpers do nothing -------------------------------------------------


@pytest.fixture
def no_torchrun(monkeypatch):
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)


def test_without_torchrun_the_world_is_this_process(no_torchrun):
    model = torch.nn.BatchNorm2d(2)
    world = join("cpu")
    assert (world.rank, world.size, world.is_main) == (0, 1, True)
    assert world.device == torch.device("cpu")
    assert world.wrap(model, sync_bn=True) is model
    assert world.any(True) and not world.any(False) and world.same(3)
    assert not torch.distributed.is_initialized()


def test_reduced_metrics_of_one_process_are_its_own(no_torchrun):
    target = torch.tensor([[[[1.0, 1.0, 0.0, 0.0]]]])
    batch = dict(objects=target, boundaries=target, ignore=torch.zeros_like(target))
    metrics = MetricAccumulator()
    metrics.update(torch.tensor([[[0.9, 0.2, 0.7, 0.1]]]), torch.ones(1, 1, 4), batch)
    reduced = World(rank=0, size=1, device=torch.device("cpu")).reduce_metrics(metrics, 3.0, 4)
    # objects: tp 1 (pixel 0), fp 1 (pixel 2), fn 1 (pixel 1); boundaries: tp 2, fp 2, fn 0
    assert reduced["loss"] == 0.75
    assert reduced["objects_iou"] == pytest.approx(1 / 3)
    assert (reduced["boundaries_precision"], reduced["boundaries_recall"]) == (0.5, 1.0)


def test_sync_bn_on_the_cpu_is_refused_with_the_fix():
    two_processes = World(rank=0, size=2, device=torch.device("cpu"))
    with pytest.raises(ConfigError, match="Leave out --sync_bn"):
        two_processes.wrap(torch.nn.BatchNorm2d(2), sync_bn=True)


# --- two processes started by torch.multiprocessing -----------------------------------------


def _train_as_rank(rank, port, runs, data, out):
    """One of 2 processes: torchrun's environment, then the runs in turn.

    ``runs`` holds (settings, rank that asks to stop after its first batch or None).
    """
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(WORLD),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    results = []
    for index, (cfg, stopper) in enumerate(runs):
        stop, events = threading.Event(), []
        for event in train(cfg, data=data, stop=stop):
            events.append(event)
            if rank == stopper and isinstance(event, BatchEnded):
                stop.set()
        results.append(events)
        if rank == 0:  # the resumed run overwrites the model: keep each run's
            shutil.copy(cfg.model, out / f"run{index}.pt")
    (out / f"rank{rank}.pkl").write_bytes(pickle.dumps(results))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    """One epoch in 2 processes of batch 2 on 8 training images (no augmented copies), a
    second epoch resumed from the checkpoint, and a run that rank 1 alone asks to stop;
    the events per rank and run, and the weights after each run."""
    tmp = tmp_path_factory.mktemp("ddp")
    cfg = TrainConfig(
        **TINY_RUN,
        epochs=1,
        augments=0,
        device="cpu",
        tb_samples=1,
        mixed_precision=False,  # float32: compared weight by weight with one process
        model=str(tmp / "models" / "m.pt"),
    )
    data = TrainData(train=synthetic_stacks(8, seed=0), val=synthetic_stacks(3, seed=50))
    runs = [
        (cfg, None),
        (dataclasses.replace(cfg, epochs=2, resume=True), None),
        (dataclasses.replace(cfg, epochs=5, model=str(tmp / "stopped" / "m.pt")), 1),
    ]
    torch.multiprocessing.spawn(
        _train_as_rank, args=(_free_port(), runs, data, tmp), nprocs=WORLD, join=True
    )
    events = [pickle.loads((tmp / f"rank{r}.pkl").read_bytes()) for r in range(WORLD)]
    return cfg, data, events, tmp


def one_epoch_in_one_process(cfg, stacks):
    """The parameters after one epoch as 2 processes of batch B must compute them.

    Step k takes the k-th batch of 2B items of the single-process order of the epoch;
    rank r's batch is every second of them from the r-th (as DistributedSampler deals
    them), so the union of the ranks' batches is the single-process batch.  Each half
    goes through the network on its own: without SyncBatchNorm (which PyTorch runs only
    on CUDA) batch norm normalises each process's batch by that batch's statistics.  The
    loss is the mean of the halves' losses, whose gradient is DDP's averaged gradient.
    """
    torch.manual_seed(cfg.seed)
    model = build_model(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    dataset = SegmentationDataset(stacks, cfg, train=True)
    order = list(DistributedSampler(dataset, num_replicas=1, rank=0, seed=cfg.seed))
    step = WORLD * cfg.batch
    assert len(order) % step == 0  # no padded or dropped items: every step is the same
    for start in range(0, len(order), step):
        items = order[start : start + step]
        halves = [default_collate([dataset[i] for i in items[r::WORLD]]) for r in range(WORLD)]
        loss = sum(compute_loss(cfg, model(h["image"]), h)[0] for h in halves) / WORLD
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return dict(model.named_parameters())


def test_two_processes_train_the_model_one_process_trains_on_their_union(two_process_run):
    cfg, data, _, out = two_process_run
    trained = torch.load(out / "run0.pt")
    expected = one_epoch_in_one_process(cfg, data.train)
    torch.manual_seed(cfg.seed)
    initial = dict(build_model(cfg).named_parameters())

    def share_above(differences):  # share of the weights differing by more than lr / 10
        flat = torch.cat([d.detach().abs().flatten() for d in differences])
        return (flat > 0.1 * cfg.lr).float().mean().item()

    # Adam moves most weights by about lr per step.  Measured: every weight within
    # 2.3e-6 of the expected one; a missing gradient all-reduce or both ranks training on
    # the same items puts 69 % of the weights more than lr / 10 away (so does batch norm
    # over the global batch of 4, i.e. one process with batch 4 and no SyncBatchNorm).
    assert share_above(expected[k] - initial[k] for k in expected) > 0.5
    assert share_above(trained[k] - expected[k] for k in expected) < 0.01


def test_every_rank_gets_the_same_metrics_and_validation_covers_each_image_once(two_process_run):
    cfg, data, events, out = two_process_run
    per_rank = [
        [e for run in rank[:2] for e in run if isinstance(e, EpochEnded)] for rank in events
    ]
    assert [e.epoch for e in per_rank[0]] == [0, 1]
    for mine, theirs in zip(*per_rank, strict=True):
        assert (mine.train, mine.val, mine.lr) == (theirs.train, theirs.val, theirs.lr)
    # they are those of the saved model on the 3 validation images, each counted once:
    # rank r validates images r, r + 2, ... as one batch (the loss is a mean per batch)
    model = build_model(cfg)
    model.load_state_dict(torch.load(out / "run0.pt"))
    model.eval()
    val_set = SegmentationDataset(data.val, cfg, train=False)
    metrics, loss_sum = MetricAccumulator(), 0.0
    with torch.inference_mode():
        for share in ([0, 2], [1]):
            batch = default_collate([val_set[i] for i in share])
            logits = model(batch["image"])
            loss_sum += compute_loss(cfg, logits, batch)[0].item() * len(share)
            metrics.update(*probabilities(cfg, logits), batch)
    pixels = {k: v for k, v in per_rank[0][0].val.items() if k not in ("ap", "ap50")}
    assert pixels == pytest.approx({"loss": loss_sum / 3, **metrics.compute()})
    assert 0.0 <= per_rank[0][0].val["ap"] <= 1.0  # rank 0 scores the instances for all


def test_only_rank_0_writes_and_resuming_continues_on_every_rank(two_process_run):
    cfg, _, events, _ = two_process_run
    models = os.path.dirname(cfg.model)
    for rank in events:
        first, resumed, _ = rank
        assert isinstance(first[-1], TrainFinished) and isinstance(resumed[-1], TrainFinished)
        assert resumed[0] == TrainStarted(
            epochs=2,
            batches_per_epoch=2,
            train_samples=8,
            val_samples=3,
            device="cpu (float32)",
            start_epoch=1,
        )
    expected = {
        f"m{kind}.{ext}"
        for kind in (
            "",
            "-best-val-loss",
            "-best-val-objects-iou",
            "-best-val-boundaries-iou",
            "-best-val-ap",
        )
        for ext in ("pt", "yaml")
    } | {"m-train-state.pt", "m-log.csv", "tensorboard"}
    assert set(os.listdir(models)) == expected  # no temporary files left
    # one TensorBoard file per run, both from rank 0's process (the name ends in .pid.n)
    tensorboard = os.listdir(os.path.join(models, "tensorboard", "m"))
    assert len(tensorboard) == 2 and len({name.split(".")[-2] for name in tensorboard}) == 1
    with open(os.path.join(models, "m-log.csv")) as fh:
        assert [row["epoch"] for row in csv.DictReader(fh)] == ["0", "1"]
    saved = yaml.safe_load(open(cfg.model.replace(".pt", ".yaml")))
    assert (saved["world_size"], saved["batch"], saved["record"]["epochs_trained"]) == (WORLD, 2, 2)


def test_a_stop_asked_for_in_one_process_stops_every_process(two_process_run):
    _, _, events, _ = two_process_run
    for rank in events:
        stopped = rank[2]  # rank 1 set its stop event after its first batch
        assert sum(isinstance(e, BatchEnded) for e in stopped) == 1
        assert (stopped[-1].reason, stopped[-1].epochs_run) == ("stopped", 1)


# --- torchrun and the command line ---------------------------------------------------------


def test_torchrun_trains_from_the_command_line_and_rank_0_alone_prints(tmp_path):
    from napari_cellseg.data.synthetic import write_dataset

    data = write_dataset(tmp_path / "data", 8, shape=(224, 224), seed=3)  # val: >= 100 objects
    model = tmp_path / "models" / "nuclei.pt"
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_ENV}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            str(WORLD),
            "-m",
            "napari_cellseg.train",
            "--train_data",
            str(data),
            "--val_fraction",
            "0.5",
            "--model",
            str(model),
            "--epochs",
            "2",
            "--batch",
            "1",
            "--augments",
            "1",
            *as_flags(TINY_NETWORK),
            "--num_workers",
            "0",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("epoch 2/2") == 1
    assert result.stdout.count("segmentation settings tuned") == 1
    saved = yaml.safe_load(model.with_name("nuclei-best-val-loss.yaml").read_text())
    assert saved["world_size"] == WORLD and "postprocess" in saved["record"]
    assert len(list((model.parent / "tensorboard" / "nuclei").iterdir())) == 1  # one writer
    with open(model.with_name("nuclei-log.csv")) as fh:
        assert [row["epoch"] for row in csv.DictReader(fh)] == ["0", "1"]
