"""The PyTorch Dataset of training and validation samples.

Each 2D slice of each stack is one sample (a large one several).  Its pipeline:
normalise (per slice) -> (``remove_blobs``) -> (``object_diameter``: rescale the stack so
its median object diameter becomes that, :mod:`napari_cellseg.data.scale`) -> bring to
``im_dim`` (``trim_method``) -> augment (training copies only) -> derive targets from
the resulting labels.

``trim_method`` ``padding``/``reflect`` cannot shrink an image larger than ``im_dim``;
such an image is cropped to ``im_dim`` first: in training at random positions drawn
anew for every sample and epoch, as many crops per slice as cover its area once (a
large annotated image counts as much as the same area in small ones), in validation as
the fixed grid of crops that covers the image
(:func:`napari_cellseg.data.trim.crop_starts`), each crop one sample.

Everything that does not change between epochs (normalised images, trimmed images,
labels and un-augmented targets) is computed once at construction, so un-augmented
samples are cheap.  Sample ``index`` of epoch ``epoch`` draws its randomness from
``numpy.random.default_rng([cfg.seed, epoch, index])``: the same in every worker
process and every run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch  # noqa: TID253 - this module is the Dataset, it must import torch

from napari_cellseg.config import TrainConfig
from napari_cellseg.data.augment import augment_pair
from napari_cellseg.data.io import Stack
from napari_cellseg.data.labels import median_diameter
from napari_cellseg.data.normalize import normalize_image
from napari_cellseg.data.scale import rescale, scale_factor
from napari_cellseg.data.targets import (
    make_targets,
    remove_blobs,
    separation_mask,
    unet_classes,
)
from napari_cellseg.data.trim import crop_starts, random_start, trim
from napari_cellseg.errors import DataError

__all__ = ["SegmentationDataset"]


@dataclass
class _View:
    """A normalised stack, or one fixed crop of it.

    ``targets`` ((Z, 4, im_dim, im_dim): objects, boundaries, ignore, separation) is set when
    ``image`` and ``labels`` are already trimmed to ``im_dim``; it is None for a stack
    that is cropped at random per sample.
    """

    image: np.ndarray
    labels: np.ndarray
    targets: np.ndarray | None


class SegmentationDataset(torch.utils.data.Dataset):
    """Samples of image slices with their targets, for training or validation.

    Parameters
    ----------
    stacks
        Images with labels (every ``Stack.labels`` must be set).
    cfg
        Uses ``im_dim``, ``trim_method``, ``channels``, ``augments``, ``seed``,
        ``blob_label``, ``remove_blobs``, ``boundary_thickness``,
        ``touching_boundaries``, ``enable_elastic``, ``gamma_augment`` and
        ``separation_weight`` (0: the ``separation`` masks are all 0, not computed).
    train
        True: ``len = n_samples * (1 + cfg.augments)``; item ``i`` is sample
        ``i % n_samples``, as is for ``i < n_samples``, else an augmented copy.
        False: one un-augmented item per sample.

    Notes
    -----
    An item is a dict of tensors: ``image`` float32 ``(C, im_dim, im_dim)`` where
    channel ``c`` of slice ``i`` is slice ``clip(i - C // 2 + c, 0, Z - 1)`` of the
    same stack; ``objects``, ``boundaries``, ``ignore`` and ``separation`` (pixels near
    two objects, :func:`~napari_cellseg.data.targets.separation_mask`) float32
    ``(1, im_dim, im_dim)``; ``classes`` int64 ``(im_dim, im_dim)`` (0 background,
    1 object, 2 boundary).
    """

    def __init__(self, stacks: Sequence[Stack], cfg: TrainConfig, *, train: bool) -> None:
        self.cfg = cfg
        self.train = train
        self.epoch = 0
        self._views: list[_View] = []
        for stack in stacks:
            self._views.extend(self._make_views(stack))
        self._samples = [
            (v, z)
            for v, view in enumerate(self._views)
            for z in range(len(view.image))
            for _ in range(self._crops_per_slice(view))
        ]
        if not self._samples:
            kind = "training" if train else "validation"
            raise DataError(f"No {kind} images; give at least one image with labels.")

    def _make_views(self, stack: Stack) -> list[_View]:
        cfg = self.cfg
        if stack.labels is None:
            raise DataError(
                f"Image '{stack.name}' has no labels; training and validation need a label "
                "image for every image."
            )
        image, labels = normalize_image(stack.image), stack.labels
        if cfg.remove_blobs and cfg.blob_label is not None:
            image, labels = remove_blobs(image, labels, cfg.blob_label)
        if cfg.object_diameter:
            factor = scale_factor(cfg.object_diameter, median_diameter(labels, cfg.blob_label))
            image, labels = rescale(image, factor), rescale(labels, factor, order=0)
        shape, size = image.shape[-2:], cfg.im_dim
        if cfg.trim_method == "resize" or max(shape) <= size:
            return [self._fixed_view(image, labels)]
        if self.train:
            return [_View(image, labels, None)]
        return [
            self._fixed_view(
                image[:, y : y + size, x : x + size], labels[:, y : y + size, x : x + size]
            )
            for y, x in crop_starts(shape, size)
        ]

    def _crops_per_slice(self, view: _View) -> int:
        """Random crops drawn per slice and epoch: as many as cover its area once."""
        if view.targets is not None:
            return 1
        height, width = view.image.shape[-2:]
        return math.ceil(height * width / self.cfg.im_dim**2)

    def _fixed_view(self, image: np.ndarray, labels: np.ndarray) -> _View:
        image = trim(image, self.cfg.im_dim, self.cfg.trim_method, order=1)[0]
        labels = trim(labels, self.cfg.im_dim, self.cfg.trim_method, order=0)[0]
        targets = np.stack([np.stack(self._targets(z)) for z in labels])
        return _View(image, labels, targets)

    def _targets(self, labels: np.ndarray) -> tuple[np.ndarray, ...]:
        """Objects, boundaries, ignore and separation masks of a label slice."""
        cfg = self.cfg
        objects, boundaries, ignore = make_targets(
            labels,
            blob_label=cfg.blob_label,
            boundary_thickness=cfg.boundary_thickness,
            touching_boundaries=cfg.touching_boundaries,
        )
        separation = (
            separation_mask(labels, blob_label=cfg.blob_label)
            if cfg.separation_weight
            else np.zeros_like(objects)
        )
        return objects, boundaries, ignore, separation

    def set_epoch(self, epoch: int) -> None:
        """Draw the random crops and augmentations of ``epoch`` from now on."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self._samples) * (1 + self.cfg.augments if self.train else 1)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        cfg, size = self.cfg, self.cfg.im_dim
        v, z = self._samples[index % len(self._samples)]
        augmented = index >= len(self._samples)
        view = self._views[v]
        rng = np.random.default_rng([cfg.seed, self.epoch, index])
        channels = np.clip(z - cfg.channels // 2 + np.arange(cfg.channels), 0, len(view.image) - 1)
        if view.targets is None:
            y, x = random_start(view.image.shape[-2:], size, rng)
            image = trim(view.image[channels, y : y + size, x : x + size], size, cfg.trim_method)[0]
            labels = trim(view.labels[z, y : y + size, x : x + size], size, cfg.trim_method)[0]
        else:
            image, labels = view.image[channels], view.labels[z]
        if augmented:
            image, labels = augment_pair(
                image, labels, rng, elastic=cfg.enable_elastic, gamma=cfg.gamma_augment
            )
        if augmented or view.targets is None:
            objects, boundaries, ignore, separation = self._targets(labels)
        else:
            objects, boundaries, ignore, separation = view.targets[z]
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)),
            "objects": _mask_tensor(objects),
            "boundaries": _mask_tensor(boundaries),
            "ignore": _mask_tensor(ignore),
            "separation": _mask_tensor(separation),
            "classes": torch.from_numpy(unet_classes(objects, boundaries).astype(np.int64)),
        }


def _mask_tensor(mask: np.ndarray) -> torch.Tensor:
    """``(H, W)`` 0/1 mask -> float32 tensor ``(1, H, W)``."""
    return torch.from_numpy(mask[np.newaxis].astype(np.float32))
