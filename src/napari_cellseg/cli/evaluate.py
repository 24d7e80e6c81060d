"""``python -m napari_cellseg.evaluate``: score instance labels against ground truth.

Two ways::

    python -m napari_cellseg.evaluate --gt data/test --pred predictions [--json scores.json]
    python -m napari_cellseg.evaluate --config models/nuclei.yaml --test_data data/test

The first compares label images by name: each ground-truth file ``<name>`` (in
``<gt>/labels`` if that folder exists, else in ``<gt>``) with ``<pred>/<name>_labels.*``
or ``<pred>/<name>.*``.  The second predicts ``<test_data>/images`` first (the predict
flags ``--output``/``--plot``/... apply).  Pages of a multipage file are scored as
images ``<name>_p000``, ..., or with ``--volumes`` each file as one 3D image (z-stacks with
3D ground truth, predicted with ``--stitch_threshold``).  A table goes to the screen;
``--json FILE`` writes ``{"thresholds": {"0.5": {tp, fp, fn, precision, recall, ap, f1, pq,
mean_matched_iou}, ...}, "mean_ap": ..., "images": [{"name": ..., "thresholds": ...}]}``.

``tune_postprocess_main`` is ``cellseg tune-postprocess --config X.yaml --val_data DIR``:
it searches the segmentation thresholds on DIR and writes them into the model yaml
(with ``--tta``: those for test-time augmented maps, under ``tta_segmentation``).
"""

from __future__ import annotations

import argparse
import json
import sys

from napari_cellseg.cli.common import report_errors
from napari_cellseg.config import PredictConfig, TrainConfig
from napari_cellseg.config_io import add_config_arguments
from napari_cellseg.errors import ConfigError, DataError
from napari_cellseg.model_file import is_builtin, model_yaml, save_segmentation

__all__ = ["main", "tune_postprocess_main"]

_BLOB_DEFAULT = TrainConfig().blob_label


def make_parser(prog: str = "python -m napari_cellseg.evaluate") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Score instance labels against ground truth: object matching at IoU "
        "0.5, 0.55, ..., 0.95 (TP, FP, FN, precision, recall, AP = TP / (TP + FP + FN), F1, "
        "panoptic quality, mean matched IoU). Give --gt and --pred, or --config and "
        "--test_data to predict first.",
    )
    parser.add_argument("--gt", help="folder of ground-truth label images (or its labels/)")
    parser.add_argument("--pred", help="folder of predicted label images (<name>_labels.tif)")
    parser.add_argument("--json", help="write every figure to this JSON file")
    parser.add_argument(
        "--volumes",
        action="store_true",
        help="score each multipage file as one 3D image, not page by page (z-stacks with "
        "3D ground truth; predict them with --stitch_threshold)",
    )
    parser.add_argument(
        "--blob_label",
        "--blob-label",
        help="ground-truth value of blob regions, excluded from the scores; 'none' = no "
        f"blobs (default: the model's, else {_BLOB_DEFAULT})",
    )
    add_config_arguments(parser, PredictConfig, skip=("architecture", "channels"))
    return parser


@report_errors
def main(argv: list[str] | None = None) -> int:
    """Parse the flags, score, print the table (write the JSON); return the exit code."""
    from napari_cellseg.analysis.evaluation import add_stack, evaluate_folders
    from napari_cellseg.analysis.matching import MatchingScores, format_table
    from napari_cellseg.config_io import config_from_args
    from napari_cellseg.io_utils import atomic_write_text

    args = make_parser().parse_args(argv)
    settings = config_from_args(PredictConfig, args)
    if bool(args.gt) != bool(args.pred) or bool(args.gt) == bool(settings.config):
        raise ConfigError("Give --gt and --pred, or --config and --test_data (not both).")
    if args.volumes and settings.config and not settings.stitch_threshold:
        raise ConfigError(
            "--volumes scores 3D objects, but the slices' objects are not linked: add "
            "--stitch_threshold (e.g. 0.5)."
        )
    if args.gt:
        ignore = _blob_label(args.blob_label, _BLOB_DEFAULT)
        result = evaluate_folders(args.gt, args.pred, ignore_label=ignore, volumes=args.volumes)
    else:
        from napari_cellseg.cli.common import ProgressBars
        from napari_cellseg.pipeline import predict_folder

        scores = None
        with ProgressBars("predict") as bars:
            for item in predict_folder(settings, labels=True, progress=bars.update):
                if scores is None:
                    scores = MatchingScores(
                        ignore_label=_blob_label(args.blob_label, item.ignore_label)
                    )
                add_stack(scores, item.stack.name, item.stack.labels, item.labels, args.volumes)
        result = scores.result()
    print(format_table(result))
    if args.json:
        atomic_write_text(args.json, json.dumps(result.as_dict(), indent=2))
        print(f"scores written to {args.json}")
    return 0


