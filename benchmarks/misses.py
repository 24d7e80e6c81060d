"""Where a model's errors are: each missed object at IoU 0.5 put in one category.

A ground-truth object without a prediction of IoU >= 0.5 is

- ``not found``: predictions cover less than half of it, even with ``min_size`` 0;
- ``dropped as small``: found (IoU >= 0.5) when no object is removed for its size;
- ``merged``: the prediction covering most of it also covers half of another object;
- ``split``: that prediction covers less than half of it (the rest lies in others);
- ``outline``: that prediction covers most of it but spills far beyond (IoU < 0.5).

Unmatched predictions (false positives) are ``on background`` (mostly outside every
object) or ``in an object`` (a piece of one that another prediction matched, or of a
blob).  Counts are given per image size and in total, with AP@0.5 = TP / (TP + FP + FN).

    python benchmarks/misses.py --config nuclei --data ../shared/data/dsb2018-fluo/val

The last line printed is one JSON object: ``{"all": {"tp", "fp", "fn", "ap_0.5",
"missed": {category: count}, "false": {category: count}}, "<H>x<W>": {...}, ...}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict

import numpy as np

from napari_cellseg.data.io import read_folder
from napari_cellseg.data.labels import sequential_labels
from napari_cellseg.inference.predictor import load_model
from napari_cellseg.segmentation.instances import instances

MISSED = ("not found", "dropped as small", "merged", "split", "outline")
FALSE = ("on background", "in an object")


def overlaps(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Pixel counts of every (ground truth, prediction) value pair, row and column 0 background."""
    (gt_index, gt_values), (pred_index, pred_values) = map(sequential_labels, (gt, pred))
    rows, cols = len(gt_values) + 1, len(pred_values) + 1
    return np.bincount(gt_index * cols + pred_index, minlength=rows * cols).reshape(rows, cols)


def iou_table(table: np.ndarray) -> np.ndarray:
    """IoU of every ground-truth object (rows) with every prediction (columns)."""
    inter = table[1:, 1:]
    return inter / (table[1:].sum(1)[:, None] + table[:, 1:].sum(0)[None] - inter)


def best_iou(table: np.ndarray) -> np.ndarray:
    """The highest IoU of each ground-truth object with any prediction."""
    return iou_table(table).max(1, initial=0.0)


def classify(gt: np.ndarray, pred: np.ndarray, unfiltered: np.ndarray) -> tuple[Counter, Counter]:
    """Missed objects (and ``tp``) and false positives of one page by category.

    ``unfiltered`` are the predictions before objects were removed for their size.
    """
    table = overlaps(gt, pred)
    iou = best_iou(table)
    found_unfiltered = best_iou(overlaps(gt, unfiltered)) >= 0.5
    area = table[1:].sum(1)
    missed = Counter(tp=int((iou >= 0.5).sum()))
    for i in np.flatnonzero(iou < 0.5):
        row = table[1 + i, 1:]
        if row.sum() * 2 < area[i]:
            missed["dropped as small" if found_unfiltered[i] else "not found"] += 1
            continue
        best = int(row.argmax())
        others = np.delete(table[1:, 1 + best] * 2 >= area, i)
        if others.any():
            missed["merged"] += 1
        else:
            missed["split" if row[best] * 2 < area[i] else "outline"] += 1
    false = Counter()
    if table.shape[1] > 1:
        matched = (iou_table(table) >= 0.5).any(0)
        outside = table[0, 1:] * 2 >= table[:, 1:].sum(0)
        false["on background"] = int((~matched & outside).sum())
        false["in an object"] = int((~matched & ~outside).sum())
    return missed, false


def without_blobs(gt: np.ndarray, pred: np.ndarray, blob_label: int | None) -> tuple:
    """Blobs as background in ``gt``, and predictions mostly inside a blob left out (as scored)."""
    if blob_label is None or not (gt == blob_label).any():
        return gt, pred
    blob = gt == blob_label
    area = np.bincount(pred.ravel())
    inside = np.bincount(pred[blob], minlength=len(area))
    return np.where(blob, 0, gt), np.where((inside * 2 > area)[pred], 0, pred)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="a model's yaml, or nuclei")
    parser.add_argument("--data", required=True, help="folder with images/ and labels/")
    parser.add_argument("--diameter", type=float, default=0.0, help="0: estimated per image")
    args = parser.parse_args(argv)
    predictor = load_model(args.config)
    blob_label = predictor.config.blob_label
    unfiltered = predictor.segmentation().replace(min_size=0, small_object_prob=1.0)
    groups: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for stack in read_folder(args.data):
        maps = predictor.predict(stack.image, diameter=args.diameter)
        labels, all_kept = predictor.instances(*maps), instances(*maps, **unfiltered.as_dict())
        size = "x".join(map(str, stack.image.shape[-2:]))
        for z in range(len(stack.image)):
            gt, pred = without_blobs(stack.labels[z], labels[z], blob_label)
            missed, false = classify(
                gt, pred, without_blobs(stack.labels[z], all_kept[z], blob_label)[1]
            )
            for key in ("all", size):
                groups[key]["missed"].update(missed)
                groups[key]["false"].update(false)
    result = {}
    for key in sorted(groups, key=lambda k: (k != "all", k)):
        missed, false = groups[key]["missed"], groups[key]["false"]
        tp, fp = missed.pop("tp", 0), sum(false.values())
        fn = sum(missed.values())
        result[key] = {
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "ap_0.5": round(tp / max(tp + fp + fn, 1), 4),
            "missed": {c: missed[c] for c in MISSED},
            "false": {c: false[c] for c in FALSE},
        }
        print(
            f"{key:>10}: AP@0.5 {result[key]['ap_0.5']:.3f}  TP {tp}  FP {fp} ("
            + ", ".join(f"{c} {false[c]}" for c in FALSE)
            + f")  FN {fn} ("
            + ", ".join(f"{c} {missed[c]}" for c in MISSED)
            + ")"
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
