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
import threading

from napari_cellseg.cli.common import build_parser, report_errors, stop_on_signals
from napari_cellseg.config import PredictConfig
from napari_cellseg.config_io import config_from_args

__all__ = ["main", "make_parser"]


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
    from napari_cellseg.cli.common import ProgressBars
    from napari_cellseg.pipeline import predict_folder

    settings = config_from_args(PredictConfig, make_parser().parse_args(argv))
    for name, default in (("architecture", ""), ("channels", 0)):
        if getattr(settings, name) != default:
            print(f"note: --{name} is ignored; the model yaml sets it.", file=sys.stderr)
    if settings.output.rstrip("/").endswith(".zarr"):
        return _predict_blockwise(settings)
    scores = None
    with ProgressBars("predict") as bars:
        for result in predict_folder(settings, progress=bars.update):
            stack = result.stack
            if stack.labels is not None:
                scores = scores or MatchingScores(ignore_label=result.ignore_label)
                pages = page_names(stack.name, len(stack.labels))
                for name, gt, pred in zip(pages, stack.labels, result.labels, strict=True):
                    scores.add(name, gt, pred)
    if settings.output:
        print(f"predictions written to {settings.output}")
    if scores is not None:
        print(f"scores of the {len(scores.images)} labelled images:")
        print(format_table(scores.result()))
    return 0


def _predict_blockwise(settings: PredictConfig) -> int:
    """One large image, block by block, into an OME-Zarr (``--output OUT.zarr``)."""
    from tqdm import tqdm

    from napari_cellseg.bigimage.blockwise import segment_blockwise
    from napari_cellseg.bigimage.sources import open_lazy
    from napari_cellseg.inference.predictor import load_model, tiling_options

    image = open_lazy(settings.test_data, settings.channel - 1 if settings.channel else None)
    predictor = load_model(settings.config, settings.device, **tiling_options(settings))
    stop = threading.Event()
    with stop_on_signals(stop), tqdm(desc="blocks", unit="block") as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        result = segment_blockwise(
            image,
            predictor,
            settings.output,
            block=settings.block_size,
            diameter=settings.diameter,
            progress=progress,
            cancel=stop,
            scheduler=settings.scheduler,
        )
    print(
        f"{result.objects} objects in {result.blocks} blocks of '{image.path.name}' "
        f"({image.shape[0]} x {image.shape[1]}) written to {result.path}"
    )
    if settings.measure:
        from napari_cellseg.analysis.measure import table_csv
        from napari_cellseg.bigimage.blockwise import measure_result
        from napari_cellseg.io_utils import atomic_write_text

        table = measure_result(result, image, settings.block_size)
        csv = result.path.with_name(result.path.stem + "_measurements.csv")
        atomic_write_text(csv, table_csv(table))
        print(f"measurements of {len(table['label'])} objects written to {csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
