"""Stacks from arrays (napari layers) and the splits of stacks a training run makes.

A training run holds out a share of its stacks for validation (:func:`split_stacks`) and
leaves out the slices that have no labels (:func:`drop_unlabelled_slices`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napari_cellseg.data.io import Stack, check_pair
from napari_cellseg.errors import DataError

__all__ = ["stacks_from_arrays", "split_stacks", "drop_unlabelled_slices"]


def stacks_from_arrays(
    images: np.ndarray | Sequence[np.ndarray],
    labels: np.ndarray | Sequence[np.ndarray | None] | None = None,
    names: Sequence[str] | None = None,
) -> list[Stack]:
    """Make checked stacks from in-memory arrays, e.g. napari layers.

    Parameters
    ----------
    images
        One array or a list of arrays, each 2D ``(H, W)`` or a stack ``(Z, H, W)``
        (colour layers must be converted to grayscale first).
    labels
        None, or one label array per image (same shape, integer), or None entries.
    names
        Layer names used in error messages and as ``Stack.name``; default ``image 0``, ...

    Raises
    ------
    DataError
        When the numbers of images, labels and names differ, an array is not 2D or 3D,
        or labels do not fit their image; the message names the layer.
    """
    images = [images] if isinstance(images, np.ndarray) else list(images)
    if labels is None:
        labels = [None] * len(images)
    labels = [labels] if isinstance(labels, np.ndarray) else list(labels)
    names = list(names) if names is not None else [f"image {i}" for i in range(len(images))]
    if not images:
        raise DataError("No image given; choose at least one image layer.")
    if not len(images) == len(labels) == len(names):
        raise DataError(
            f"Got {len(images)} images, {len(labels)} label layers and {len(names)} names; "
            "give one label layer per image layer."
        )
    stacks = []
    for image, label, name in zip(images, labels, names, strict=True):
        image = np.asarray(image)
        if image.ndim not in (2, 3):
            raise DataError(
                f"Layer '{name}' has shape {image.shape}; use a 2D image or a 3D stack "
                "(convert colour images to grayscale)."
            )
        image = image.reshape((-1, *image.shape[-2:]))
        if label is not None:
            label = np.asarray(label)
            if label.ndim == 2:
                label = label[np.newaxis]
            check_pair(image, label, f"Layer '{name}' and its labels")
        stacks.append(Stack(str(name), image, label))
    return stacks


def split_stacks(
    stacks: Sequence[Stack], fraction: float, seed: int
) -> tuple[list[Stack], list[Stack]]:
    """Hold out a random ``fraction`` of all slices for validation.

    Slices are drawn at random over all stacks; the slices of one stack that land on
    the same side stay together, in order, under the stack's name (so a slice's
    neighbours in a training stack are its nearest remaining slices).  A single slice
    (one annotated image, the common case) is split in space instead: the last
    ``fraction`` of its longer side is held out.

    Returns
    -------
    train, val : list of Stack
        ``val`` holds ``round(fraction * n_slices)`` slices, at least 1 and at most
        ``n_slices - 1`` when ``fraction > 0``.

    Raises
    ------
    DataError
        When ``fraction`` is not in [0, 1).
    """
    if not 0 <= fraction < 1:
        raise DataError(f"val_fraction is {fraction}; choose a value in [0, 1), e.g. 0.2.")
    n = sum(len(s.image) for s in stacks)
    if fraction == 0:
        return list(stacks), []
    if n == 1:
        return _split_in_space(stacks[0], fraction)
    n_val = min(max(round(fraction * n), 1), n - 1)
    is_val = np.zeros(n, bool)
    is_val[np.random.default_rng(seed).permutation(n)[:n_val]] = True
    train, val = [], []
    start = 0
    for stack in stacks:
        chosen = is_val[start : start + len(stack.image)]
        start += len(stack.image)
        for side, keep in ((train, ~chosen), (val, chosen)):
            if keep.any():
                labels = stack.labels[keep] if stack.labels is not None else None
                side.append(Stack(stack.name, stack.image[keep], labels))
    return train, val


def drop_unlabelled_slices(stacks: Sequence[Stack]) -> tuple[list[Stack], list[str]]:
    """Leave out the slices without labels of stacks whose other slices hold some.

    Annotating a few slices of a stack is common; its other slices are not annotated,
    not empty, and would teach the network that their objects are background.  A
    stack without any labels stays whole (an all-background image is a choice).

    Returns
    -------
    stacks : list of Stack
        The kept slices of each stack, in order, under its name.
    notes : list of str
        One sentence per stack that lost slices, naming it.
    """
    kept, notes = [], []
    for stack in stacks:
        if stack.labels is None:
            kept.append(stack)
            continue
        labelled = stack.labels.reshape(len(stack.labels), -1).any(axis=1)
        if labelled.all() or not labelled.any():
            kept.append(stack)
            continue
        kept.append(Stack(stack.name, stack.image[labelled], stack.labels[labelled]))
        notes.append(
            f"'{stack.name}': {labelled.sum()} of {len(labelled)} slices hold labels; "
            "the others are left out."
        )
    return kept, notes


def _split_in_space(stack: Stack, fraction: float) -> tuple[list[Stack], list[Stack]]:
    """Split a one-slice stack along its longer side: train before, validation after."""
    axis = -1 if stack.image.shape[-1] >= stack.image.shape[-2] else -2
    length = stack.image.shape[axis]
    cut = length - min(max(round(fraction * length), 1), length - 1)

    def part(array: np.ndarray | None, index: slice) -> np.ndarray | None:
        return None if array is None else np.take(array, range(length)[index], axis=axis)

    before, after = slice(0, cut), slice(cut, None)
    train = Stack(stack.name, part(stack.image, before), part(stack.labels, before))
    val = Stack(stack.name, part(stack.image, after), part(stack.labels, after))
    return [train], [val]
