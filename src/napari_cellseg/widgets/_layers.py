"""Reading napari layers into arrays and writing the plugin's own output layers."""

from __future__ import annotations

import re
from functools import partial
from typing import Any

import numpy as np
from magicgui.widgets import ComboBox
from napari.layers import Image, Labels, Layer
from napari.utils.notifications import show_info

from napari_cellseg.data.calibration import micrometres, read_pixel_size, read_z_spacing
from napari_cellseg.data.io import to_gray

__all__ = [
    "breakable",
    "image_array",
    "placement",
    "pixel_size",
    "z_spacing",
    "other_channels",
    "output_layer",
    "layer_choices",
    "layer_combo",
    "focus",
]

_NAME_CHARS = 8
"""Characters of a layer name a layer choice box is sized for."""

OWNER_KEY = "napari_cellseg"
"""Layer metadata key marking the layers this plugin wrote (and may overwrite)."""


def image_array(layer: Image) -> np.ndarray:
    """The full-resolution data of an image layer as a numpy array (2D or a stack).

    An RGB(A) layer gives its luminance, as colour files do, and a notification says how
    to use one channel instead.
    """
    data = np.asarray(layer.data[0] if layer.multiscale else layer.data)
    if not layer.rgb:
        return data
    show_info(
        f"'{layer.name}' is RGB: the network sees its luminance (gray).  To use one "
        "channel, such as the nuclear stain, right-click the layer > Split RGB and choose it."
    )
    return to_gray(data)


def placement(layer: Layer) -> dict:
    """Where a layer lies in the world: its scale, translate and units, for the layers
    computed from it (napari warns about layers of different units)."""
    return {"scale": layer.scale, "translate": layer.translate, "units": layer.units}


def pixel_size(layer: Layer) -> tuple[float, float] | None:
    """A layer's pixel (height, width) in micrometres, or None when it is not calibrated.

    Its scale in its units; a scale in napari's default unit, pixels, is taken as
    micrometres (what microscopy readers set it in).  A layer of scale 1 pixel opened
    from a Fiji/ImageJ or OME TIFF takes the file's calibration, which napari's own
    reader leaves out.
    """
    return _sizes(layer, slice(-2, None), read_pixel_size)


def z_spacing(layer: Layer) -> float | None:
    """The slice spacing of a stack layer in micrometres (as :func:`pixel_size`), or None."""
    if layer.ndim < 3:  # napari's ndim and scale leave an RGB layer's colour axis out
        return None
    sizes = _sizes(layer, slice(-3, -2), lambda path: (read_z_spacing(path),))
    return sizes[0] if sizes else None


def _sizes(layer: Layer, axes: slice, read) -> tuple | None:
    """The micrometres per pixel of ``axes`` of the layer (``read(path)`` of its file)."""
    scale, units = layer.scale[axes], [str(unit) for unit in layer.units[axes]]
    if set(units) == {"pixel"}:
        if all(s == 1 for s in scale):
            sizes = read(layer.source.path) if layer.source.path else None
            return None if sizes is None or None in sizes else tuple(sizes)
        return tuple(float(s) for s in scale)
    sizes = [micrometres(float(s), unit) for s, unit in zip(scale, units, strict=True)]
    return None if None in sizes else tuple(sizes)


def other_channels(viewer, image: Image) -> dict[str, np.ndarray]:
    """The viewer's other grayscale image layers of ``image``'s shape, by a name fit for a
    table column: other channels of the same field, whose intensities are measured too.

    The plugin's own maps (objects, boundaries) are left out.
    """
    shape = image.data.shape[: -1 if image.rgb else None]
    channels: dict[str, np.ndarray] = {}
    for layer in viewer.layers:
        if (
            isinstance(layer, Image)
            and layer is not image
            and not layer.rgb
            and OWNER_KEY not in layer.metadata
            and layer.data.shape == shape
        ):
            name = re.sub(r"\W+", "_", layer.name).strip("_") or "image"
            while name in channels:
                name += "_"
            channels[name] = image_array(layer)
    return channels


def layer_choices(viewer, kind: type[Layer]):
    """A magicgui ``choices`` callable listing the viewer's layers of type ``kind``."""
    return lambda _widget: [
        (layer.name, layer) for layer in viewer.layers if isinstance(layer, kind)
    ]


