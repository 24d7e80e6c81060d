"""Object matching scores of instance labels against ground truth (DSB2018 / StarDist).

Ground-truth and predicted objects are paired one-to-one by an optimal assignment on
their intersection over union (IoU); a pair whose IoU reaches a threshold is a true
positive (TP), an unpaired prediction a false positive (FP), an unpaired ground-truth
object a false negative (FN).  For each threshold:

- ``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)``
- ``ap = TP / (TP + FP + FN)``: the "average precision" of the 2018 Data Science Bowl
  as StarDist reports it (``accuracy`` in ``stardist.matching``)
- ``f1 = 2 TP / (2 TP + FP + FN)``
- ``mean_matched_iou``: mean IoU of the true positives
- ``pq = sum of matched IoU / (TP + FP / 2 + FN / 2)``: panoptic quality, Eq. 1 of
  Kirillov et al., "Panoptic Segmentation", CVPR 2019, doi:10.1109/CVPR.2019.00963

Every ratio is 0 when TP is 0.  Over several images the counts (and the matched IoU
sums) are pooled before the ratios are taken, as ``stardist.matching.matching_dataset``
does; ``mean_ap`` is the mean of ``ap`` over the thresholds (0.5, 0.55, ..., 0.95).

Blob regions of the ground truth (pixels of value ``ignore_label``) are not objects: a
prediction with more than half of its area inside them is neither TP nor FP.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from napari_cellseg.data.labels import sequential_labels
from napari_cellseg.errors import DataError

__all__ = [
    "THRESHOLDS",
    "METRICS",
    "ThresholdScores",
    "ImageScores",
    "MatchingResult",
    "matching",
    "matching_dataset",
    "MatchingScores",
    "page_names",
    "match_counts",
    "count_matches",
    "iou_matrix",
    "summarize",
    "format_table",
]

THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
"""IoU thresholds 0.5, 0.55, ..., 0.95."""


class ThresholdScores(NamedTuple):
    """The scores at one IoU threshold (see the module notes for each figure)."""

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    ap: float
    f1: float
    pq: float
    mean_matched_iou: float


METRICS = ThresholdScores._fields
"""The figures reported per threshold, in this order."""


@dataclass(frozen=True)
class ImageScores:
    """The scores of one image of several: its ``name`` and its scores per threshold."""

    name: str
    thresholds: dict[float, ThresholdScores]


@dataclass(frozen=True)
class MatchingResult:
    """Scores of :func:`matching` (one image) or pooled over images (:func:`matching_dataset`).

    Attributes
    ----------
    thresholds : dict of float to ThresholdScores
        The scores at each IoU threshold, e.g. ``result.thresholds[0.5].ap``.
    mean_ap : float
        The mean of ``ap`` over the thresholds (0 without thresholds).
    images : tuple of ImageScores
        Each image's own scores, when several were pooled (empty for one image).
    """

    thresholds: dict[float, ThresholdScores]
    mean_ap: float
    images: tuple[ImageScores, ...] = ()

    def as_dict(self) -> dict:
        """The scores as plain data (``evaluate --json``): ``{"thresholds": {"0.5": {tp, ...},
        ...}, "mean_ap": ..., "images": [{"name", "thresholds"}, ...]}`` (images when pooled)."""
        data = {"thresholds": _by_key(self.thresholds), "mean_ap": self.mean_ap}
        if self.images:
            data["images"] = [
                {"name": im.name, "thresholds": _by_key(im.thresholds)} for im in self.images
            ]
        return data


def _by_key(scores: dict[float, ThresholdScores]) -> dict[str, dict]:
    return {f"{t:g}": s._asdict() for t, s in scores.items()}


def matching(
    gt: np.ndarray,
    pred: np.ndarray,
    *,
    thresholds: Sequence[float] = THRESHOLDS,
    ignore_label: int | None = 1,
) -> MatchingResult:
    """Match the objects of one label image against its ground truth.

    Parameters
    ----------
    gt, pred : np.ndarray
        Integer label images of the same shape, 0 background (any dimensionality; a
        stack counts as one image).
    thresholds : sequence of float
        IoU thresholds at which a pair counts as a true positive.
    ignore_label : int or None
        Ground-truth value of blob regions (excluded, see the module notes); None =
        every non-zero ground-truth value is an object.

    Returns
    -------
    MatchingResult
        The scores per threshold and their mean AP.

    Examples
    --------
    Two 10 x 10 squares, the prediction shifted by 5 pixels: IoU = 50 / 150 = 1/3.

    >>> gt = np.zeros((40, 40), np.uint16)
    >>> gt[10:20, 10:20] = 2
    >>> pred = np.roll(gt, 5, axis=0)
    >>> matching(gt, pred, thresholds=(0.3, 0.5)).thresholds[0.3].ap
    1.0
    >>> matching(gt, pred, thresholds=(0.3, 0.5)).thresholds[0.5].fp
    1
    """
    return summarize(
        match_counts(gt, pred, thresholds=thresholds, ignore_label=ignore_label), thresholds
    )


def matching_dataset(
    gts: Iterable[np.ndarray],
    preds: Iterable[np.ndarray],
    *,
    names: Sequence[str] | None = None,
    thresholds: Sequence[float] = THRESHOLDS,
    ignore_label: int | None = 1,
) -> MatchingResult:
    """Match several images; the scores pool the counts of all of them.

    Parameters
    ----------
    gts, preds : iterables of np.ndarray
        Pairs of label images (see :func:`matching`), as many of one as of the other.
    names : sequence of str, optional
        One name per image for the ``images`` entries; default ``"0"``, ``"1"``, ...
    thresholds, ignore_label
        As in :func:`matching`.

    Returns
    -------
    MatchingResult
        The pooled scores, and each image's in ``images``.
    """
    gts, preds = list(gts), list(preds)
    if len(gts) != len(preds):
        raise DataError(
            f"{len(gts)} ground-truth images but {len(preds)} predictions; pair them up."
        )
    names = [str(i) for i in range(len(gts))] if names is None else list(names)
    scores = MatchingScores(thresholds=thresholds, ignore_label=ignore_label)
    for name, gt, pred in zip(names, gts, preds, strict=True):
        scores.add(name, gt, pred)
    return scores.result()


class MatchingScores:
    """Scores of images matched one at a time (so their arrays need not be kept).

    ``add`` each image, then ``result()`` gives what :func:`matching_dataset` returns.
    """

    def __init__(
        self, *, thresholds: Sequence[float] = THRESHOLDS, ignore_label: int | None = 1
    ) -> None:
        self.thresholds, self.ignore_label = tuple(thresholds), ignore_label
        self.total = np.zeros((len(self.thresholds), 4))
        self.images: list[ImageScores] = []

    def add(self, name: str, gt: np.ndarray, pred: np.ndarray) -> MatchingResult:
        """Match one image (see :func:`matching`); return its scores."""
        counts = match_counts(gt, pred, thresholds=self.thresholds, ignore_label=self.ignore_label)
        self.total += counts
        scores = summarize(counts, self.thresholds)
        self.images.append(ImageScores(name, scores.thresholds))
        return scores

    def result(self) -> MatchingResult:
        """Pooled scores of every image added, each image's in ``images``."""
        pooled = summarize(self.total, self.thresholds)
        return MatchingResult(pooled.thresholds, pooled.mean_ap, tuple(self.images))


