"""Pixel metrics of an epoch: IoU, precision and recall of the objects and boundaries maps."""

# ruff: noqa: TID253 - training internals compute on tensors, so torch is imported at module level
from __future__ import annotations

import torch

__all__ = ["MetricAccumulator", "THRESHOLD"]

THRESHOLD = 0.5
"""A pixel is predicted foreground when its probability is above this."""

TARGETS = ("objects", "boundaries")


class MetricAccumulator:
    """Sums pixel counts over the batches of an epoch, then turns them into metrics.

    The counts (true positives ``tp``, false positives ``fp``, false negatives ``fn``)
    are summed over every batch before dividing, so the result is the metric of the whole
    epoch, not a mean of per-batch ratios.  Pixels whose ``ignore`` is 1 are not counted.

    Notes
    -----
    For each of objects and boundaries::

        iou       = tp / (tp + fp + fn)
        precision = tp / (tp + fp)
        recall    = tp / (tp + fn)

    A ratio whose denominator is 0 is 0.

    Examples
    --------
    >>> import torch
    >>> acc = MetricAccumulator()
    >>> target = torch.tensor([[[[1.0, 1.0, 0.0, 0.0]]]])
    >>> batch = dict(objects=target, boundaries=target, ignore=torch.zeros_like(target))
    >>> prob = torch.tensor([[[0.9, 0.2, 0.7, 0.1]]])
    >>> acc.update(prob, prob, batch)
    >>> acc.compute()["objects_iou"]
    0.3333333333333333
    """

    def __init__(self) -> None:
        #: (target, [tp, fp, fn]) pixel counts so far; summed over processes under torchrun
        self.counts = torch.zeros((len(TARGETS), 3), dtype=torch.int64)

    def update(
        self,
        objects_prob: torch.Tensor,
        boundaries_prob: torch.Tensor,
        batch: dict[str, torch.Tensor],
    ) -> None:
        """Add one batch: probabilities (B, H, W), targets and ignore map (B, 1, H, W)."""
        valid = batch["ignore"][:, 0] < 0.5
        counts = []
        for prob, key in zip((objects_prob, boundaries_prob), TARGETS, strict=True):
            pred = (prob.detach() > THRESHOLD) & valid
            truth = (batch[key][:, 0] > 0.5) & valid
            counts.append(
                torch.stack([(pred & truth).sum(), (pred & ~truth).sum(), (~pred & truth).sum()])
            )
        batch_counts = torch.stack(counts)
        self.counts = self.counts.to(batch_counts.device) + batch_counts

    def compute(self) -> dict[str, float]:
        """``objects_iou``, ``objects_precision``, ``objects_recall`` and the same for
        ``boundaries``, over every batch added so far (all 0 before the first)."""
        metrics = {}
        for key, (tp, fp, fn) in zip(TARGETS, self.counts.tolist(), strict=True):
            metrics[f"{key}_iou"] = _ratio(tp, tp + fp + fn)
            metrics[f"{key}_precision"] = _ratio(tp, tp + fp)
            metrics[f"{key}_recall"] = _ratio(tp, tp + fn)
        return metrics


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0
