"""Read images and label images from folders or napari layers into checked :class:`Stack` s.

A data set folder holds ``images/`` and ``labels/``; an image and its label image have
the same file name (the extensions may differ: ``.png``, ``.tif``, ``.tiff``).  Page i
of a multipage TIFF image pairs with page i of its label file.  Several folders are
joined with ``+``: ``"dirA+dirB"``.  A multichannel TIFF (a Fiji hyperstack or an
OME-TIFF with a channel axis) is read one channel at a time: :func:`read_channels`.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_cellseg.errors import DataError
from napari_cellseg.io_utils import atomic_write

__all__ = [
    "Stack",
    "DataFile",
    "read_image",
    "read_channels",
    "read_folder",
    "list_folder",
    "images_by_stem",
    "to_gray",
    "write_tiff",
    "write_pair",
]

SUFFIXES = (".png", ".tif", ".tiff")
_LUMINANCE = np.array([0.2125, 0.7154, 0.0721])  # ITU-R BT.709, as skimage.color.rgb2gray


@dataclass
class Stack:
    """One image file or one napari layer, with its labels.

    Attributes
    ----------
    name
        File stem or layer name.
    image
        ``(Z, H, W)`` in the original dtype; a 2D image has ``Z == 1``.
    labels
        ``(Z, H, W)`` integer labels (0 background, 1 blob, 2.. objects), or None.
    channels
        The other channels of a multichannel file read with a ``channel``: ``c1``,
        ``c2``, ... (the one in ``image`` left out), each ``(Z, H, W)``.
    """

    name: str
    image: np.ndarray
    labels: np.ndarray | None
    channels: dict[str, np.ndarray] = field(default_factory=dict)


def _read_pages(path: Path) -> np.ndarray:
    """``(Z, H, W)`` or ``(Z, H, W, C)`` for colour; errors name the file."""
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                _refuse_channels(path, tif.series[0])
                pages = [page.asarray() for page in tif.pages]
            if len({p.shape for p in pages}) > 1:
                raise DataError(
                    f"The pages of '{path}' differ in size; save each page size as its own file."
                )
            array = np.stack(pages)
        else:
            import imageio.v3 as iio

            array = iio.imread(path, plugin="pillow")[np.newaxis]
    except DataError:
        raise
    except PermissionError:
        raise DataError(
            f"Cannot read '{path}': you have no permission to read it.  Ask its owner, or "
            "copy it to a folder of yours."
        ) from None
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"Cannot read '{path}' ({reason}); check that it is a valid PNG or TIFF file, "
            "re-save it or remove it from the folder."
        ) from None
    if array.ndim not in (3, 4) or (array.ndim == 4 and array.shape[-1] not in (2, 3, 4)):
        raise DataError(
            f"'{path}' has shape {array.shape[1:]}; save it as a 2D grayscale image "
            "(or a multipage TIFF of 2D pages)."
        )
    return array


def _channel_axis(series) -> int | None:
    """The axis of a tifffile series' channels when it has more than one (not RGB samples)."""
    axes = series.axes
    if "C" in axes and series.shape[axes.index("C")] > 1:
        return axes.index("C")
    return None


def _refuse_channels(path: Path, series) -> None:
    axis = _channel_axis(series)
    if axis is not None:
        n = series.shape[axis]
        raise DataError(
            f"'{path}' has {n} channels (a hyperstack, axes {series.axes}): say which one "
            f"shows the objects with --channel 1-{n} when predicting; to train on it, save "
            "that channel as its own file (Fiji: Image > Color > Split Channels)."
        )


def read_channels(path: str | Path) -> np.ndarray:
    """``(Z, C, H, W)``: every channel of a multichannel TIFF (time points and slices
    together as Z); any other image as its one channel.

    Raises
    ------
    DataError
        When the file cannot be read or is not an image of 2D planes.
    """
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        try:
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                axis = _channel_axis(series)
                array = series.asarray() if axis is not None else None
        except Exception:  # read_image says what is wrong with the file
            array = None
        if array is not None and series.axes.endswith("YX"):
            array = np.moveaxis(array, axis, -3)
            return array.reshape(-1, *array.shape[-3:])
    return read_image(path)[:, np.newaxis]


