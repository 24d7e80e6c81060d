"""The score that matters: the instances of the validation images, matched to the truth.

- every epoch, :class:`InstanceScore` (below);
- at the end, the segmentation settings are tuned on them (:func:`tune_on_validation`);
- at the end of a fine-tuning run, the model it started from and the new one are scored
  on the same validation data (:func:`compare_models`): a fine-tuned model worse than
  its start is said, not silently kept.

Validation loss and IoU measure pixels; a biologist counts objects.  After each epoch the
network predicts the validation images whole (tiled as at prediction time), segments them
with the run's settings and scores the instances against the annotation
(:mod:`napari_cellseg.analysis.matching`): ``ap`` (the mean AP over IoU 0.5..0.95) and
``ap50`` join the epoch's validation metrics, so they reach the CSV, TensorBoard, the live
plot and the ``best-val-ap`` checkpoint.

It may cost at most :data:`BUDGET` of an epoch: the first scoring takes the validation
pages in a fixed order until its time is spent, and that many pages (at least one) are
scored in every later epoch, so the epochs compare.
"""

from __future__ import annotations

import time

import numpy as np

from napari_cellseg.config import TrainConfig
from napari_cellseg.training.events import ModelsCompared, PostprocessTuned

__all__ = ["InstanceScore", "BUDGET", "tune_on_validation", "compare_models"]

BUDGET = 0.10
"""The share of an epoch's time the instance score may take."""


class InstanceScore:
    """Scores a network's instances on the validation pages that hold objects; ``notes``
    says when none does (it is then false).

    Parameters
    ----------
    cfg
        The run's settings (segmentation settings, blob label, tiling side).
    stacks
        The validation stacks (``image`` and ``labels`` of shape (Z, H, W)).
    device
        Where the network is.
    record
        The run's record (``train_image_side`` for models trained with resizing).
    """

    def __init__(self, cfg: TrainConfig, stacks, device, record: dict) -> None:
        self.cfg, self.device, self.record = cfg, device, record
        first = 1 if cfg.blob_label is None else cfg.blob_label + 1
        pages = [page for page in _pages(stacks) if (page[1] >= first).any()]
        order = np.random.default_rng(cfg.seed).permutation(len(pages))
        self.pages = [pages[i] for i in order]
        self.count: int | None = None  # pages scored each epoch, set by the first scoring
        self.notes = (
            [
                "The validation data holds no objects: the instances' AP is not scored and "
                "there is no best-val-ap checkpoint.  Give validation images with annotated "
                "objects to have it."
            ]
            if stacks and not pages
            else []
        )

    def __bool__(self) -> bool:
        return bool(self.pages)

    def __call__(self, network, epoch_seconds: float) -> dict[str, float]:
        """``ap`` and ``ap50`` of ``network`` (left in eval mode) on the validation pages."""
        from napari_cellseg.inference.predictor import Predictor
        from napari_cellseg.model_file import ModelFile

        predictor = Predictor(network, ModelFile.unsaved(self.cfg, self.record), self.device)
        started = time.perf_counter()

        def within_budget(index: int) -> bool:
            if self.count is None and time.perf_counter() - started > BUDGET * epoch_seconds:
                self.count = index + 1
            return self.count is None or index + 1 < self.count

        scores = _scores(predictor, self.pages, self.cfg.blob_label, within_budget)
        self.count = self.count or len(self.pages)
        return scores


def _pages(stacks) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, labels) of every page of the annotated ``stacks``."""
    return [
        (stack.image[z], stack.labels[z])
        for stack in stacks
        if stack.labels is not None
        for z in range(len(stack.image))
    ]


def _scores(predictor, pages, blob_label: int | None, go_on=None) -> dict[str, float]:
    """``ap`` and ``ap50`` of ``predictor``'s instances (its own settings) on the (image,
    labels) ``pages``, in order while ``go_on(index)`` of the page just scored holds."""
    from napari_cellseg.analysis.matching import MatchingScores

    scores = MatchingScores(ignore_label=blob_label)
    for index, (image, truth) in enumerate(pages):
        scores.add(str(index), truth, predictor.instances(*predictor.predict(image)))
        if go_on is not None and not go_on(index):
            break
    result = scores.result()
    return {"ap": result.mean_ap, "ap50": result.thresholds[0.5].ap}


def tune_on_validation(cfg: TrainConfig, model_path, stacks, device) -> PostprocessTuned:
    """Tune the segmentation thresholds of the model at ``model_path`` on ``stacks`` and
    write them to its yaml."""
    from napari_cellseg.inference.predictor import load_model
    from napari_cellseg.model_file import save_segmentation, yaml_beside
    from napari_cellseg.segmentation.tuning import tune_postprocessing

    yaml_path = yaml_beside(model_path)
    predictor = load_model(yaml_path, device=str(device))
    maps = [predictor.predict(stack.image) for stack in stacks]
    tuned = tune_postprocessing(maps, stacks, ignore_label=cfg.blob_label)
    data = cfg.val_data or "held-out training data"
    save_segmentation(yaml_path, tuned.settings, mean_ap=tuned.mean_ap, data=data)
    return PostprocessTuned(path=str(yaml_path), tuned=tuned)


def compare_models(cfg: TrainConfig, model_path, stacks, device) -> ModelsCompared:
    """Score the model ``cfg.init_model`` and the new one at ``model_path`` on the same
    validation ``stacks``, each segmented with its own settings."""
    from napari_cellseg.inference.predictor import load_model
    from napari_cellseg.model_file import model_yaml, yaml_beside

    paths = {"init": str(model_yaml(cfg.init_model)), "final": str(yaml_beside(model_path))}
    scores = {
        which: _scores(load_model(path, device=str(device)), _pages(stacks), cfg.blob_label)
        for which, path in paths.items()
    }
    return ModelsCompared(paths["init"], paths["final"], scores["init"], scores["final"])
