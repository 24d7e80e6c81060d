"""Segmentation quality after N minutes of CPU training, against a classical baseline.

1. Train the default CPU model (``CPU_SETTINGS``; any TrainConfig flag overrides it) on
   ``--train``; training is stopped through its ``stop`` event after ``--minutes`` (it
   finishes the batch and saves; the last weights are used).  Its learning rate is
   planned to reach its lowest at ``--minutes`` (``max_minutes``).
2. Tune the post-processing settings on ``--val``
   (:func:`napari_cellseg.segmentation.tuning.tune_postprocessing`) and write them
   into the model yaml, as training does with ``val_data``.
3. Load the model again from its yaml, as a user would, predict ``--test`` and score
   the instance labels: AP at IoU 0.5 and 0.75, mean AP over 0.5:0.95, F1 at 0.5
   (pooled over all test images, as StarDist reports them).  ``--tta`` predicts val and
   test with test-time augmentation.
4. Score the classical baseline on the same test images: Otsu threshold of the
   smoothed image, holes filled, then a watershed of the distance transform seeded at
   its local maxima (``skimage``), objects under ``BASELINE_MIN_SIZE`` pixels removed.

The last line printed is one JSON object::

    {"ap_0.5", "ap_0.75", "mean_ap", "f1_0.5", "train_minutes", "baseline": {...}}

Example (the issue's target: mean AP >= 0.60 and AP@0.5 >= 0.88 within 30 minutes)::

    python benchmarks/quality.py --train ../shared/data/dsb2018-fluo/train \\
        --val ../shared/data/dsb2018-fluo/val --test ../shared/data/dsb2018-fluo/val --minutes 30
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from napari_cellseg.analysis.matching import MatchingResult, MatchingScores, page_names
from napari_cellseg.config import CPU_NETWORK, TrainConfig
from napari_cellseg.config_io import add_config_arguments, config_from_args
from napari_cellseg.data.io import read_folder
from napari_cellseg.training.events import EpochEnded, TrainFinished
from napari_cellseg.training.loop import train

CPU_SETTINGS = {
    **CPU_NETWORK,
    "trim_method": "reflect",
    "object_diameter": 24.0,
    "batch": 8,
    "augments": 1,
    "lr": 3e-3,
    "lr_schedule": "cosine",
    "epochs": 1000,
    "early_stop_patience": 1000,
    "val_fraction": 0.0,
    "tune_postprocess": False,
}
"""The default CPU model: a 4-level U-Net, 16 filters, on 128 x 128 crops of images
rescaled to a median nucleus diameter of 24 pixels.