def read_image(path: str | Path) -> np.ndarray:
    """Read a PNG or (multipage) TIFF image as ``(Z, H, W)`` in its own dtype.

    Colour images are converted to grayscale by luminance (alpha dropped), keeping the dtype.

    Raises
    ------
    DataError
        When the file cannot be read or is not a 2D image (or a stack of them).
    """
    array = _read_pages(Path(path))
    return to_gray(array) if array.ndim == 4 else array


def to_gray(array: np.ndarray) -> np.ndarray:
    """A colour image ``(..., 3 or 4)`` as grayscale by luminance (alpha dropped), dtype kept.

    Gray + alpha ``(..., 2)`` gives its gray channel.

    >>> to_gray(np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8))
    array([[54, 18]], dtype=uint8)
    """
    if array.shape[-1] == 2:
        return array[..., 0]
    gray = array[..., :3] @ _LUMINANCE
    if np.issubdtype(array.dtype, np.integer):
        gray = gray.round()
    return gray.astype(array.dtype)


def _read_labels(path: Path) -> np.ndarray:
    """Read a label file as ``(Z, H, W)``; a colour file is accepted only when gray."""
    array = _read_pages(path)
    if array.ndim == 4:
        if not (array[..., :3] == array[..., :1]).all():
            raise DataError(
                f"Label file '{path}' is a colour image; save the labels as a single-channel "
                "integer image (one value per object), e.g. from a napari Labels layer."
            )
        array = array[..., 0]
    return array


def check_pair(image: np.ndarray, labels: np.ndarray, where: str) -> None:
    """Check that ``labels`` (Z, H, W) can label ``image`` (Z, H, W); ``where`` names them."""
    if len(labels) != len(image):
        raise DataError(
            f"{where}: the image has {len(image)} pages but the labels have {len(labels)}; "
            "give each image page its own label page."
        )
    if labels.shape != image.shape:
        raise DataError(
            f"{where}: the image is {image.shape[1]}x{image.shape[2]} but the labels are "
            f"{labels.shape[1]}x{labels.shape[2]} pixels; labels must have the image's size."
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{where}: the labels have dtype {labels.dtype}; convert them to an integer type "
            "(e.g. uint16) with 0 background, 1 blob and one value from 2 per object."
        )
    if labels.size and labels.min() < 0:
        raise DataError(
            f"{where}: the labels contain negative values ({labels.min()}); use 0 for "
            "background, 1 for blobs and positive values for objects."
        )


def images_by_stem(folder: Path) -> dict[str, Path]:
    """Map file stem -> path of the PNG/TIFF files in ``folder``."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in SUFFIXES:
            continue
        if path.stem in found:
            raise DataError(
                f"'{found[path.stem]}' and '{path}' have the same name; "
                "rename or remove one so each image pairs with one label file."
            )
        found[path.stem] = path
    return found


@dataclass(frozen=True)
class DataFile:
    """One image file of a data set and its label file (None: none), not read yet."""

    name: str
    image: Path
    labels: Path | None

    def read(self, channel: int = 0) -> Stack:
        """Read the image (its ``channel``, from 1, when given: the others go to
        ``Stack.channels``) and its labels; a DataError names the file and the fix."""
        image, others = (read_image(self.image), {}) if not channel else self._channels(channel)
        labels = None if self.labels is None else _read_labels(self.labels)
        if labels is not None:
            check_pair(image, labels, f"'{self.image}' and '{self.labels}'")
        return Stack(self.name, image, labels, others)

    def _channels(self, channel: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Channel ``channel`` (from 1) of the image, and the others by name c1, c2, ..."""
        channels = read_channels(self.image)
        if not 1 <= channel <= channels.shape[1]:
            raise DataError(
                f"'{self.image}' has {channels.shape[1]} channel(s): choose --channel from 1 "
                f"to {channels.shape[1]}, not {channel}."
            )
        others = {f"c{k + 1}": channels[:, k] for k in range(channels.shape[1]) if k != channel - 1}
        return channels[:, channel - 1], others


