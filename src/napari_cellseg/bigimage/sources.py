"""Images read lazily: OME-Zarr (level 0 of its multiscale image) and large TIFFs.

Nothing is read until a block is asked for: both come back as a dask array of one 2D
grayscale image (Y, X), or of a z-stack of them (Z, Y, X), chunked as stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_cellseg.errors import DataError

__all__ = ["LazyImage", "open_lazy", "is_zarr"]

MIN_CHUNK_SIDE = 16
"""Chunks thinner than this make every block a thousand reads: refused."""


@dataclass(frozen=True)
class LazyImage:
    """A 2D image, or a z-stack of them, not read yet.

    Attributes
    ----------
    data : dask.array.Array
        (Y, X) or (Z, Y, X), any real dtype.
    path : Path
        Where it comes from.
    axes : str
        The axes of the stored array (``yx``, ``cyx``, ``zyx``, ``tczyx``, ...).
    channel : int or None
        The channel read from a multichannel image.
    """

    data: object
    path: Path
    axes: str
    channel: int | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """The (Y, X) of a plane."""
        return tuple(self.data.shape[-2:])

    @property
    def planes(self) -> int:
        """The planes of a z-stack; 1 for a 2D image."""
        return self.data.shape[0] if self.data.ndim == 3 else 1

    def plane(self, z: int):
        """Plane ``z`` (Y, X), not read yet."""
        return self.data[z] if self.data.ndim == 3 else self.data


def is_zarr(path: str | Path) -> bool:
    """Whether ``path`` is a zarr container (a folder ending in .zarr, or holding zarr
    metadata)."""
    path = Path(path)
    return path.suffix == ".zarr" or (path / ".zattrs").exists() or (path / "zarr.json").exists()


def open_lazy(path: str | Path, channel: int | None = None) -> LazyImage:
    """Open an OME-Zarr image or a TIFF without reading it.

    Parameters
    ----------
    channel
        The channel of a multichannel image (``c`` axis); required when it has several.

    Raises
    ------
    DataError
        For a zarr without OME metadata, axes other than y, x and z that are not single
        (t) or chosen (c), a missing channel, or chunks of single rows.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"'{path}' does not exist.")
    data, axes = _open_zarr(path) if is_zarr(path) else _open_tiff(path)
    image = _planes(data, axes, channel, path)
    chunks = [c[0] for c in image.chunks[-2:]]  # the last chunk of an axis may be smaller
    if min(chunks) < MIN_CHUNK_SIDE and min(image.shape[-2:]) >= MIN_CHUNK_SIDE:
        raise DataError(
            f"'{path}' is stored in chunks of {chunks[0]} x {chunks[1]} pixels: reading it "
            f"block by block would take a read per row.  Rewrite it with chunks of at least "
            "256 x 256 (for example with ome-zarr's or bioformats2raw's defaults)."
        )
    return LazyImage(image, path, axes, channel)


def _open_zarr(path: Path):
    import dask.array as da
    import zarr

    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception as exc:  # zarr raises several kinds for a folder that is no zarr
        raise DataError(f"'{path}' is not a readable zarr container ({exc}).") from None
    attributes = dict(group.attrs)
    attributes = attributes.get("ome", attributes)  # OME-Zarr 0.5 nests it under "ome"
    multiscales = attributes.get("multiscales")
    if not multiscales:
        raise DataError(
            f"'{path}' has no OME-Zarr metadata ('multiscales'): convert the image to "
            "OME-Zarr (bioformats2raw, or ome-zarr-py's write_image), or save it as TIFF."
        )
    first = multiscales[0]
    axes = "".join(a["name"] if isinstance(a, dict) else a for a in first.get("axes", "yx"))
    level0 = group[first["datasets"][0]["path"]]
    return da.from_zarr(level0), axes


def _open_tiff(path: Path):
    import dask.array as da
    import tifffile
    import zarr

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes = series.axes.lower().replace("s", "c")
        store = tifffile.imread(path, aszarr=True)
    except (tifffile.TiffFileError, OSError, ValueError) as exc:
        raise DataError(f"Cannot read '{path}' as TIFF ({exc}).") from None
    array = zarr.open(store, mode="r")
    if isinstance(array, zarr.Group):  # a pyramid: its full resolution
        array = array[sorted(array.array_keys())[0]]
    return da.from_zarr(array), axes


def _planes(data, axes: str, channel: int | None, path: Path):
    """The (Y, X) image or (Z, Y, X) stack of ``data``: single axes dropped, the channel
    chosen."""
    if len(axes) != data.ndim or not {"y", "x"} <= set(axes):
        raise DataError(
            f"'{path}' has axes '{axes}' for an array of shape {data.shape}: this plugin "
            "reads 2D images with axes y and x, and z-stacks (zyx; c with --channel, t of "
            "size 1)."
        )
    index = []
    for name, size in zip(axes, data.shape, strict=True):
        if name in "yxz" and (name != "z" or size > 1):
            index.append(slice(None))
        elif name == "c" and size > 1:
            if channel is None or not 0 <= channel < size:
                raise DataError(
                    f"'{path}' has {size} channels: choose one with --channel 0..{size - 1}."
                )
            index.append(channel)
        elif size == 1:
            index.append(0)
        else:
            raise DataError(
                f"'{path}' has {size} planes along '{name}': a large image is predicted as a "
                "2D image or a z-stack; save one time point, or predict it in memory."
            )
    image = data[tuple(index)]
    if not np.issubdtype(image.dtype, np.number) or np.issubdtype(image.dtype, np.complexfloating):
        raise DataError(f"'{path}' holds {image.dtype} values, not intensities.")
    return image