No validation during training (``val_fraction`` 0, no ``val_data``): every minute goes
to training; the cosine learning-rate schedule is planned over ``--minutes``
(``max_minutes``), and the last weights are scored.  ``--val`` serves the
post-processing tuning only."""


BASELINE_SIGMA = 1.0
BASELINE_MIN_DISTANCE = 4
BASELINE_MIN_SIZE = 15


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, TrainConfig]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True, help="training folder (images/ + labels/)")
    parser.add_argument("--val", required=True, help="validation folder (tuning)")
    parser.add_argument("--test", required=True, help="test folder (scores)")
    parser.add_argument("--minutes", type=float, required=True, help="training time")
    parser.add_argument("--model", default="", help="model .pt path; default: a temporary folder")
    parser.add_argument("--tta", action="store_true", help="predict with test-time augmentation")
    add_config_arguments(parser, TrainConfig, skip=("train_data", "val_data", "model"))
    args = parser.parse_args(argv)
    return args, config_from_args(TrainConfig, args, base=CPU_SETTINGS)


def train_for(cfg: TrainConfig, minutes: float) -> tuple[TrainFinished, float]:
    """Train until ``minutes`` have passed (then stop after the batch); return the end and time."""
    stop = threading.Event()
    timer = threading.Timer(minutes * 60, stop.set)
    started = time.perf_counter()
    timer.start()
    try:
        for event in train(cfg, stop=stop):
            if isinstance(event, EpochEnded):
                scores = ", ".join(f"{k} {v:.3f}" for k, v in event.train.items())
                print(f"epoch {event.epoch + 1}: {event.seconds:.0f} s, lr {event.lr:g}, {scores}")
            if isinstance(event, TrainFinished):
                finished = event
    finally:
        timer.cancel()
    return finished, (time.perf_counter() - started) / 60


def baseline_labels(image: np.ndarray) -> np.ndarray:
    """Otsu threshold + distance-transform watershed of one 2D image (int32 labels)."""
    from scipy import ndimage as ndi
    from skimage.feature import peak_local_max
    from skimage.filters import gaussian, threshold_otsu
    from skimage.segmentation import watershed

    from napari_cellseg.segmentation.instances import remove_small

    smooth = gaussian(image.astype(np.float32), BASELINE_SIGMA)
    mask = ndi.binary_fill_holes(smooth > threshold_otsu(smooth))
    distance = ndi.distance_transform_edt(mask)
    peaks = peak_local_max(
        distance,
        min_distance=BASELINE_MIN_DISTANCE,
        labels=ndi.label(mask)[0],
        exclude_border=False,
    )
    markers = np.zeros(image.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return remove_small(watershed(-distance, markers, mask=mask), BASELINE_MIN_SIZE)


def headline(result: MatchingResult) -> dict:
    t = result.thresholds
    return {
        "ap_0.5": round(t[0.5].ap, 4),
        "ap_0.75": round(t[0.75].ap, 4),
        "mean_ap": round(result.mean_ap, 4),
        "f1_0.5": round(t[0.5].f1, 4),
    }


def main(argv: list[str] | None = None) -> int:
    from napari_cellseg.inference.predictor import load_model
    from napari_cellseg.model_file import save_segmentation
    from napari_cellseg.segmentation.tuning import tune_postprocessing

    args, cfg = parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        model = args.model or str(Path(folder) / "quality.pt")
        cfg = dataclasses.replace(
            cfg, train_data=args.train, model=model, max_minutes=cfg.max_minutes or args.minutes
        )
        print(
            f"training {cfg.architecture} (levels {cfg.unet_levels}, filters "
            f"{cfg.start_filters}, im_dim {cfg.im_dim}, {cfg.trim_method}, object diameter "
            f"{cfg.object_diameter:g}, lr {cfg.lr:g} {cfg.lr_schedule}) for {args.minutes} min"
        )
        finished, minutes = train_for(cfg, args.minutes)
        print(f"trained {finished.epochs_run} epochs in {minutes:.1f} min ({finished.reason})")
        yaml_path = Path(model).with_suffix(".yaml")
        predictor = load_model(yaml_path, cfg.device, tta=args.tta)
        val = read_folder(args.val)
        started = time.perf_counter()
        val_maps = [predictor.predict(stack.image) for stack in val]
        tuned = tune_postprocessing(val_maps, val, ignore_label=cfg.blob_label)
        save_segmentation(
            yaml_path, tuned.settings, tta=args.tta, mean_ap=tuned.mean_ap, data=args.val
        )
        seconds = time.perf_counter() - started
        print(f"post-processing tuned on val in {seconds:.0f} s: {tuned}")

        started = time.perf_counter()
        predictor = load_model(yaml_path, cfg.device, tta=args.tta)
        scores = defaultdict(lambda: MatchingScores(ignore_label=cfg.blob_label))
        for stack in read_folder(args.test):
            labels = predictor.instances(*predictor.predict(stack.image))
            size = "x".join(map(str, stack.image.shape[-2:]))
            for z, name in enumerate(page_names(stack.name, len(stack.image))):
                for key in ("network", f"network {size}"):
                    scores[key].add(name, stack.labels[z], labels[z])
                scores["classical"].add(name, stack.labels[z], baseline_labels(stack.image[z]))
        network, classical = scores.pop("network"), scores.pop("classical")
        print(f"scored {len(network.images)} test images in {time.perf_counter() - started:.0f} s")
        for key, group in sorted(scores.items()):
            t = group.result().thresholds[0.5]
            print(
                f"  images of {key.split()[1]}: {len(group.images)}, {t.tp + t.fn} "
                f"objects, AP@0.5 {t.ap:.3f} (tp {t.tp}, fp {t.fp}, fn {t.fn})"
            )
    summary = {**headline(network.result()), "train_minutes": round(minutes, 2)}
    summary["baseline"] = headline(classical.result())
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
