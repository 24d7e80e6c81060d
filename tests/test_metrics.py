"""Epoch metrics: counts summed over batches, ignore masking, undefined ratios."""

# ruff: noqa: TID253 - tests of torch code, so torch is imported at module level
from __future__ import annotations

import math

import pytest
import torch

from napari_cellseg.training.metrics import MetricAccumulator


def target_batch(objects, boundaries, ignore=None) -> dict[str, torch.Tensor]:
    objects = torch.tensor(objects, dtype=torch.float32)[:, None]
    boundaries = torch.tensor(boundaries, dtype=torch.float32)[:, None]
    ignore = (
        torch.zeros_like(objects)
        if ignore is None
        else torch.tensor(ignore, dtype=torch.float32)[:, None]
    )
    return dict(objects=objects, boundaries=boundaries, ignore=ignore)


def prob(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def test_one_batch_hand_worked():
    acc = MetricAccumulator()
    # objects: pred 1 1 0 0 | 0.5 is not above the threshold
    #          true 1 0 1 0 -> tp 1, fp 1, fn 1
    # boundaries: pred 0 0 0 1, true 0 0 1 1 -> tp 1, fp 0, fn 1
    acc.update(
        prob([[[0.9, 0.6, 0.5, 0.1]]]),
        prob([[[0.0, 0.2, 0.4, 0.7]]]),
        target_batch([[[1, 0, 1, 0]]], [[[0, 0, 1, 1]]]),
    )
    assert acc.compute() == pytest.approx(
        {
            "objects_iou": 1 / 3,
            "objects_precision": 1 / 2,
            "objects_recall": 1 / 2,
            "boundaries_iou": 1 / 2,
            "boundaries_precision": 1.0,
            "boundaries_recall": 1 / 2,
        }
    )


def test_counts_are_summed_over_batches_not_ratios_averaged():
    acc = MetricAccumulator()
    # batch 1: 1 pixel, tp 1 -> IoU 1; batch 2: 3 pixels, tp 1 fp 2 -> IoU 1/3.
    # Epoch: tp 2, fp 2 -> IoU 1/2 (the mean of the batch ratios would be 2/3).
    acc.update(prob([[[0.9]]]), prob([[[0.0]]]), target_batch([[[1]]], [[[0]]]))
    acc.update(
        prob([[[0.9, 0.9, 0.9]]]),
        prob([[[0.0, 0.0, 0.0]]]),
        target_batch([[[1, 0, 0]]], [[[0, 0, 0]]]),
    )
    metrics = acc.compute()
    assert metrics["objects_iou"] == pytest.approx(1 / 2)
    assert metrics["objects_precision"] == pytest.approx(1 / 2)
    assert metrics["objects_recall"] == 1.0


def test_ignored_pixels_are_not_counted():
    acc = MetricAccumulator()
    # The ignored middle column holds a false positive and a false negative.
    acc.update(
        prob([[[0.9, 0.9, 0.1], [0.1, 0.1, 0.1]]]),
        prob([[[0.1, 0.1, 0.1], [0.1, 0.9, 0.1]]]),
        target_batch(
            [[[1, 0, 0], [0, 1, 0]]],
            [[[0, 0, 0], [0, 0, 0]]],
            ignore=[[[0, 1, 0], [0, 1, 0]]],
        ),
    )
    metrics = acc.compute()
    assert metrics["objects_iou"] == 1.0
    assert metrics["boundaries_precision"] == 0.0  # no boundary predicted outside the blob


def test_undefined_ratios_are_zero():
    assert set(MetricAccumulator().compute().values()) == {0.0}
    acc = MetricAccumulator()
    acc.update(prob([[[0.1, 0.2]]]), prob([[[0.1, 0.2]]]), target_batch([[[0, 0]]], [[[0, 0]]]))
    metrics = acc.compute()
    assert len(metrics) == 6
    assert all(v == 0.0 and not math.isnan(v) for v in metrics.values())
