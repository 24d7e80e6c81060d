"""Large image layers in the Predict dock: predicted block by block into an OME-Zarr.

A 2D layer or z-stack of more than :data:`IN_MEMORY_PIXELS` pixels (a dask-backed, zarr-backed or
multiscale layer from napari-ome-zarr, or a large array) is not loaded: its full
resolution is read block by block (:mod:`napari_cellseg.bigimage.blockwise`), and the
results come back as layers that read the OME-Zarr written on disk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.layers import Image

from napari_cellseg.errors import CellsegError

__all__ = ["IN_MEMORY_PIXELS", "lazy_image", "default_output", "show_result"]

IN_MEMORY_PIXELS = 4096 * 4096
"""Larger images and stacks are predicted block by block (in memory, 4096² took 1.5 GB)."""


def lazy_image(layer: Image):
    """The full resolution of ``layer`` as a :class:`~napari_cellseg.bigimage.sources.LazyImage`
    when it is predicted block by block, else None (it is small enough for memory).

    Raises
    ------
    CellsegError
        For a large RGB layer, or one of more than three dimensions.
    """
    data = layer.data[0] if layer.multiscale else layer.data
    pixels = int(np.prod(data.shape[:-1] if layer.rgb else data.shape))
    if pixels <= IN_MEMORY_PIXELS:
        return None
    if layer.rgb:
        raise CellsegError(
            f"'{layer.name}' is a large RGB image: right-click the layer > Split RGB and "
            "predict the channel that shows the objects."
        )
    if data.ndim > 3:
        raise CellsegError(
            f"'{layer.name}' has {data.ndim} dimensions {data.shape}: the dock predicts an "
            "image or a z-stack (Z, Y, X); open each channel or time point as its own layer."
        )
    import dask.array as da

    from napari_cellseg.bigimage.sources import LazyImage

    chunks = (1, 1024, 1024)[-data.ndim :]
    lazy = data if isinstance(data, da.Array) else da.from_array(data, chunks=chunks)
    path = Path(layer.source.path) if layer.source.path else Path(layer.name)
    return LazyImage(lazy, path, "zyx"[-data.ndim :])


def default_output(layer: Image) -> Path:
    """A new ``<name>_cellseg.zarr`` beside the layer's file (in ~/napari-cellseg/predictions
    for a layer with none), numbered when it exists."""
    if layer.source.path:
        source = Path(layer.source.path)
        folder, stem = source.parent, source.name.split(".")[0]
    else:
        folder, stem = Path.home() / "napari-cellseg" / "predictions", layer.name
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem) or "image"
    path, number = folder / f"{stem}_cellseg.zarr", 2
    while path.exists():
        path, number = folder / f"{stem}_cellseg-{number}.zarr", number + 1
    return path


def show_result(viewer, name: str, result, placement: dict) -> None:
    """Add the maps and instances of a finished blockwise ``result`` as layers reading its
    OME-Zarr (every resolution level: napari reads only what it shows)."""
    from napari_cellseg.bigimage.blockwise import FIRST_LABEL
    from napari_cellseg.bigimage.zarr_output import read_output
    from napari_cellseg.widgets._layers import output_layer

    levels = read_output(result.path)
    multiscale = len(levels["labels"]) > 1

    def data(role: str):
        return levels[role] if multiscale else levels[role][0]

    for role, colormap in (("objects", "green"), ("boundaries", "magenta")):
        output_layer(
            viewer,
            data(role),
            kind="image",
            name=f"{name} {role}",
            tag=f"{role}:{result.path}",
            multiscale=multiscale,
            colormap=colormap,
            blending="additive",
            contrast_limits=(0.0, 1.0),
            **placement,
        )
    output_layer(
        viewer,
        data("labels"),
        kind="labels",
        name=f"{name} instances",
        tag=f"instances:{result.path}",
        multiscale=multiscale,
        next_label=FIRST_LABEL + result.objects,
        **placement,
    )
