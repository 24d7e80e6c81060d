"""The correction loop, simulated: review by confidence against random order, and training
on what was reviewed against training on the whole partly corrected image.

A simulated annotator works on real annotated images (the even-numbered DSB2018 validation
images), starting from the built-in model's instances.  One correction is one predicted
object acted on: replaced by the true nucleus it overlaps most (its true shape), or deleted
when it overlaps none (IoU under 0.1).  The objects are taken (a) from the least confident
up (the Review dock's order), (b) in random order (the mean of ``--repeats`` seeds).  After
k corrections the corrected annotation is scored against the truth (AP@0.5, pooled).

Then the built-in model is fine-tuned for ``--minutes`` CPU minutes on the annotation that
k ranked corrections made, two ways: on the whole partly corrected images (``whole``), and
on the corrected objects and the background near them only, the rest ignored as blobs
(``reviewed``, :func:`napari_cellseg.analysis.review.ignore_unreviewed`, as the Train dock
does); each fine-tuned model is scored on the other (odd-numbered) validation images.

    python benchmarks/review.py --data ../shared/data/dsb2018-fluo/val --minutes 2

``--noise 0.6`` adds Gaussian noise of 0.6 image standard deviations to every image: a
low-light acquisition, on which the built-in model is weak (AP@0.5 0.37 instead of 0.89 on
the other images; 281 of its 627 objects wrong), so that the objects not reviewed yet
teach mistakes.

The last line printed is one JSON object: ``objects``, ``wrong`` (objects not matching a
true nucleus at IoU 0.5), ``annotation_ap50`` (per k: ``ranked``, ``random``; k 0 is the
model's own), ``halving`` (the least k at which ranked review reaches random review's AP at
the largest k) and ``fine_tuned`` (per k: ``whole`` and ``reviewed`` with ``ap50`` and
``mean_ap`` on the other images, the means over ``--seeds`` fine-tunings, and each one's
``ap50_runs``; ``built_in`` as it is).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from napari_cellseg.analysis.confidence import object_confidence
from napari_cellseg.analysis.matching import MatchingScores, iou_matrix
from napari_cellseg.analysis.review import ignore_unreviewed
from napari_cellseg.config import TrainConfig
from napari_cellseg.config_io import from_dict, read_yaml_dict
from napari_cellseg.data.io import read_folder
from napari_cellseg.inference.predictor import load_model
from napari_cellseg.model_file import BUILTIN_MODELS
from napari_cellseg.training.inputs import TrainData
from napari_cellseg.training.loop import run_training

BUDGETS = (10, 25, 50, 100)


def predicted(predictor, stacks) -> tuple[list[np.ndarray], list[tuple[float, int, int]]]:
    """The model's labels of each image and (confidence, image, label) of every object."""
    labels, objects = [], []
    for i, stack in enumerate(stacks):
        maps = predictor.predict(stack.image[0])
        found = predictor.instances(*maps)
        scores = object_confidence(found, *maps)
        labels.append(found)
        objects += [
            (c, i, int(v)) for v, c in zip(scores["label"], scores["confidence"], strict=True)
        ]
    return labels, objects


def correct(labels, truth, picks) -> tuple[list[np.ndarray], list[set[int]]]:
    """The labels after each picked (image, label) object is corrected, and the label
    values of the corrected objects of each image (the reviewed ones)."""
    labels = [page.copy() for page in labels]
    reviewed: list[set[int]] = [set() for _ in labels]
    for i, value in picks:
        own = labels[i] == value
        if not own.any():  # taken over by an earlier correction
            continue
        labels[i][own] = 0
        true = _true_object(truth[i], own)
        if true is not None:  # its true shape; else it was false: deleted
            new = int(labels[i].max()) + 1
            labels[i][true] = new
            reviewed[i].add(new)
    return labels, reviewed


def _true_object(truth: np.ndarray, own: np.ndarray) -> np.ndarray | None:
    """The pixels of the true object that overlaps ``own`` most (IoU at least 0.1)."""
    values, overlap = np.unique(truth[own & (truth > 1)], return_counts=True)
    if not values.size:
        return None
    iou = [n / ((truth == v).sum() + own.sum() - n) for v, n in zip(values, overlap, strict=True)]
    best = int(np.argmax(iou))
    return truth == values[best] if iou[best] >= 0.1 else None


def ap50(labels, truth) -> float:
    scores = MatchingScores()
    for i, (found, true) in enumerate(zip(labels, truth, strict=True)):
        scores.add(str(i), true, found)
    return scores.result().thresholds[0.5].ap


def noisy(stack, level: float, seed: int):
    """``stack`` with Gaussian noise of ``level`` standard deviations of its image added."""
    if not level:
        return stack
    image = stack.image.astype(np.float32)
    noise = np.random.default_rng(seed).normal(0.0, level * image.std() + 1.0, image.shape)
    return dataclasses.replace(stack, image=(image + noise).astype(np.float32))