def page_names(name: str, pages: int) -> list[str]:
    """Names of the pages of a stack: ``[name]`` for one page, else ``name_p000``, ..."""
    return [name] if pages == 1 else [f"{name}_p{z:03d}" for z in range(pages)]


def match_counts(
    gt: np.ndarray,
    pred: np.ndarray,
    *,
    thresholds: Sequence[float] = THRESHOLDS,
    ignore_label: int | None = 1,
) -> np.ndarray:
    """Per threshold ``[TP, FP, FN, sum of matched IoU]`` (an array of shape (T, 4))."""
    return count_matches(iou_matrix(gt, pred, ignore_label=ignore_label)[0], thresholds)


def count_matches(iou: np.ndarray, thresholds: Sequence[float] = THRESHOLDS) -> np.ndarray:
    """:func:`match_counts` from the IoU matrix (ground truth x predictions).

    When no object has two candidates at the lowest threshold (always so above IoU 0.5
    but for exact ties), every candidate pair is matched: no assignment is needed.
    """
    from scipy.optimize import linear_sum_assignment

    n_true, n_pred = iou.shape
    counts = np.zeros((len(thresholds), 4))
    hit = iou >= min(thresholds, default=1.0)
    if hit.sum(0).max(initial=0) <= 1 and hit.sum(1).max(initial=0) <= 1:
        pairs = iou[hit]
        for i, threshold in enumerate(thresholds):
            matched = pairs[pairs >= threshold]
            counts[i] = (len(matched), n_pred - len(matched), n_true - len(matched), matched.sum())
        return counts
    for i, threshold in enumerate(thresholds):
        hit = iou >= threshold
        rows, cols = np.flatnonzero(hit.any(1)), np.flatnonzero(hit.any(0))
        tp, matched_iou = 0, 0.0
        if rows.size:
            sub_hit, sub_iou = hit[np.ix_(rows, cols)], iou[np.ix_(rows, cols)]
            # Most hits first; among equally many, the largest IoU sum (< 1 in total).
            cost = -(sub_hit + sub_hit * sub_iou / (2 * min(sub_hit.shape)))
            r, c = linear_sum_assignment(cost)
            ok = sub_hit[r, c]
            tp, matched_iou = int(ok.sum()), float(sub_iou[r, c][ok].sum())
        counts[i] = (tp, n_pred - tp, n_true - tp, matched_iou)
    return counts


