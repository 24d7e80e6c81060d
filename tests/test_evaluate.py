"""Object matching: numbers worked out by hand from squares and disks shifted by known amounts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_cellseg.analysis.matching import (
    METRICS,
    THRESHOLDS,
    count_matches,
    format_table,
    iou_matrix,
    matching,
    matching_dataset,
)
from napari_cellseg.errors import DataError


def square(shape, top, left, side, value, out=None):
    out = np.zeros(shape, np.uint16) if out is None else out
    out[top : top + side, left : left + side] = value
    return out


def disks(shape, centres, radius, shift=0):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    out = np.zeros(shape, np.uint16)
    for value, (cy, cx) in enumerate(centres, start=2):
        out[(yy - cy) ** 2 + (xx - cx - shift) ** 2 < radius**2] = value
    return out


def test_thresholds_and_keys():
    assert THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    result = matching(square((30, 30), 5, 5, 10, 2), square((30, 30), 5, 5, 10, 7))
    assert list(result.thresholds) == list(THRESHOLDS)
    assert list(result.as_dict()["thresholds"]) == [  # the JSON keys
        "0.5",
        "0.55",
        "0.6",
        "0.65",
        "0.7",
        "0.75",
        "0.8",
        "0.85",
        "0.9",
        "0.95",
    ]
    assert all(list(s._asdict()) == list(METRICS) for s in result.thresholds.values())
    assert result.mean_ap == 1.0


def test_square_shifted_by_two_pixels():
    # 10 x 10 squares, shifted 2 rows: intersection 80, union 120, IoU 2/3.
    gt = square((40, 40), 10, 10, 10, 5)
    pred = square((40, 40), 12, 10, 10, 9)
    result = matching(gt, pred, thresholds=(0.6, 0.7)).thresholds
    assert result[0.6]._asdict() == {
        "tp": 1,
        "fp": 0,
        "fn": 0,
        "precision": 1.0,
        "recall": 1.0,
        "ap": 1.0,
        "f1": 1.0,
        "pq": pytest.approx(2 / 3),
        "mean_matched_iou": pytest.approx(2 / 3),
    }
    assert result[0.7]._asdict() == {
        "tp": 0,
        "fp": 1,
        "fn": 1,
        "precision": 0.0,
        "recall": 0.0,
        "ap": 0.0,
        "f1": 0.0,
        "pq": 0.0,
        "mean_matched_iou": 0.0,
    }


def test_disks_shifted_iou_either_side_of_thresholds():
    # Two disks of radius r at distance d overlap by 2 r^2 acos(d / 2r) - d/2 sqrt(4 r^2 - d^2):
    # r = 20, d = 5 gives IoU 0.726, between the thresholds 0.7 and 0.75.
    r, d = 20, 5
    lens = 2 * r**2 * math.acos(d / (2 * r)) - d / 2 * math.sqrt(4 * r**2 - d**2)
    iou = lens / (2 * math.pi * r**2 - lens)
    assert 0.72 < iou < 0.73
    centres = [(30, 30), (30, 100), (90, 60)]
    gt = disks((128, 140), centres, r)
    pred = disks((128, 140), centres, r, shift=d)
    result = matching(gt, pred)
    for key in (0.5, 0.55, 0.6, 0.65, 0.7):
        assert (result.thresholds[key].tp, result.thresholds[key].fp) == (3, 0)
        assert result.thresholds[key].mean_matched_iou == pytest.approx(iou, abs=0.01)
    for key in (0.75, 0.8, 0.85, 0.9, 0.95):
        assert result.thresholds[key].tp == 0
        assert result.thresholds[key].fn == 3
    assert result.mean_ap == pytest.approx(0.5)


def test_missed_and_spurious_objects():
    # 3 ground-truth objects; 2 found exactly, 1 missed, 1 prediction where none is.
    gt = square((50, 50), 0, 0, 10, 2)
    square((50, 50), 0, 20, 10, 3, gt)
    square((50, 50), 20, 0, 10, 4, gt)
    pred = square((50, 50), 0, 0, 10, 1)
    square((50, 50), 0, 20, 10, 2, pred)
    square((50, 50), 35, 35, 10, 3, pred)
    s = matching(gt, pred, thresholds=(0.5,)).thresholds[0.5]
    assert (s.tp, s.fp, s.fn) == (2, 1, 1)
    assert s.precision == pytest.approx(2 / 3)
    assert s.recall == pytest.approx(2 / 3)
    assert s.ap == pytest.approx(2 / 4)
    assert s.f1 == pytest.approx(4 / 6)
    assert s.pq == pytest.approx(2 / (2 + 0.5 + 0.5))
    assert s.mean_matched_iou == 1.0


def test_assignment_is_optimal_not_greedy():
    # gt A = cols 0-9, B = cols 10-19 (rows 0-9).  P1 = cols 4-17: IoU(A) = 60/180, IoU(B) = 80/160;
    # P2 = cols 18-25: IoU(B) = 20/160.  At IoU 0.1 the best-first choice P1-B leaves A and P2
    # unmatched (1 TP); the optimal one-to-one assignment pairs P1-A and P2-B (2 TP).
    gt = np.zeros((10, 30), np.int32)
    gt[:, 0:10], gt[:, 10:20] = 2, 3
    pred = np.zeros_like(gt)
    pred[:, 4:18], pred[:, 18:26] = 1, 2
    result = matching(gt, pred, thresholds=(0.1, 0.3)).thresholds
    assert result[0.1].tp == 2
    assert result[0.1].mean_matched_iou == pytest.approx((60 / 180 + 20 / 160) / 2)
    assert result[0.3].tp == 1
    assert result[0.3].mean_matched_iou == pytest.approx(0.5)  # P1-B, the larger IoU


@pytest.mark.parametrize("seed", range(5))
def test_unique_candidates_counted_as_the_assignment_counts_them(seed):
    """Above IoU 0.5 no assignment is run; the counts equal the assignment's."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(8, 72, (15, 2))
    gt = disks((80, 80), centres, 6)  # touching and overlapping disks: cut shapes
    pred = disks((80, 80), centres + rng.integers(-2, 3, centres.shape), 6)
    iou = iou_matrix(gt, pred)[0]
    assert (iou >= 0.5).sum() > 5 and (iou >= 0.01).sum(0).max() > 1  # rival candidates
    fast = count_matches(iou)
    assigned = count_matches(iou, (0.01, *THRESHOLDS))[1:]  # not unique at 0.01: assigned
    np.testing.assert_allclose(fast, assigned)