def _list_one_folder(folder: Path, labels: bool) -> list[DataFile]:
    image_dir, label_dir = folder / "images", folder / "labels"
    if not labels and (folder.is_file() or folder.is_dir() and not image_dir.is_dir()):
        return _list_images_only(folder)
    if folder.is_file():
        raise DataError(f"'{folder}' is a file; give a data folder holding images/ and labels/.")
    if not folder.is_dir():
        raise DataError(f"Data folder '{folder}' does not exist; check the path.")
    if not image_dir.is_dir():
        raise DataError(
            f"Data folder '{folder}' has no 'images' folder; put the images in "
            f"'{image_dir}' and their label images (same file names) in '{label_dir}'."
        )
    if labels and not label_dir.is_dir():
        raise DataError(
            f"Data folder '{folder}' has no 'labels' folder; put the label images "
            f"(same file names as the images) in '{label_dir}'."
        )
    images = images_by_stem(image_dir)
    if not images:
        raise DataError(
            f"'{image_dir}' holds no PNG or TIFF images ({', '.join(SUFFIXES)}); add images "
            "or correct the path."
        )
    label_files = images_by_stem(label_dir) if label_dir.is_dir() else {}
    files = []
    for stem, image_path in images.items():
        label_path = label_files.get(stem)
        if label_path is None and labels:
            raise DataError(
                f"Image '{image_path}' has no label image: add '{label_dir / stem}' with "
                f"extension {', '.join(SUFFIXES)} or remove the image."
            )
        files.append(DataFile(stem, image_path, label_path))
    return files


def _list_images_only(path: Path) -> list[DataFile]:
    """One image file, or the image files right inside a folder, without labels."""
    files = {path.stem: path} if path.is_file() else images_by_stem(path)
    if not files:
        raise DataError(
            f"'{path}' holds no 'images' folder and no PNG or TIFF images "
            f"({', '.join(SUFFIXES)}); give an image, a folder of images or a data folder."
        )
    return [DataFile(stem, file, None) for stem, file in files.items()]


def list_folder(spec: str | Path, *, labels: bool = True) -> list[DataFile]:
    """The files :func:`read_folder` reads, each read when asked (``DataFile.read``).

    Prediction of many or large images reads one file at a time this way.  The folder
    structure and the pairing of images and labels are checked here; the files' contents
    when read.
    """
    folders = [part.strip() for part in str(spec).split("+") if part.strip()]
    if not folders:
        raise DataError("No data folder given; give a folder holding images/ and labels/.")
    return [file for folder in folders for file in _list_one_folder(Path(folder), labels)]


def read_folder(spec: str | Path, *, labels: bool = True) -> list[Stack]:
    """Read every image (and its label image) of one or more data set folders.

    Parameters
    ----------
    spec
        A folder holding ``images/`` and ``labels/``, or several joined with ``+``.
    labels
        True: every image must have a label image.  False (prediction): label images
        are read where present, otherwise ``Stack.labels`` is None; a folder without
        ``images/`` gives the images right inside it, and an image file itself.

    Returns
    -------
    list of Stack
        In folder order, then file name order.

    Raises
    ------
    DataError
        For a missing folder, an empty folder, an image without a label image, an
        unreadable file, and labels that do not fit their image (page count, size,
        float or negative values); the message names the file and the fix.
    """
    return [file.read() for file in list_folder(spec, labels=labels)]


def write_tiff(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` as a (multipage, for 3D) grayscale TIFF atomically; returns the path."""
    import tifffile

    return atomic_write(
        path, lambda tmp: tifffile.imwrite(tmp, np.asarray(array), photometric="minisblack")
    )


def write_pair(folder: str | Path, name: str, image: np.ndarray, labels: np.ndarray) -> Path:
    """Add an image and its labels to a data set folder as ``images/<name>.tif`` and
    ``labels/<name>.tif``; returns the label file's path.

    The same image saved before under the name is kept and its labels replaced (saving
    again after more corrections); a different image of that name is never touched: the
    pair is named ``<name>-2``, ``<name>-3``, ...  Characters a file name should not hold
    become ``_``.
    """
    folder = Path(folder)
    base = re.sub(r"[^\w.-]+", "_", name).strip("._") or "image"
    for number in itertools.count(1):
        stem = base if number == 1 else f"{base}-{number}"
        image_file = _file_of(folder / "images", stem)
        labels_file = _file_of(folder / "labels", stem)
        if image_file is None and labels_file is None:
            write_tiff(folder / "images" / f"{stem}.tif", image)
            break
        same = image_file is not None and np.array_equal(read_image(image_file)[0], image)
        if same and labels_file in (None, folder / "labels" / f"{stem}.tif"):
            break
    return write_tiff(folder / "labels" / f"{stem}.tif", labels)


def _file_of(folder: Path, stem: str) -> Path | None:
    """The PNG or TIFF file named ``stem`` in ``folder``, if any."""
    return images_by_stem(folder).get(stem) if folder.is_dir() else None