def layer_combo(viewer, kind: type[Layer], **kwargs: Any) -> ComboBox:
    """A choice of the viewer's ``kind`` layers that stays narrow whatever the layer names.

    Long names (file names often are) would widen the dock past the screen; the box
    shows their start, its list and tooltip the whole name.
    """
    from qtpy.QtWidgets import QComboBox

    combo = ComboBox(choices=layer_choices(viewer, kind), **kwargs)
    combo.native.setSizeAdjustPolicy(
        QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
    )
    combo.native.setMinimumContentsLength(_NAME_CHARS)
    what = kwargs.get("tooltip", "")

    def show_name(layer) -> None:
        name = layer.name if layer is not None else ""
        combo.tooltip = f"{what}: {name}" if what else name

    combo.changed.connect(show_name)
    return combo


def breakable(text: str, width: int = 20) -> str:
    """``text`` with zero-width spaces in words longer than ``width`` (64-character file
    names), so that a wrapping label breaks them instead of widening the dock.

    >>> [len(part) for part in breakable("a" * 25 + " done").split("\u200b")]
    [19, 11]
    """
    words = []
    for word in text.split(" "):
        if len(word) > width:
            word = "\u200b".join(word[i : i + width - 1] for i in range(0, len(word), width - 1))
        words.append(word)
    return " ".join(words)


def output_layer(
    viewer,
    data: np.ndarray,
    *,
    kind: str,
    name: str,
    tag: str,
    next_label: int | None = None,
    **kwargs: Any,
) -> Layer:
    """Show ``data`` in the layer this plugin tagged ``tag``, adding it when absent.

    Only layers whose metadata carries the tag are reused, so a user's layer is never
    overwritten.  A labels layer the user edits (paint, fill, erase, ...) loses its tag:
    it is theirs from then on, and the next result goes to a new layer.  A labels layer's
    brush is set to a value no object has yet (``next_label``, else one above the
    largest).  ``kwargs`` (scale, translate, colormap, ...) apply on creation; scale,
    translate and units are also updated on reuse.
    """
    layer = next((lay for lay in viewer.layers if lay.metadata.get(OWNER_KEY) == tag), None)
    if layer is None:
        add = viewer.add_labels if kind == "labels" else viewer.add_image
        layer = add(data, name=name, metadata={OWNER_KEY: tag}, **kwargs)
        if kind == "labels":
            layer.events.paint.connect(partial(_hand_over, layer))
    else:
        layer.data = data
        for key in ("scale", "translate", "units"):
            if key in kwargs:
                setattr(layer, key, kwargs[key])
    if kind == "labels":  # the brush paints a new object, never the blob value 1
        layer.selected_label = next_label or max(int(data.max(initial=0)) + 1, 2)
    return layer


def _hand_over(layer: Labels, _event=None) -> None:
    """Untag a plugin layer the user has edited, so that no later result overwrites it.

    Its measurements (features) described the prediction: they are removed, but for the
    objects' confidence and review record (:mod:`napari_cellseg.analysis.review`).
    """
    if layer.metadata.pop(OWNER_KEY, None) is not None:
        measured = len(layer.features) > 0
        layer.features = layer.features[
            [c for c in ("index", "confidence", "review") if c in layer.features]
        ]
        show_info(
            f"'{layer.name}' now holds your edits: the plugin will not overwrite it; "
            "new results go to a new layer."
            + (" Press Measure objects when your corrections are done." if measured else "")
        )


def focus(viewer, layer: Layer, centre, extent, share: float = 3) -> None:
    """Centre the view on ``centre`` (the layer's data coordinates; a stack's slice too)
    and zoom so that ``extent`` (data pixels) fills a ``share``-th of the canvas."""
    centre = np.asarray(layer.data_to_world(centre))
    for axis in range(layer.ndim - 2):
        viewer.dims.set_point(viewer.dims.ndim - layer.ndim + axis, centre[axis])
    camera = getattr(viewer, "scene", viewer).camera  # napari < 0.9: viewer.camera
    camera.center = tuple(centre[-2:])
    size = max(np.asarray(extent[-2:]) * np.asarray(layer.scale[-2:]))
    camera.zoom = min(viewer.canvas.size) / (share * max(size, 1))