def test_labels_of_any_value_give_the_same_scores():
    gt = disks((40, 60), [(10, 10), (25, 40)], 6)
    pred = disks((40, 60), [(10, 12), (25, 38)], 6)
    small = matching(gt, pred)
    iou, areas, values = iou_matrix(gt, pred)
    assert values.tolist() == [2, 3] and areas.tolist() == [(pred == 2).sum(), (pred == 3).sum()]
    huge = np.where(pred > 0, pred.astype(np.int64) * 2**40, 0)  # renumbered by sorting
    assert iou_matrix(gt, huge)[2].tolist() == [2 * 2**40, 3 * 2**40]
    assert matching(gt.astype(np.int64) * 2**40, huge) == small


def test_blob_excludes_predictions_mostly_inside():
    gt = square((40, 60), 0, 0, 20, 1)  # blob: rows 0-19, cols 0-19
    square((40, 60), 25, 40, 10, 2, gt)  # one real object
    pred = np.zeros_like(gt)
    pred[0:10, 14:24] = 3  # 60 of 100 pixels inside the blob: ignored
    pred[10:20, 16:26] = 4  # 40 of 100 inside: a false positive
    pred[25:35, 40:50] = 5  # the real object
    s = matching(gt, pred, thresholds=(0.5,)).thresholds[0.5]
    assert (s.tp, s.fp, s.fn) == (1, 1, 0)
    # without blob handling the blob is an unmatched object and both predictions count
    s = matching(gt, pred, thresholds=(0.5,), ignore_label=None).thresholds[0.5]
    assert (s.tp, s.fp, s.fn) == (1, 2, 1)


def test_dataset_pools_counts():
    gt1 = square((30, 30), 0, 0, 10, 2)
    pred1 = square((30, 30), 2, 0, 10, 1)  # IoU 2/3
    gt2 = square((30, 30), 0, 0, 10, 2)
    square((30, 30), 15, 15, 10, 3, gt2)
    pred2 = square((30, 30), 0, 0, 10, 1)  # IoU 1, one missed
    result = matching_dataset([gt1, gt2], [pred1, pred2], names=["a", "b"], thresholds=(0.5, 0.7))
    pooled = result.thresholds[0.5]
    assert (pooled.tp, pooled.fp, pooled.fn) == (2, 0, 1)
    assert pooled.ap == pytest.approx(2 / 3)
    assert pooled.mean_matched_iou == pytest.approx((2 / 3 + 1) / 2)
    assert result.thresholds[0.7].tp == 1  # only image b
    assert result.thresholds[0.7].ap == pytest.approx(1 / 4)  # tp 1, fp 1, fn 2
    assert result.mean_ap == pytest.approx((2 / 3 + 1 / 4) / 2)
    assert [im.name for im in result.images] == ["a", "b"]
    assert result.images[0].thresholds[0.5].ap == 1.0
    assert result.images[1].thresholds[0.5].ap == 0.5


def test_empty_images_score_zero():
    empty = np.zeros((20, 20), np.uint8)
    s = matching(empty, empty).thresholds[0.5]
    assert s._asdict() == dict.fromkeys(METRICS, 0) and matching(empty, empty).mean_ap == 0.0
    s = matching(empty, square((20, 20), 0, 0, 5, 3)).thresholds[0.5]
    assert (s.tp, s.fp, s.fn, s.precision) == (0, 1, 0, 0.0)


def test_bad_inputs_name_the_argument():
    with pytest.raises(DataError, match="differ in shape"):
        matching(np.zeros((5, 5), int), np.zeros((5, 6), int))
    with pytest.raises(DataError, match="pred must be a label image"):
        matching(np.zeros((5, 5), int), np.zeros((5, 5), float))
    with pytest.raises(DataError, match="gt must be"):
        matching(-np.ones((5, 5), int), np.zeros((5, 5), int))


def test_format_table_lists_every_threshold():
    table = format_table(matching(square((30, 30), 0, 0, 10, 2), square((30, 30), 2, 0, 10, 1)))
    lines = table.splitlines()
    assert len(lines) == 1 + len(THRESHOLDS) + 1
    assert lines[1].split()[:4] == ["0.5", "1", "0", "0"]
    assert lines[-1] == "mean AP (IoU 0.5..0.95): 0.400"