def _blob_label(text: str | None, default: int | None) -> int | None:
    """The --blob_label value: ``default`` when not given, None for 'none', else an int."""
    if text is None:
        return default
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--blob_label is {text!r}; give an integer or 'none'.") from None


# --- cellseg tune-postprocess ------------------------------------------------------------------


def make_tune_parser(prog: str = "cellseg tune-postprocess") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Search the segmentation settings (obj_threshold, bnd_threshold, "
        "split_depth, min_size, small_object_prob) that maximise mean AP(0.5:0.95) on "
        "validation data and write them into the model yaml (every other entry is kept). "
        "With --tta: the settings for test-time augmented maps, which the model then uses "
        "whenever it predicts with --tta.",
    )
    parser.add_argument("--config", required=True, help="the model's .yaml")
    parser.add_argument(
        "--val_data", "--val-data", required=True, help="folder with images/ and labels/"
    )
    add_config_arguments(
        parser,
        PredictConfig,
        skip=("config", "test_data", "output", "plot", "architecture", "channels"),
    )
    return parser


@report_errors
def tune_postprocess_main(argv: list[str] | None = None) -> int:
    """``cellseg tune-postprocess``: tune, print before/after, update the yaml."""
    from tqdm import tqdm

    from napari_cellseg.config_io import config_from_args
    from napari_cellseg.data.io import read_folder
    from napari_cellseg.inference.predictor import load_model, tiling_options
    from napari_cellseg.segmentation.tuning import (
        MIN_TUNING_OBJECTS,
        count_tuning_objects,
        score_postprocessing,
        tune_postprocessing,
    )

    args = make_tune_parser().parse_args(argv)
    settings = config_from_args(PredictConfig, args)
    yaml_path = model_yaml(args.config)
    if is_builtin(yaml_path):
        raise ConfigError(
            f"'{args.config}' is a built-in model, which tuning would change for every user: "
            f"copy {yaml_path} and the .pt beside it to a folder of yours and give --config "
            "that copy."
        )
    stacks = read_folder(args.val_data)
    predictor = load_model(yaml_path, settings.device, **tiling_options(settings))
    cfg = predictor.config
    objects = count_tuning_objects(stacks, cfg.blob_label)
    if objects < MIN_TUNING_OBJECTS:
        raise DataError(
            f"The labels of '{args.val_data}' hold {objects} objects: settings tuned on fewer "
            f"than {MIN_TUNING_OBJECTS} fit those objects' noise, so '{yaml_path}' keeps its "
            "settings.  Tune on more annotated images (the held-out images of your training "
            "data, for example)."
        )
    maps = [
        predictor.predict(s.image, diameter=settings.diameter)
        for s in tqdm(stacks, desc="predict", file=sys.stderr)
    ]
    current = predictor.segmentation()
    before = score_postprocessing(maps, stacks, current, ignore_label=cfg.blob_label)
    with tqdm(desc="tune", file=sys.stderr) as bar:

        def progress(done: int, planned: int) -> None:
            bar.total = planned
            bar.update(done - bar.n)

        tuned = tune_postprocessing(maps, stacks, ignore_label=cfg.blob_label, progress=progress)
    save_segmentation(
        yaml_path, tuned.settings, tta=settings.tta, mean_ap=tuned.mean_ap, data=args.val_data
    )
    kind = " of test-time augmented maps" if settings.tta else ""
    print(
        f"mean AP(0.5:0.95){kind} on {args.val_data}: {before:.3f} with "
        f"{current.describe()}\n"
        f"tuned: {tuned.mean_ap:.3f} with {tuned.settings.describe()} "
        f"(written to {yaml_path})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
