"""Choose the segmentation thresholds that score best on validation data.

The probability maps are predicted once; only the seeded watershed
(:mod:`napari_cellseg.segmentation.instances`) runs again for each candidate.  The search: a
grid over ``obj_threshold`` x ``bnd_threshold``, then the 8 neighbours of the best
pair at half the grid step; every ``split_depth`` and ``min_size`` of the grid is tried
for every pair (merging regions and removing small objects is cheap: the watershed
result is reused).  Pairs that give the same seeds as an earlier pair with the same
``obj_threshold`` (with softmax maps every ``bnd_threshold`` above ``1 -
obj_threshold`` does) reuse its scores.  Last, with the best pair and depth, every
``min_size`` is tried with every ``small_object_prob`` (which small objects the network
is sure of stay).  The score is the pooled mean AP over IoU 0.5, 0.55, ..., 0.95
(:mod:`napari_cellseg.analysis.matching`); ties keep the earlier candidate.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from napari_cellseg.analysis.matching import (
    THRESHOLDS,
    count_matches,
    iou_matrix,
    match_counts,
    summarize,
)
from napari_cellseg.data.io import Stack
from napari_cellseg.data.labels import count_objects
from napari_cellseg.errors import DataError
from napari_cellseg.segmentation.instances import (
    instances,
    merge_shallow,
    object_peaks,
    watershed_labels,
)
from napari_cellseg.segmentation.settings import SegmentationSettings

__all__ = [
    "TunedSettings",
    "tune_postprocessing",
    "tune_on_annotation",
    "count_tuning_objects",
    "score_postprocessing",
    "GRID",
    "REFINE_STEP",
    "MIN_TUNING_OBJECTS",
]

GRID = {
    "obj_threshold": (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    "bnd_threshold": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8),
    "split_depth": (0.0, 0.25, 0.5, 0.75, 1.0),
    "min_size": (0, 5, 10, 20, 40, 80),
    "small_object_prob": (1.0, 0.95, 0.9, 0.85, 0.8, 0.7),
}
"""The coarse search grid of the thresholds; the depths and sizes are tried for each pair,
the probabilities that keep small objects with the best pair and depth (1.0 first: a tie
keeps every small object out)."""

MIN_TUNING_OBJECTS = 100
"""Objects needed to tune the segmentation settings on (training tunes only with as many).