def fine_tune(
    labels, stacks, minutes: float, lr: float, seed: int, folder: Path, name: str
) -> Path:
    """Fine-tune the built-in model on ``stacks`` with ``labels``; the new model's yaml."""
    base = from_dict(TrainConfig, read_yaml_dict(BUILTIN_MODELS["nuclei"]))
    data = [
        dataclasses.replace(s, labels=page[None]) for s, page in zip(stacks, labels, strict=True)
    ]
    cfg = dataclasses.replace(
        base, train_data="", val_data="", val_fraction=0.0, model=str(folder / name / "m.pt"),
        init_model="nuclei", epochs=10**6, early_stop_patience=10**6, max_minutes=minutes,
        tune_postprocess=False, tb_samples=0, lr=lr, seed=base.seed + seed,
    )  # fmt: skip
    run_training(cfg, data=TrainData(data, None))
    return folder / name / "m.yaml"


def scores_on(yaml_path, stacks) -> dict:
    predictor = load_model(yaml_path)
    scores = MatchingScores()
    for stack in stacks:
        scores.add(
            stack.name, stack.labels[0], predictor.instances(*predictor.predict(stack.image[0]))
        )
    result = scores.result()
    return {"ap50": round(result.thresholds[0.5].ap, 4), "mean_ap": round(result.mean_ap, 4)}


def _summary(scores: list[dict]) -> dict:
    """The mean AP@0.5 and mean AP of the seeds' fine-tuned models, and each one's AP@0.5."""
    summary = {key: round(float(np.mean([s[key] for s in scores])), 4) for key in scores[0]}
    return {**summary, "ap50_runs": [s["ap50"] for s in scores]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/dsb2018-fluo/val"))
    parser.add_argument("--repeats", type=int, default=5, help="random orders averaged")
    parser.add_argument("--minutes", type=float, default=2.0, help="CPU minutes per fine-tuning")
    parser.add_argument("--lr", type=float, default=1e-3, help="fine-tuning learning rate")
    parser.add_argument(
        "--noise", type=float, default=0.0, help="Gaussian noise, in image standard deviations"
    )
    parser.add_argument("--seeds", type=int, default=1, help="fine-tunings per mode, averaged")
    parser.add_argument("--tune_budgets", type=int, nargs="*", default=[25, 100])
    args = parser.parse_args(argv)
    stacks = [noisy(stack, args.noise, seed) for seed, stack in enumerate(read_folder(args.data))]
    work, other = stacks[0::2], stacks[1::2]
    truth = [s.labels[0] for s in work]
    labels, objects = predicted(load_model("nuclei"), work)
    ranked = [(i, v) for _, i, v in sorted(objects)]
    rng = np.random.default_rng(0)
    orders = [[ranked[j] for j in rng.permutation(len(ranked))] for _ in range(args.repeats)]
    wrong = sum(
        int((iou_matrix(true, found)[0].max(0, initial=0) < 0.5).sum())
        for true, found in zip(truth, labels, strict=True)
    )
    result = {
        "objects": len(ranked),
        "wrong": wrong,
        "annotation_ap50": {"0": round(ap50(labels, truth), 4)},
    }
    for k in BUDGETS:
        by_rank = ap50(correct(labels, truth, ranked[:k])[0], truth)
        by_chance = np.mean([ap50(correct(labels, truth, o[:k])[0], truth) for o in orders])
        result["annotation_ap50"][str(k)] = {
            "ranked": round(by_rank, 4),
            "random": round(float(by_chance), 4),
        }
        print(k, result["annotation_ap50"][str(k)], file=sys.stderr)
    target = result["annotation_ap50"][str(BUDGETS[-1])]["random"]
    result["halving"] = next(
        (
            k
            for k in range(1, BUDGETS[-1] + 1)
            if ap50(correct(labels, truth, ranked[:k])[0], truth) >= target
        ),
        None,
    )
    result["fine_tuned"] = {"built_in": scores_on(BUILTIN_MODELS["nuclei"], other)}
    with tempfile.TemporaryDirectory() as folder:
        for k in args.tune_budgets:
            fixed, reviewed = correct(labels, truth, ranked[:k])
            partial = [
                ignore_unreviewed(page, keep, blob_label=1) if keep else np.ones_like(page)
                for page, keep in zip(fixed, reviewed, strict=True)
            ]
            runs: dict[str, list[dict]] = {"whole": [], "reviewed": []}
            for seed in range(args.seeds):  # the modes alternate: drift hits both alike
                for mode, pages in (("whole", fixed), ("reviewed", partial)):
                    name = f"{mode}{k}-{seed}"
                    model = fine_tune(pages, work, args.minutes, args.lr, seed, Path(folder), name)
                    runs[mode].append(scores_on(model, other))
            result["fine_tuned"][str(k)] = {mode: _summary(scores) for mode, scores in runs.items()}
            print(k, result["fine_tuned"][str(k)], file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
