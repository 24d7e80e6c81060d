"""The prediction pipeline below every front end: read → predict → segment → (stitch) →
measure → write.

``cellseg predict``, ``cellseg evaluate --config``, the Predict dock and its *Predict a
folder…* all run these functions; the front ends only turn progress into bars and the
results into printouts or layers.  Progress comes as records through a callback
(:class:`ImageStarted` per file, :class:`~napari_cellseg.inference.predictor.PredictProgress`
per batch of tiles); setting the ``cancel`` event stops after the current batch of tiles.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_cellseg.config import PredictConfig
from napari_cellseg.data.io import Stack
from napari_cellseg.errors import ConfigError, DataError
from napari_cellseg.segmentation.settings import SegmentationSettings

__all__ = [
    "ImageStarted",
    "StackPrediction",
    "segment_maps",
    "predict_folder",
    "check_folder_job",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageStarted:
    """Image ``index`` (from 0) of ``total``, named ``name``, is being predicted."""

    index: int
    total: int
    name: str


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
    augmented: list[np.ndarray] | None = None  # with tta and measure: see analysis.confidence


def segment_maps(
    objects: np.ndarray,
    boundaries: np.ndarray,
    settings: SegmentationSettings,
    *,
    blob_label: int | None,
    stitch_threshold: float = 0.0,
) -> tuple[np.ndarray, bool]:
    """Instance labels of the maps, numbered as annotations (no object takes
    ``blob_label``); a stack's linked into 3D objects when ``stitch_threshold`` > 0.

    Returns
    -------
    labels : np.ndarray
        int32, the maps' shape.
    stitched : bool
        Whether the labels are 3D objects (a stack of more than one slice, stitched).
    """
    from napari_cellseg.segmentation.instances import instances
    from napari_cellseg.segmentation.stitching import stitch_slices

    labels = instances(objects, boundaries, **settings.as_dict(), skip_label=blob_label)
    stitched = stitch_threshold > 0 and labels.ndim == 3 and len(labels) > 1
    if stitched:
        labels = stitch_slices(labels, stitch_threshold, blob_label)
    return labels, stitched


def predict_folder(
    settings: PredictConfig,
    *,
    labels: bool = False,
    segmentation: SegmentationSettings | None = None,
    progress: Callable[[object], object] | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[StackPrediction]:
    """Predict every image of ``settings.test_data``, one file at a time.

    Each file is read when its turn comes, so memory holds one image and its outputs, not
    the folder.  Writes the output files ``settings`` asks for, and with ``measure`` the
    ``summary.csv`` of the images written so far.

    Parameters
    ----------
    settings
        The job: model, images, outputs, tiling, test-time augmentation, stitching.
    labels
        Require a label image for every image (scoring).
    segmentation
        Settings to use instead of the model's (:meth:`ModelFile.segmentation
        <napari_cellseg.model_file.ModelFile.segmentation>`).
    progress
        Called with an :class:`ImageStarted` per file and a ``PredictProgress`` per batch of
        tiles.
    cancel
        When set, the run stops after the current batch of tiles (no partial outputs).

    Raises
    ------
    ConfigError
        When ``config`` or ``test_data`` is empty, or ``plot``, ``measure`` or ``rois`` is
        set without ``output``, or ``output`` is the images' folder.
    DataError
        At the end, when files could not be read or segmented: every other file is done
        first, and the message lists each skipped file with its reason.
    """
    from napari_cellseg.analysis.measure import rows_csv, summary_rows
    from napari_cellseg.data.io import list_folder
    from napari_cellseg.inference.predictor import load_model, tiling_options
    from napari_cellseg.io_utils import atomic_write_text

    check_folder_job(settings)
    predictor = load_model(settings.config, settings.device, **tiling_options(settings))
    if settings.tta and predictor.model_file.tta_segmentation is None and segmentation is None:
        log.warning(
            "'%s' has no segmentation settings tuned for test-time augmentation; its others "
            "are used (cellseg tune-postprocess --tta tunes them).",
            settings.config,
        )
    segmentation = segmentation or predictor.segmentation()
    files = list_folder(settings.test_data, labels=labels)
    _keep_earlier_results(settings, [file.name for file in files])
    summary: list[dict] = []
    order = {file.name: index for index, file in enumerate(files)}
    skipped: list[str] = []
    report = progress or (lambda _record: None)
    for result in _outcomes(predictor, files, settings, segmentation, report, cancel):
        if isinstance(result, DataError):  # an unreadable or unfit file: the others go on
            log.warning("skipped: %s", result)
            skipped.append(str(result))
            continue
        table = _write(result, settings)
        if table is not None:  # the summary so far: complete for the images written
            summary += summary_rows(result.stack.name, table, pages=len(result.labels))
            # in the files' order: a cluster's results come as they finish
            summary.sort(key=lambda row: order[row["image"]])
            atomic_write_text(Path(settings.output) / "summary.csv", rows_csv(summary))
        yield result
    if skipped:
        raise DataError(
            f"{len(skipped)} of {len(files)} images were skipped (the others are done):\n"
            + "\n".join(f"- {reason}" for reason in skipped)
        )


def _outcomes(predictor, files, settings, segmentation, report, cancel) -> Iterator:
    """The prediction of each file, or the DataError that skips it: here one file after
    another, or with ``settings.scheduler`` one dask task per file, as they finish."""
    if settings.scheduler:
        from napari_cellseg.bigimage.tasks import predictor_key, register, run_tasks

        register(predictor)  # tasks run in this process use it
        task = _FileTask(predictor_key(predictor), settings, segmentation)
        for index, result in enumerate(run_tasks(task, files, settings.scheduler, cancel)):
            name = result.stack.name if isinstance(result, StackPrediction) else ""
            report(ImageStarted(index, len(files), name))
            yield result
        return
    for index, file in enumerate(files):
        report(ImageStarted(index, len(files), file.name))
        try:
            result = _predict_file(predictor, file, settings, segmentation, report, cancel)
        except DataError as exc:
            result = exc
        if result is None:  # cancelled
            return
        yield result


@dataclass(frozen=True)
class _FileTask:
    """One file of a folder predicted and segmented where a dask worker runs it."""

    predictor: tuple  # bigimage.tasks.predictor_key
    settings: PredictConfig
    segmentation: SegmentationSettings

    def __call__(self, file) -> StackPrediction | DataError:
        from napari_cellseg.bigimage.tasks import worker_predictor

        predictor = worker_predictor(self.predictor)
        try:
            return _predict_file(predictor, file, self.settings, self.segmentation, _ignore, None)
        except DataError as exc:  # returned: the other files go on
            return exc


def _ignore(_record) -> None:
    """Progress nobody watches (a file predicted on a dask worker)."""


def _predict_file(
    predictor,
    file,
    settings: PredictConfig,
    segmentation: SegmentationSettings,
    report: Callable[[object], object],
    cancel: threading.Event | None,
) -> StackPrediction | None:
    """Read, predict and segment one file (a ``DataFile``); None when cancelled."""
    from napari_cellseg.data.calibration import read_pixel_size, read_z_spacing

    stack = file.read(settings.channel)
    maps = predictor.iter_predict(stack.image, settings.diameter)
    while True:
        try:
            report(next(maps))
        except StopIteration as done:
            objects, boundaries = done.value
            break
        if cancel is not None and cancel.is_set():
            return None
    blob_label = predictor.config.blob_label
    labels, stitched = segment_maps(
        objects,
        boundaries,
        segmentation,
        blob_label=blob_label,
        stitch_threshold=settings.stitch_threshold,
    )
    augmented = None
    if predictor.tta and settings.measure:  # the objects' agreement across the symmetries
        from napari_cellseg.analysis.confidence import augmented_instances

        augmented = augmented_instances(predictor, stack.image, settings.diameter)
    return StackPrediction(
        stack,
        objects,
        boundaries,
        labels,
        blob_label,
        (settings.pixel_size,) * 2 if settings.pixel_size else read_pixel_size(file.image),
        settings.z_spacing or read_z_spacing(file.image),
        stitched,
        augmented,
    )


def check_folder_job(settings: PredictConfig) -> None:
    """Check what a folder job needs beyond valid settings (see :func:`predict_folder`)."""
    if not settings.config:
        raise ConfigError("Setting 'config' is empty: give the model's .yaml (--config).")
    if not settings.test_data:
        raise ConfigError(
            "Setting 'test_data' is empty: give a folder holding images/ (--test_data)."
        )
    for flag, what in (("plot", "PNG figures"), ("measure", "CSV tables"), ("rois", "ROI sets")):
        if getattr(settings, flag) and not settings.output:
            raise ConfigError(f"--{flag} writes {what} into the output folder: add --output DIR.")
    if settings.output and _reads_from(settings.test_data, Path(settings.output).resolve()):
        raise ConfigError(
            f"--output '{settings.output}' is the folder the images are read from: its "
            "outputs would be read as images next time.  Choose another folder."
        )


OUTPUT_SUFFIXES = (
    "_objects.tif",
    "_boundaries.tif",
    "_labels.tif",
    "_measurements.csv",
    "_rois.zip",
)
"""What a file ``<name>`` gives in the output folder (besides figures and ``summary.csv``)."""


def _keep_earlier_results(settings: PredictConfig, names: list[str]) -> None:
    """Refuse to write over results of an earlier run, unless ``overwrite``."""
    if not settings.output or settings.overwrite:
        return
    out = Path(settings.output)
    earlier = [out / f"{name}{suffix}" for name in names for suffix in OUTPUT_SUFFIXES]
    earlier = [path for path in [*earlier, out / "summary.csv"] if path.exists()]
    if earlier:
        more = f" and {len(earlier) - 1} more" if len(earlier) > 1 else ""
        raise ConfigError(
            f"'{out}' holds results of an earlier run ('{earlier[0].name}'{more}): choose "
            "another output folder, or give --overwrite to replace them."
        )


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

    def page(array: np.ndarray) -> np.ndarray:
        return array[0] if single else array

    for kind in ("objects", "boundaries", "labels"):
        write_tiff(out / f"{stack.name}_{kind}.tif", page(getattr(result, kind)))
    if settings.measure:
        table = measure_table(
            page(result.labels),
            page(stack.image),
            pixel_size=result.pixel_size,
            z_spacing=result.z_spacing,
            volumes=result.stitched,
            channels={name: page(array) for name, array in stack.channels.items()},
            maps=(page(result.objects), page(result.boundaries)),
            augmented=None if result.augmented is None else [page(a) for a in result.augmented],
        )
        atomic_write_text(out / f"{stack.name}_measurements.csv", table_csv(table))
    if settings.rois:
        write_rois(out / f"{stack.name}_rois.zip", page(result.labels))
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
