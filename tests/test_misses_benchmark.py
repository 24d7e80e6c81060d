"""benchmarks/misses.py puts each missed object and false positive in the right category."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

from misses import classify, without_blobs  # noqa: E402


def test_every_kind_of_miss_and_false_positive():
    gt, pred = np.zeros((40, 60), np.int32), np.zeros((40, 60), np.int32)
    gt[0:6, 0:6] = pred[0:6, 0:6] = 2  # found (IoU 32 / 36) ...
    pred[0:2, 0:2] = 9  # ... with a piece of it apart: a false positive in an object
    gt[10:16, 0:6] = 3  # not found
    gt[20:23, 0:3] = 4  # small: found only before removing small objects
    gt[0:6, 10:16], gt[0:6, 16:22] = 5, 6  # merged into one prediction (IoU 36 / 84 each)
    pred[0:7, 10:22] = 10
    gt[10:16, 10:20] = 7  # split in three (IoU at most 24 / 60)
    pred[10:16, 10:14], pred[10:16, 14:17], pred[10:16, 17:20] = 11, 12, 16
    gt[20:24, 10:14] = 8  # inside a prediction that is mostly background (IoU 16 / 100)
    pred[20:30, 10:20] = 13
    pred[30:36, 40:46] = 14  # on background
    unfiltered = pred.copy()
    unfiltered[20:23, 0:3] = 15
    missed, false = classify(gt, pred, unfiltered)
    assert missed == {
        "tp": 1,
        "not found": 1,
        "dropped as small": 1,
        "merged": 2,
        "split": 1,
        "outline": 1,
    }
    assert false == {"on background": 2, "in an object": 5}  # 9, 10, 11, 12, 16


def test_blobs_are_background_and_predictions_inside_them_not_counted():
    gt = np.array([[1, 1, 0, 2, 2]])
    pred = np.array([[5, 5, 5, 6, 6]])  # 5: 2 of 3 pixels in the blob
    gt_out, pred_out = without_blobs(gt, pred, 1)
    assert gt_out.tolist() == [[0, 0, 0, 2, 2]] and pred_out.tolist() == [[0, 0, 0, 6, 6]]
    assert without_blobs(gt, pred, None)[1] is pred
