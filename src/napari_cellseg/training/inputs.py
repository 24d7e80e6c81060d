"""What a training run reads: its images as stacks, DataLoaders, fixed samples, notes.

Each rank of a torchrun run loads its share (:func:`make_loaders`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_cellseg.config import TrainConfig
from napari_cellseg.data.io import Stack, list_folder, read_folder
from napari_cellseg.data.labels import count_objects
from napari_cellseg.data.stacks import drop_unlabelled_slices, split_stacks
from napari_cellseg.errors import DataError
from napari_cellseg.training.distributed import World

__all__ = [
    "TrainData",
    "load_stacks",
    "median_side",
    "make_loaders",
    "seed_everything",
    "to_device",
]


@dataclass
class TrainData:
    """In-memory training data (napari layers); ``val=None`` holds out ``val_fraction``."""

    train: list[Stack]
    val: list[Stack] | None = None


def seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_stacks(
    cfg: TrainConfig, data: TrainData | None
) -> tuple[list[Stack], list[Stack], list[str]]:
    """Training and validation stacks, and notes on the slices left out (no labels)."""
    train_stacks, notes = (data.train, []) if data else _read_training_folder(cfg)
    if cfg.channels > 1 and all(len(stack.image) == 1 for stack in train_stacks):
        raise DataError(
            f"Setting 'channels' is {cfg.channels}, but every training image is a single 2D "
            "image: there are no neighbouring slices to give the network as channels (each "
            "channel would repeat the image).  Set channels to 1, or train on z-stacks."
        )
    train_stacks, dropped = drop_unlabelled_slices(train_stacks)
    notes += dropped
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


def _read_training_folder(cfg: TrainConfig) -> tuple[list[Stack], list[str]]:
    """The training folder's stacks; with ``reviewed_only``, a label image's objects its
    review record does not confirm are ignored (blob), and a note says how many train."""
    from napari_cellseg.analysis.review import read_record, record_path, reviewed_training_labels

    files = list_folder(cfg.train_data)
    stacks, notes = [file.read() for file in files], []
    for stack, file in zip(stacks, files, strict=True):
        record = record_path(file.labels)
        if not cfg.reviewed_only or not record.is_file():
            continue
        if len(stack.labels) > 1:
            raise DataError(
                f"'{record}' is a review of a 2D label image, but '{file.labels}' has "
                f"{len(stack.labels)} pages: remove the record, or set reviewed_only to false."
            )
        index, review = read_record(record)
        fix = "set reviewed_only to false (--no-reviewed_only)"
        name = f"'{file.labels}' (its record '{record.name}')"
        page = reviewed_training_labels(stack.labels[0], index, review, cfg.blob_label, name, fix)
        stack.labels = page[None]
        kept = count_objects(stack.labels, cfg.blob_label)
        notes.append(
            f"'{stack.name}': its {kept} reviewed objects train; the objects its review record "
            "does not confirm (accepted or added) are ignored."
        )
    return stacks, notes


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


def median_side(stacks: list[Stack]) -> float:
    """Median image side of the training data (prediction rescales to the trained scale)."""
    return float(np.median([np.sqrt(s.image.shape[-2] * s.image.shape[-1]) for s in stacks]))


def make_loaders(
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


def to_device(batch: dict, device) -> dict:
    """A batch's tensors on ``device``, the image prepared for the network."""
    from napari_cellseg.models.registry import prepare_batch

    out = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    out["image"] = prepare_batch(out["image"], device)
    return out
