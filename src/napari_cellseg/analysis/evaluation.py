"""Scores of whole files and folders: label images paired by name, pages or volumes.

``cellseg evaluate --gt DIR --pred DIR`` scores two folders of label files
(:func:`evaluate_folders`); the pipeline's predictions are scored file by file with
:func:`add_stack`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from napari_cellseg.analysis.matching import MatchingResult, MatchingScores, page_names
from napari_cellseg.errors import DataError

__all__ = ["evaluate_folders", "add_stack"]

log = logging.getLogger(__name__)


def add_stack(scores, name: str, gt, pred, volumes: bool) -> None:
    """Score a file's pages as images ``<name>_p000``, ..., or (``volumes``) the whole
    stack as one 3D image ``<name>``."""
    if volumes:
        scores.add(name, gt, pred)
        return
    for page, g, p in zip(page_names(name, len(gt)), gt, pred, strict=True):
        scores.add(page, g, p)


def evaluate_folders(
    gt_dir: str | Path, pred_dir: str | Path, *, ignore_label: int | None, volumes: bool = False
) -> MatchingResult:
    """Score the label images of ``pred_dir`` against those of ``gt_dir``, paired by name
    (a multipage file page by page, or as one 3D image with ``volumes``).

    Raises
    ------
    DataError
        When a folder is missing or empty, a ground-truth file has no prediction, or a
        pair differs in shape.
    """
    from napari_cellseg.data.io import SUFFIXES, read_image

    gt_dir = Path(gt_dir)
    if (gt_dir / "labels").is_dir():
        gt_dir = gt_dir / "labels"
    gt_files, pred_files = _label_files(gt_dir), _label_files(Path(pred_dir))
    scores = MatchingScores(ignore_label=ignore_label)
    used: set[Path] = set()
    for stem, gt_path in gt_files.items():
        pred_path = pred_files.get(f"{stem}_labels") or pred_files.get(stem)
        used.add(pred_path)
        if pred_path is None:
            raise DataError(
                f"No prediction for '{gt_path}': expected '{Path(pred_dir) / stem}_labels.tif' "
                f"(or '{stem}' with extension {', '.join(SUFFIXES)})."
            )
        gt, pred = read_image(gt_path), read_image(pred_path)
        if gt.shape != pred.shape:
            raise DataError(
                f"'{gt_path}' is {gt.shape} (pages, height, width) but '{pred_path}' is "
                f"{pred.shape}; compare label images of the same size."
            )
        try:
            add_stack(scores, stem, gt, pred, volumes)
        except DataError as exc:
            raise DataError(f"'{gt_path}' vs '{pred_path}': {exc}") from None
    extra = sorted(path.name for path in pred_files.values() if path not in used)
    if extra:
        listed = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        log.warning(
            "%d label files of '%s' have no ground truth in '%s' and are not scored: %s.",
            len(extra), pred_dir, gt_dir, listed,
        )  # fmt: skip
    return scores.result()


def _label_files(folder: Path) -> dict[str, Path]:
    """File stem -> path of the label images in ``folder``; refuses a missing or empty one."""
    from napari_cellseg.data.io import SUFFIXES, images_by_stem

    if not folder.is_dir():
        raise DataError(f"Folder '{folder}' does not exist; check the path.")
    files = images_by_stem(folder)
    if not files:
        raise DataError(f"'{folder}' holds no label images ({', '.join(SUFFIXES)}).")
    return files
