"""How well the blob inspector's *Propose split* finds the nuclei inside a blob.

Blobs are made from real annotated clusters, as the training data's blobs were: in each
DSB2018 validation image, groups of 3-8 touching nuclei (closer than ``--gap`` pixels) are
merged into one blob (their union, closed over the gaps between them, marked 1).  For each
blob the dock's steps run as in napari: the model predicts a crop around the blob at the
object size of the annotated objects in it, and the proposal is scored against the
group's true nuclei (AP@0.5 = TP / (TP + FP + FN), pooled over all blobs).  Two
proposals are scored:

- ``before``: the blob inspector's first proposal: 16 pixels of context, no test-time
  augmentation, the model's objects cut to the blob and pieces under ``min_size``
  dropped (they stayed blob);
- ``split_blob``: today's: ``SPLIT_CONTEXT`` pixels of context, test-time augmentation
  (with the model's settings for it), and every blob pixel given to the nearest object
  (:func:`napari_cellseg.analysis.blobs.split_blob`).

    python benchmarks/blob_split.py --config nuclei --data ../shared/data/dsb2018-fluo/val

The last line printed is one JSON object: ``{"blobs", "nuclei", "seconds",
"model_settings": {...}, "split_blob": {...}}``, each with ``ap_0.5``, ``mean_blob_ap``,
``count_exact`` (share of blobs split into their true number of cells), ``count_error``
(mean |cells proposed - true cells|), ``estimate_error`` (the same for the blob's
estimated count, area / median object area: what choosing by it could reach at best),
``blob_pixels_left`` (share of blob pixels no cell covers) and ``fragments_left``
(pieces of blob under ``min_size`` left after *Accept*).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy import ndimage as ndi

from napari_cellseg.analysis.blobs import SPLIT_CONTEXT, crop_box, find_blobs, split_blob
from napari_cellseg.analysis.matching import matching
from napari_cellseg.data.io import read_folder
from napari_cellseg.data.labels import median_diameter
from napari_cellseg.inference.predictor import load_model
from napari_cellseg.segmentation.instances import instances

BEFORE_CONTEXT = 16
BLOB = 1


def touching(labels: np.ndarray, gap: int) -> dict[int, set[int]]:
    """Which objects lie within ``gap`` pixels of which (values >= 2)."""
    grown = ndi.grey_dilation(labels, size=2 * gap + 1)
    near: dict[int, set[int]] = {int(v): set() for v in np.unique(labels) if v > BLOB}
    both = (labels > BLOB) & (grown > BLOB) & (grown != labels)
    for a, b in zip(labels[both].tolist(), grown[both].tolist(), strict=True):
        near[a].add(b)
        near[b].add(a)
    return near


def clusters(near: dict[int, set[int]], rng: np.random.Generator) -> list[set[int]]:
    """Groups of 3-8 touching objects, none touching another group."""
    taken: set[int] = set()
    groups = []
    for start in rng.permutation(sorted(near)).tolist():
        if start in taken:
            continue
        size, group, frontier = int(rng.integers(3, 9)), {start}, [start]
        while frontier and len(group) < size:
            for other in sorted(near[frontier.pop(0)] - group - taken):
                if len(group) < size:
                    group.add(other)
                    frontier.append(other)
        if len(group) >= 3:
            groups.append(group)
            taken |= group | set().union(*(near[v] for v in group))
    return groups


def merge_into_blobs(labels: np.ndarray, groups: list[set[int]], gap: int) -> np.ndarray:
    """``labels`` with every group painted as one blob over its gaps."""
    out = labels.copy()
    for group in groups:
        union = np.isin(labels, list(group))
        closed = ndi.binary_closing(union, structure=np.ones((3, 3)), iterations=gap)
        out[(closed & ((labels == 0) | union))] = BLOB
    return out


def score(
    truth: np.ndarray, proposal: np.ndarray, mask: np.ndarray, min_size: int, estimate: float
) -> dict:
    """TP/FP/FN at IoU 0.5, count errors, blob pixels and small fragments left uncovered."""
    result = matching(truth, proposal, thresholds=(0.5,), ignore_label=None).thresholds[0.5]
    true_count = len(np.unique(truth[truth > 0]))
    left = mask & (proposal == 0)
    pieces, n = ndi.label(left, structure=np.ones((3, 3)))
    sizes = np.bincount(pieces.ravel())[1:]
    return {
        "tp": result.tp,
        "fp": result.fp,
        "fn": result.fn,
        "exact": int(proposal.max()) == true_count,
        "count_error": abs(int(proposal.max()) - true_count),
        "estimate_error": abs(estimate - true_count),
        "left": int(left.sum()),
        "pixels": int(mask.sum()),
        "fragments": int((sizes < min_size).sum()) if n else 0,
    }


def propose(name: str, found: np.ndarray, mask: np.ndarray, min_size: int) -> np.ndarray:
    """The proposal of method ``name`` from the objects found in the crop."""
    if name == "split_blob":
        return split_blob(found, mask, min_size)
    inside = np.where(mask, found, 0)
    return np.where(np.bincount(inside.ravel())[inside] >= min_size, inside, 0)


def blob_ap(row: dict) -> float:
    return row["tp"] / (row["tp"] + row["fp"] + row["fn"])


def summarise(rows: list[dict]) -> dict:
    tp, fp, fn = (sum(r[k] for r in rows) for k in ("tp", "fp", "fn"))
    return {
        "ap_0.5": round(tp / max(tp + fp + fn, 1), 4),
        "mean_blob_ap": round(
            float(np.mean([r["tp"] / (r["tp"] + r["fp"] + r["fn"]) for r in rows])), 4
        ),
        "count_exact": round(float(np.mean([r["exact"] for r in rows])), 4),
        "count_error": round(float(np.mean([r["count_error"] for r in rows])), 3),
        "estimate_error": round(float(np.mean([r["estimate_error"] for r in rows])), 3),
        "blob_pixels_left": round(sum(r["left"] for r in rows) / sum(r["pixels"] for r in rows), 4),
        "fragments_left": sum(r["fragments"] for r in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="nuclei", help="model yaml or built-in name")
    parser.add_argument("--data", default="../shared/data/dsb2018-fluo/val")
    parser.add_argument("--gap", type=int, default=2, help="pixels between touching nuclei")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.perf_counter()
    plain, augmented = load_model(args.config), load_model(args.config, tta=True)
    rng = np.random.default_rng(args.seed)
    rows: dict[str, list[dict]] = {"before": [], "split_blob": []}
    nuclei = 0
    for stack in read_folder(args.data):
        for image, truth in zip(stack.image, stack.labels, strict=True):
            groups = clusters(touching(truth, args.gap), rng)
            if not groups:
                continue
            annotated = merge_into_blobs(truth, groups, args.gap)
            components, blobs = find_blobs(annotated, BLOB)
            grouped = [v for g in groups for v in g]
            for blob in blobs:
                mask = components == blob.id
                group_truth = np.where(mask & np.isin(truth, grouped), truth, 0)
                for name, predictor, context in (
                    ("before", plain, BEFORE_CONTEXT),
                    ("split_blob", augmented, SPLIT_CONTEXT),
                ):
                    box = crop_box(blob.bbox, annotated.shape, context)
                    diameter = median_diameter(annotated[box], BLOB) or 0.0
                    maps = predictor.predict(image[box], diameter=diameter)
                    settings = predictor.segmentation()
                    found = instances(*maps, **settings.as_dict())
                    proposal = propose(name, found, mask[box], settings.min_size)
                    rows[name].append(
                        score(group_truth[box], proposal, mask[box], settings.min_size, blob.cells)
                    )
                nuclei += len(np.unique(group_truth)) - 1
    print(
        json.dumps(
            {
                "blobs": len(rows["split_blob"]),
                "nuclei": nuclei,
                "seconds": round(time.perf_counter() - start, 1),
                **{name: summarise(r) for name, r in rows.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
