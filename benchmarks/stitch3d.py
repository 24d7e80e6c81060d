"""3D nuclei from a z-stack: the slices segmented by a model, then stitched (or not).

Synthetic confocal-like stacks (:func:`napari_cellseg.data.synthetic.make_nuclei_stack`,
ellipsoids over 6-16 slices) are predicted slice by slice; the per-slice instances are
scored in 3D against the true nuclei, unstitched and stitched at several overlaps.  Also
printed: the slices' own 2D scores (the segmentation itself) and the time stitching takes.

    python benchmarks/stitch3d.py --config nuclei --stacks 3

The last line printed is one JSON object: ``{"slices_2d": {"ap_0.5", "mean_ap"},
"unstitched": {"ap_0.5", "mean_ap", "objects"}, "stitch_<t>": {"ap_0.5", "mean_ap",
"objects", "seconds"}, ..., "true_objects": n}``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from napari_cellseg.analysis.matching import matching_dataset
from napari_cellseg.data.synthetic import make_nuclei_stack
from napari_cellseg.inference.predictor import load_model
from napari_cellseg.segmentation.stitching import stitch_slices

OVERLAPS = (0.25, 0.5, 0.75)


def scores(truths: list, preds: list) -> dict:
    result = matching_dataset(truths, preds, ignore_label=None)
    return {"ap_0.5": result.thresholds[0.5].ap, "mean_ap": result.mean_ap}


def objects(labels: list) -> int:
    return sum(len(np.unique(stack)) - 1 for stack in labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="nuclei", help="model yaml or a built-in model")
    parser.add_argument("--stacks", type=int, default=3, help="synthetic stacks to segment")
    parser.add_argument("--shape", type=int, nargs=3, default=(16, 256, 256), help="Z H W")
    args = parser.parse_args()

    predictor = load_model(args.config)
    truths, pieces = [], []
    for seed in range(args.stacks):
        image, truth = make_nuclei_stack(tuple(args.shape), seed=seed)
        labels = predictor.instances(*predictor.predict(image))
        truths.append(truth)
        pieces.append(labels)
        print(f"stack {seed}: {objects([truth])} nuclei, {objects([labels])} pieces in slices")
    pages = [(t[z], p[z]) for t, p in zip(truths, pieces, strict=True) for z in range(len(t))]
    figures = {
        "slices_2d": scores(*zip(*pages, strict=True)),
        "unstitched": {**scores(truths, pieces), "objects": objects(pieces)},
    }
    for overlap in OVERLAPS:
        start = time.perf_counter()
        stitched = [stitch_slices(p, overlap, predictor.config.blob_label) for p in pieces]
        seconds = (time.perf_counter() - start) / len(pieces)
        figures[f"stitch_{overlap:g}"] = {
            **scores(truths, stitched),
            "objects": objects(stitched),
            "seconds": round(seconds, 4),
        }
    figures["true_objects"] = objects(truths)
    for name, row in figures.items():
        print(f"{name:>14}: {row}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
