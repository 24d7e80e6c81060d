"""Fine-tuning the built-in nuclei model against training from scratch, on new images.

The package's synthetic nuclei stand in for a biologist's own microscope: the built-in
model (trained on DSB2018 fluorescence) has never seen them.  With the same few annotated
images and the same minutes of CPU training, one run starts from random weights and one
from the built-in model (``--init_model nuclei``), both with the built-in model's
settings.  Each model (and the built-in one untouched) then has its post-processing tuned
on 4 other images and is scored on 8 held-out ones.

    python benchmarks/fine_tune.py --images 4 --minutes 3

The last line printed is one JSON object ``{"built_in": {...}, "scratch": {...},
"fine_tuned": {...}}``, each with ``ap_0.5``, ``ap_0.75``, ``mean_ap``, ``f1_0.5`` and
(trained ones) ``train_minutes``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from quality import headline

from napari_cellseg.analysis.matching import MatchingScores, page_names
from napari_cellseg.config import TrainConfig
from napari_cellseg.config_io import from_dict, read_yaml_dict
from napari_cellseg.data.io import read_folder
from napari_cellseg.data.synthetic import write_dataset
from napari_cellseg.inference.predictor import load_model
from napari_cellseg.model_file import BUILTIN_MODELS, save_segmentation
from napari_cellseg.segmentation.tuning import tune_postprocessing
from napari_cellseg.training.loop import run_training

SHAPE = (256, 256)


def score(yaml_path: Path, val: Path, test: Path) -> dict:
    """Tune the post-processing of a model on ``val``, then score it on ``test``."""
    predictor = load_model(yaml_path)
    stacks = read_folder(val)
    tuned = tune_postprocessing([predictor.predict(s.image) for s in stacks], stacks)
    save_segmentation(yaml_path, tuned.settings, mean_ap=tuned.mean_ap, data=str(val))
    predictor = load_model(yaml_path)
    scores = MatchingScores()
    for stack in read_folder(test):
        labels = predictor.instances(*predictor.predict(stack.image))
        for z, name in enumerate(page_names(stack.name, len(stack.image))):
            scores.add(name, stack.labels[z], labels[z])
    return headline(scores.result())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=4, help="annotated training images")
    parser.add_argument("--minutes", type=float, default=3.0, help="training time of each run")
    parser.add_argument("--lr", type=float, default=3e-3, help="learning rate of both runs")
    args = parser.parse_args(argv)
    built_in = BUILTIN_MODELS["nuclei"]
    base = from_dict(TrainConfig, read_yaml_dict(built_in))
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        train = write_dataset(root / "train", args.images, shape=SHAPE, blobs=1, seed=0)
        val = write_dataset(root / "val", 4, shape=SHAPE, seed=50)
        test = write_dataset(root / "test", 8, shape=SHAPE, seed=100)
        copy = root / "built-in" / built_in.name
        copy.parent.mkdir()
        for path in (built_in, built_in.with_suffix(".pt")):
            shutil.copy(path, copy.parent)
        results["built_in"] = score(copy, val, test)
        print(f"built-in model as it is: {results['built_in']}")
        for run, init in (("scratch", ""), ("fine_tuned", "nuclei")):
            cfg = dataclasses.replace(
                base,
                train_data=str(train),
                val_data="",
                val_fraction=0.0,
                model=str(root / run / "model.pt"),
                init_model=init,
                lr=args.lr,
                epochs=10**6,
                early_stop_patience=10**6,
                max_minutes=args.minutes,
                tune_postprocess=False,
                tb_samples=0,
            )
            started = time.perf_counter()
            finished = run_training(cfg)
            minutes = (time.perf_counter() - started) / 60
            results[run] = score(root / run / "model.yaml", val, test)
            results[run]["train_minutes"] = round(minutes, 2)
            print(f"{run}: {finished.epochs_run} epochs in {minutes:.1f} min: {results[run]}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