def iou_matrix(
    gt: np.ndarray, pred: np.ndarray, *, ignore_label: int | None = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU of every ground-truth object (rows) with every counted prediction (columns).

    Predictions mostly inside blobs are left out.  Also returns the pixel count and the
    label value of each column's prediction (removing predictions smaller than ``m``
    pixels is then ``iou[:, areas >= m]``: the other IoUs do not change).
    """
    gt, pred = np.asarray(gt), np.asarray(pred)
    for name, arr in (("gt", gt), ("pred", pred)):
        if not np.issubdtype(arr.dtype, np.integer) or (arr.size and arr.min() < 0):
            raise DataError(
                f"{name} must be a label image of non-negative integers, not {arr.dtype}."
            )
    if gt.shape != pred.shape:
        raise DataError(f"gt {gt.shape} and pred {pred.shape} label images differ in shape.")
    blob = gt == ignore_label if ignore_label is not None else np.zeros(gt.shape, bool)
    gt_seq, gt_values = sequential_labels(np.where(blob, 0, gt))
    pred_seq, pred_values = sequential_labels(pred)
    n_true, n_pred = len(gt_values), len(pred_values)
    overlap = np.bincount(
        gt_seq * (n_pred + 1) + pred_seq, minlength=(n_true + 1) * (n_pred + 1)
    ).reshape(n_true + 1, n_pred + 1)
    pred_area = overlap.sum(0)[1:]
    in_blob = np.bincount(pred_seq[blob.ravel()], minlength=n_pred + 1)[1:]
    keep = in_blob * 2 <= pred_area
    true_area = overlap.sum(1)[1:, None]
    inter = overlap[1:, 1:][:, keep]
    return inter / (true_area + pred_area[keep] - inter), pred_area[keep], pred_values[keep]


def summarize(counts: np.ndarray, thresholds: Sequence[float]) -> MatchingResult:
    """Scores from the counts of :func:`match_counts` (summed over images if pooled)."""
    per_threshold = {}
    for threshold, (tp, fp, fn, matched_iou) in zip(thresholds, counts, strict=True):
        per_threshold[float(threshold)] = ThresholdScores(
            tp=int(tp),
            fp=int(fp),
            fn=int(fn),
            precision=_ratio(tp, tp + fp),
            recall=_ratio(tp, tp + fn),
            ap=_ratio(tp, tp + fp + fn),
            f1=_ratio(2 * tp, 2 * tp + fp + fn),
            pq=_ratio(matched_iou, tp + fp / 2 + fn / 2),
            mean_matched_iou=_ratio(matched_iou, tp),
        )
    mean_ap = float(np.mean([s.ap for s in per_threshold.values()])) if per_threshold else 0.0
    return MatchingResult(per_threshold, mean_ap)


def _ratio(num: float, den: float) -> float:
    """``num / den``, 0 when ``den`` is 0 (every numerator here is 0 when TP is 0)."""
    return float(num / den) if den > 0 else 0.0


def format_table(result: MatchingResult) -> str:
    """The pooled scores of :func:`matching` / :func:`matching_dataset` as a text table."""
    header = ("IoU", *METRICS[:-1], "mean_iou")
    lines = [" ".join(f"{h:>9}" for h in header)]
    for threshold, s in result.thresholds.items():
        cells = [f"{threshold:>9g}"] + [f"{getattr(s, m):>9d}" for m in METRICS[:3]]
        cells += [f"{getattr(s, m):>9.3f}" for m in METRICS[3:]]
        lines.append(" ".join(cells))
    keys = [f"{t:g}" for t in result.thresholds]
    if keys:
        lines.append(f"mean AP (IoU {keys[0]}..{keys[-1]}): {result.mean_ap:.3f}")
    return "\n".join(lines)