With fewer the tuned settings fit the few objects' noise: the built-in model fine-tuned
on one 360 x 360 DSB2018 image (24 nuclei, a fifth held out) scored mean AP 0.684 on the
10 other images of its kind with settings tuned on the held-out strip, 0.717 with the
settings it started with."""

REFINE_STEP = 0.05
"""Step of the refinement around the best grid pair (half the grid step)."""

ProbabilityMaps = Sequence[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class TunedSettings:
    """The result of a tuning: the best settings found and the score they reach.

    Attributes
    ----------
    settings : SegmentationSettings
        The settings with the highest pooled mean AP (ties keep the earlier candidate).
    mean_ap : float
        Their pooled mean AP over IoU 0.5, 0.55, ..., 0.95.
    """

    settings: SegmentationSettings
    mean_ap: float


def tune_postprocessing(
    maps: ProbabilityMaps,
    stacks: Sequence[Stack],
    *,
    ignore_label: int | None = 1,
    progress: Callable[[int, int], object] | None = None,
) -> TunedSettings:
    """Search the segmentation settings maximising the pooled mean AP on ``stacks``.

    Parameters
    ----------
    maps
        The ``(objects, boundaries)`` probability maps of each stack, shaped like its
        image (a predictor's :meth:`~napari_cellseg.inference.predictor.Predictor.predict`).
    stacks
        Validation images with labels.
    ignore_label
        Ground-truth blob value (see :func:`~napari_cellseg.analysis.matching.matching`):
        the model's ``blob_label``.
    progress
        Called with (candidates done, candidates planned) after each watershed setting.

    Returns
    -------
    TunedSettings
        The best settings and the mean AP they reach.

    Raises
    ------
    DataError
        When a stack has no labels, or the maps do not match the stacks.
    """
    pages = _pages(list(maps), stacks)
    coarse = list(itertools.product(GRID["obj_threshold"], GRID["bnd_threshold"]))
    planned = len(coarse) + 8 + 1
    done = 0
    scored: dict[tuple, tuple[float, dict]] = {}

    def search(candidates) -> tuple[float, dict]:
        nonlocal done
        results = []
        for obj, bnd in candidates:
            key = (obj, _seeds_digest(pages, obj, bnd))
            if key not in scored:
                scored[key] = _best_for_pair(pages, obj, bnd, ignore_label)
            score, params = scored[key]
            results.append((score, {**params, "bnd_threshold": bnd}))
            done += 1
            if progress:
                progress(done, planned)
        return max(results, key=lambda r: r[0])

    best = search(coarse)
    step = REFINE_STEP
    obj, bnd = best[1]["obj_threshold"], best[1]["bnd_threshold"]
    refine = [
        (round(obj + dy * step, 3), round(bnd + dx * step, 3))
        for dy, dx in itertools.product((-1, 0, 1), repeat=2)
        if (dy, dx) != (0, 0) and 0 < obj + dy * step < 1 and 0 < bnd + dx * step <= 1
    ]
    best = max(best, search(refine), key=lambda r: r[0]) if refine else best
    mean_ap, params = _best_small_objects(pages, best[1], ignore_label)
    if progress:
        progress(planned, planned)
    return TunedSettings(SegmentationSettings.of(params), float(mean_ap))


def score_postprocessing(
    maps: ProbabilityMaps,
    stacks: Sequence[Stack],
    settings: SegmentationSettings,
    *,
    ignore_label: int | None = 1,
) -> float:
    """Pooled mean AP of the segmentation ``settings`` on ``stacks`` (maps as above)."""
    counts = sum(
        match_counts(gt, instances(o, b, **settings.as_dict()), ignore_label=ignore_label)
        for o, b, gt in _pages(list(maps), stacks)
    )
    return summarize(counts, THRESHOLDS).mean_ap


def count_tuning_objects(stacks: Sequence[Stack], blob_label: int | None) -> int:
    """Objects of the stacks' labels to tune on, each slice's counted on its own
    (compare with :data:`MIN_TUNING_OBJECTS`)."""
    return sum(count_objects(page, blob_label) for stack in stacks for page in stack.labels)


def tune_on_annotation(
    objects: np.ndarray,
    boundaries: np.ndarray,
    truth: np.ndarray,
    current: SegmentationSettings,
    *,
    blob_label: int | None,
) -> tuple[TunedSettings, float, int]:
    """Tune on one annotated image (or stack): a user's labels of the maps shown.

    Returns
    -------
    tuned : TunedSettings
        The settings that best reproduce ``truth`` and their mean AP.
    before : float
        The mean AP of the ``current`` settings.
    objects : int
        Objects of ``truth`` tuned on (per slice).

    Raises
    ------
    DataError
        When ``truth`` holds no object.
    """
    truth = truth.reshape(-1, *truth.shape[-2:])
    count = sum(count_objects(page, blob_label) for page in truth)
    if not count:
        raise DataError(
            "The labels layer holds no objects to tune on: paint the objects of the image "
            "(values 2, 3, …), or correct the predicted instances, then tune again."
        )
    pages, maps = [Stack("annotation", truth, truth)], [(objects, boundaries)]
    before = score_postprocessing(maps, pages, current, ignore_label=blob_label)
    return tune_postprocessing(maps, pages, ignore_label=blob_label), before, count


def _pages(maps: ProbabilityMaps, stacks: Sequence[Stack]) -> list[tuple]:
    """Every page as (objects, boundaries, ground truth), all 2D."""
    if len(maps) != len(stacks):
        raise DataError(f"{len(maps)} probability maps for {len(stacks)} images; give one each.")
    pages = []
    for (objects, boundaries), stack in zip(maps, stacks, strict=True):
        if stack.labels is None:
            raise DataError(
                f"Image '{stack.name}' has no labels; tuning the post-processing needs "
                "validation images with label images."
            )
        objects, boundaries = (np.reshape(m, stack.labels.shape) for m in (objects, boundaries))
        pages += list(zip(objects, boundaries, stack.labels, strict=True))
    return pages


def _seeds_digest(pages, obj: float, bnd: float) -> bytes:
    """A fingerprint of the seed masks of every page for one threshold pair."""
    digest = hashlib.blake2b(digest_size=16)
    for objects, boundaries, _ in pages:
        digest.update(np.packbits((objects > obj) & (boundaries < bnd)).tobytes())
    return digest.digest()


def _best_for_pair(pages, obj: float, bnd: float, ignore_label) -> tuple[float, dict]:
    """The best ``split_depth`` and ``min_size`` for one threshold pair, and its mean AP."""
    depths, sizes = GRID["split_depth"], GRID["min_size"]
    counts = np.zeros((len(depths), len(sizes), len(THRESHOLDS), 4))
    for objects, boundaries, gt in pages:
        labels = watershed_labels(objects, boundaries, obj, bnd)
        height = objects - boundaries
        for d, depth in enumerate(depths):
            merged = merge_shallow(labels, height, depth)
            iou, areas, _ = iou_matrix(gt, merged, ignore_label=ignore_label)
            for s, min_size in enumerate(sizes):
                counts[d, s] += count_matches(iou[:, areas >= min_size])
    scores = [[summarize(c, THRESHOLDS).mean_ap for c in row] for row in counts]
    d, s = np.unravel_index(int(np.argmax(scores)), counts.shape[:2])
    return scores[d][s], {
        "obj_threshold": obj,
        "bnd_threshold": bnd,
        "split_depth": depths[d],
        "min_size": sizes[s],
        "small_object_prob": 1.0,
    }


_WATERSHED_KEYS = ("obj_threshold", "bnd_threshold", "split_depth")


def _best_small_objects(pages, params: dict, ignore_label) -> tuple[float, dict]:
    """The best ``min_size`` and ``small_object_prob`` for the other settings of ``params``."""
    sizes, probs = GRID["min_size"], GRID["small_object_prob"]
    counts = np.zeros((len(sizes), len(probs), len(THRESHOLDS), 4))
    for objects, boundaries, gt in pages:
        merged = watershed_labels(objects, boundaries, *(params[k] for k in _WATERSHED_KEYS))
        iou, areas, values = iou_matrix(gt, merged, ignore_label=ignore_label)
        peaks = object_peaks(merged, objects, np.ones(int(merged.max(initial=0)) + 1, bool))
        for s, min_size in enumerate(sizes):
            for p, prob in enumerate(probs):
                counts[s, p] += count_matches(iou[:, (areas >= min_size) | (peaks[values] > prob)])
    scores = [[summarize(c, THRESHOLDS).mean_ap for c in row] for row in counts]
    s, p = np.unravel_index(int(np.argmax(scores)), counts.shape[:2])
    return scores[s][p], {**params, "min_size": sizes[s], "small_object_prob": probs[p]}
