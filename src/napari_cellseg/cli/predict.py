"""``python -m napari_cellseg.predict``: probability maps and instance labels of a folder.

Example::

    python -m napari_cellseg.predict --config models/nuclei.yaml --test_data data/test \\
        --output predictions --plot

Reads ``<test_data>/images`` (and ``<test_data>/labels`` where present: the scores are
then printed); ``--test_data`` may also be a folder of images or one image file.  With
``--output DIR`` it writes, per input file ``<name>``:

- ``<name>_objects.tif`` and ``<name>_boundaries.tif``: float32 probabilities in [0, 1]
- ``<name>_labels.tif``: int32 instance labels, 0 background, objects numbered from 2
  (1 is the blob value; a model with ``blob_label`` none numbers them from 1), so they
  can be corrected and trained on as they are

each of the input's height x width; a multipage input gives multipage outputs (page i
of each output belongs to page i of the input).  ``--plot`` adds ``<name>.png`` (for a
stack ``<name>_p000.png``, ... per page): image, ground truth when present, objects,
boundaries, instances.  ``--measure`` adds ``<name>_measurements.csv``: one row per
object (and page) with its label, area, centroid, intensities and shape
(:mod:`napari_cellseg.analysis.measure`), sizes also in micrometres where the pixel size is
known (``--pixel_size``, or the calibration of a Fiji/ImageJ or OME TIFF).  A z-stack
predicted with ``--stitch_threshold`` (e.g. 0.5) has 3D objects: the objects of
neighbouring slices that overlap are one (:mod:`napari_cellseg.segmentation.stitching`), and its
table has one row per 3D object with its volume (in cubic micrometres too when the
slice spacing is known: ``--z_spacing`` or the file's calibration).  ``--measure`` also
writes ``summary.csv``: one row per image (per page of a stack measured page by page) with
its number of objects, how many touch the image's edge, their median sizes and mean
intensity: the counts of a whole folder in one table.  ``--rois`` adds
``<name>_rois.zip``: every object's outline as an ImageJ ROI (Fiji's ROI Manager opens it;
a stack's ROIs sit on their slices), traced along the pixel edges so that Fiji measures the
areas the labels hold.  A multichannel TIFF (a Fiji hyperstack, an OME-TIFF) needs
``--channel N``: the channel that shows the objects; ``--measure`` then adds the mean and
integrated intensity of every other channel (``mean_intensity_c2``, ...).
``--architecture`` and ``--channels`` (the seed tool's flags) are accepted and ignored:
the model yaml holds them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_cellseg.cli.common import build_parser, report_errors
from napari_cellseg.config import PredictConfig, config_from_args
from napari_cellseg.data.io import Stack
from napari_cellseg.errors import ConfigError

__all__ = ["main", "make_parser", "predict_folder", "StackPrediction"]


@dataclass
class StackPrediction:
    """The maps and labels predicted for one input file (arrays ``(Z, H, W)``).

    ``ignore_label`` is the model's blob label, for scoring against ``stack.labels``.
    """

    stack: Stack
    objects: np.ndarray
    boundaries: np.ndarray
    labels: np.ndarray
    ignore_label: int | None
    pixel_size: tuple[float, float] | None = None
    z_spacing: float | None = None
    stitched: bool = False  # the labels are 3D objects (one value across slices)


def make_parser(prog: str = "python -m napari_cellseg.predict") -> argparse.ArgumentParser:
    return build_parser(
        prog,
        PredictConfig,
        "Predict object and boundary probabilities and instance labels of every image in "
        "<test_data>/images with a trained model; score them against <test_data>/labels "
        "where present.",
    )


@report_errors
def main(argv: list[str] | None = None) -> int:
    """Parse the flags, predict (write outputs), print the scores; return the exit code."""
    from napari_cellseg.analysis.matching import MatchingScores, format_table, page_names

    settings = config_from_args(PredictConfig, make_parser().parse_args(argv))
    scores = None
    for result in predict_folder(settings):
        stack = result.stack
        if stack.labels is not None:
            scores = scores or MatchingScores(ignore_label=result.ignore_label)
            for name, gt, pred in zip(
                page_names(stack.name, len(stack.labels)), stack.labels, result.labels, strict=True
            ):
                scores.add(name, gt, pred)
    if settings.output:
        print(f"predictions written to {settings.output}")
    if scores is not None:
        print(f"scores of the {len(scores.images)} labelled images:")
        print(format_table(scores.result()))
    return 0


def predict_folder(
    settings: PredictConfig, *, labels: bool = False, segment: dict | None = None
) -> Iterator[StackPrediction]:
    """Predict every image of ``settings.test_data``, one file at a time, with progress bars.

    Each file is read when its turn comes, so memory holds one image and its outputs, not
    the folder.  Writes the output files and figures ``settings`` asks for.
    ``labels=True`` requires a label image for every image.  ``segment``: post-processing
    settings (:data:`~napari_cellseg.segmentation.instances.SEGMENT_KEYS`) to use instead of the
    model's.

    Raises
    ------
    ConfigError
        When ``config`` or ``test_data`` is empty, or ``plot`` is set without ``output``.
    """
    from tqdm import tqdm

    from napari_cellseg.analysis.measure import rows_csv, summary_rows
    from napari_cellseg.data.calibration import read_pixel_size, read_z_spacing
    from napari_cellseg.data.io import list_folder
    from napari_cellseg.inference.predictor import load_model, tiling_options
    from napari_cellseg.io_utils import atomic_write_text
    from napari_cellseg.segmentation.stitching import stitch_slices

    _check(settings)
    predictor = load_model(settings.config, settings.device, **tiling_options(settings))
    if settings.tta and predictor.tta_settings is None and segment is None:
        print(
            f"note: '{settings.config}' has no segmentation settings tuned for test-time "
            "augmentation; its others are used (cellseg tune-postprocess --tta tunes them).",
            file=sys.stderr,
        )
    segmentation = {**predictor.segmentation(), **(segment or {})}
    files = list_folder(settings.test_data, labels=labels)
    summary: list[dict] = []
    for file in tqdm(files, unit="image", desc="predict", file=sys.stderr):
        stack = file.read(settings.channel)
        with tqdm(unit="tile", desc=file.name[:24], leave=False, file=sys.stderr) as bar:

            def advance(progress, bar=bar) -> None:
                bar.total = progress.total  # the diameter estimate may add passes
                bar.update(progress.done - bar.n)

            objects, boundaries = predictor.predict(stack.image, advance, settings.diameter)
        labels = predictor.instances(objects, boundaries, segmentation)
        stitched = settings.stitch_threshold > 0 and len(labels) > 1
        if stitched:
            labels = stitch_slices(labels, settings.stitch_threshold, predictor.config.blob_label)
        result = StackPrediction(
            stack,
            objects,
            boundaries,
            labels,
            predictor.config.blob_label,
            (settings.pixel_size,) * 2 if settings.pixel_size else read_pixel_size(file.image),
            settings.z_spacing or read_z_spacing(file.image),
            stitched,
        )
        table = _write(result, settings)
        if table is not None:  # the summary so far: complete for the images written
            summary += summary_rows(stack.name, table, pages=len(labels))
            atomic_write_text(Path(settings.output) / "summary.csv", rows_csv(summary))
        yield result


def _check(settings: PredictConfig) -> None:
    if not settings.config:
        raise ConfigError("Setting 'config' is empty: give the model's .yaml (--config).")
    if not settings.test_data:
        raise ConfigError(
            "Setting 'test_data' is empty: give a folder holding images/ (--test_data)."
        )
    for name, what in (("pixel_size", "the side of a pixel"), ("z_spacing", "the slice spacing")):
        if getattr(settings, name) < 0:
            raise ConfigError(
                f"Setting '{name}' is {getattr(settings, name)}: give {what} in micrometres, "
                "or 0 to read it from the images' calibration."
            )
    if settings.channel < 0:
        raise ConfigError(
            f"Setting 'channel' is {settings.channel}: give the channel that shows the "
            "objects (1, 2, ...), or 0 for images of one channel."
        )
    if not 0 <= settings.stitch_threshold <= 1:
        raise ConfigError(
            f"Setting 'stitch_threshold' is {settings.stitch_threshold}: give the overlap "
            "(0-1, e.g. 0.5) that links the objects of neighbouring slices, or 0 to keep "
            "every slice's objects apart."
        )
    for flag, what in (("plot", "PNG figures"), ("measure", "CSV tables"), ("rois", "ROI sets")):
        if getattr(settings, flag) and not settings.output:
            raise ConfigError(f"--{flag} writes {what} into the output folder: add --output DIR.")
    if settings.output and _reads_from(settings.test_data, Path(settings.output).resolve()):
        raise ConfigError(
            f"--output '{settings.output}' is the folder the images are read from: its "
            "outputs would be read as images next time.  Choose another folder."
        )
    for name, default in (("architecture", ""), ("channels", 0)):
        if getattr(settings, name) != default:
            print(f"note: --{name} is ignored; the model yaml sets it.", file=sys.stderr)


def _reads_from(test_data: str, folder: Path) -> bool:
    """Whether ``test_data`` (``+``-joined parts, see ``read_folder``) has images in ``folder``."""
    for part in filter(None, (p.strip() for p in test_data.split("+"))):
        path = Path(part)
        images = path.parent if path.is_file() else path / "images"
        if (images if images.is_dir() else path).resolve() == folder:
            return True
    return False


def _write(result: StackPrediction, settings: PredictConfig) -> dict | None:
    """Write the files ``settings`` asks for; returns the measurements when measured."""
    from napari_cellseg.analysis.matching import page_names
    from napari_cellseg.analysis.measure import measure_table, table_csv
    from napari_cellseg.analysis.plotting import save_prediction_figure
    from napari_cellseg.analysis.rois import write_rois
    from napari_cellseg.data.io import write_tiff
    from napari_cellseg.io_utils import atomic_write_text

    if not settings.output:
        return None
    out, stack, table = Path(settings.output), result.stack, None
    single = len(stack.image) == 1
    for kind in ("objects", "boundaries", "labels"):
        array = getattr(result, kind)
        write_tiff(out / f"{stack.name}_{kind}.tif", array[0] if single else array)
    if settings.measure:
        page = (lambda array: array[0]) if single else (lambda array: array)
        table = measure_table(
            page(result.labels),
            page(stack.image),
            pixel_size=result.pixel_size,
            z_spacing=result.z_spacing,
            volumes=result.stitched,
            channels={name: page(array) for name, array in stack.channels.items()},
        )
        atomic_write_text(out / f"{stack.name}_measurements.csv", table_csv(table))
    if settings.rois:
        write_rois(out / f"{stack.name}_rois.zip", result.labels[0] if single else result.labels)
    if settings.plot:
        for z, name in enumerate(page_names(stack.name, len(stack.image))):
            save_prediction_figure(
                out / f"{name}.png",
                stack.image[z],
                result.objects[z],
                result.boundaries[z],
                result.labels[z],
                None if stack.labels is None else stack.labels[z],
                title=name,
            )
    return table


if __name__ == "__main__":
    sys.exit(main())
