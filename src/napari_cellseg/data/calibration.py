"""The pixel size of an image file, where its metadata records it.

Fiji/ImageJ TIFFs keep it as the resolution tags (pixels per unit) with the unit in the
ImageJ metadata; OME-TIFFs as ``PhysicalSizeX/Y`` in their OME-XML.  The slice spacing of
a z-stack is ImageJ's ``spacing`` or OME's ``PhysicalSizeZ``.  Other files (PNG, plain
TIFF, whose resolution is usually a printer's dots per inch) say nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["read_pixel_size", "read_z_spacing", "micrometres"]

_MICROMETRES = {"nm": 1e-3, "um": 1.0, "mm": 1e3, "cm": 1e4, "m": 1e6}
_SPELLINGS = {
    "nanometer": "nm", "nanometre": "nm", "micron": "um", "microns": "um",
    "micrometer": "um", "micrometre": "um", "µm": "um", "μm": "um", "\\u00b5m": "um",
    "millimeter": "mm", "millimetre": "mm", "centimeter": "cm", "centimetre": "cm",
    "meter": "m", "metre": "m",
}  # fmt: skip


def micrometres(size: float, unit: str) -> float | None:
    """``size`` in ``unit`` as micrometres; None for a unit that is not a length.

    >>> micrometres(250, "nm"), micrometres(0.5, "micron"), micrometres(1, "pixel")
    (0.25, 0.5, None)
    """
    unit = unit.strip().lower()
    factor = _MICROMETRES.get(_SPELLINGS.get(unit, unit))
    return None if factor is None else size * factor


def read_pixel_size(path: str | Path) -> tuple[float, float] | None:
    """A TIFF file's pixel (height, width) in micrometres, or None when it does not say."""

    def imagej(tif, unit: str) -> tuple[float, float] | None:
        tags = tif.pages[0].tags
        names = ("YResolution", "XResolution")
        return _size(unit, [tags[name].value for name in names if name in tags])

    return _read(path, imagej, "YX")


def read_z_spacing(path: str | Path) -> float | None:
    """A TIFF z-stack's slice spacing in micrometres, or None when it does not say."""

    def imagej(tif, unit: str) -> tuple[float] | None:
        spacing = (tif.imagej_metadata or {}).get("spacing")
        size = micrometres(float(spacing), unit) if spacing else None
        return (size,) if size and size > 0 else None

    sizes = _read(path, imagej, "Z")
    return None if sizes is None else sizes[0]


def _read(path: str | Path, imagej, axes: str) -> tuple[float, ...] | None:
    """The sizes along ``axes`` (micrometres) of an OME-TIFF, ``imagej(tif, unit)`` of a
    Fiji/ImageJ TIFF, None for other files."""
    path = Path(path)
    if path.suffix.lower() not in (".tif", ".tiff"):
        return None
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            if tif.is_ome:
                return _ome_sizes(tif.ome_metadata or "", axes)
            if tif.is_imagej:
                return imagej(tif, str((tif.imagej_metadata or {}).get("unit", "")))
    except Exception:  # unreadable metadata is no calibration; reading the image tells
        return None
    return None


def _size(unit: str, pixels_per_unit: list) -> tuple[float, float] | None:
    """(height, width) in micrometres from ImageJ's ``unit`` and the resolution tags."""
    if len(pixels_per_unit) != 2:
        return None
    sizes = []
    for numerator, denominator in pixels_per_unit:
        size = micrometres(denominator / numerator, unit) if numerator else None
        if size is None or not size > 0:
            return None
        sizes.append(size)
    return sizes[0], sizes[1]


def _ome_sizes(xml: str, axes: str) -> tuple[float, ...] | None:
    """The sizes along ``axes`` in micrometres from the first ``Pixels`` element of OME-XML."""
    pixels = re.search(r"<(?:\w+:)?Pixels\s[^>]*>", xml)
    if pixels is None:
        return None
    attributes = dict(re.findall(r'(\w+)="([^"]*)"', pixels.group(0)))
    sizes = []
    for axis in axes:
        try:
            value = float(attributes[f"PhysicalSize{axis}"])
        except (KeyError, ValueError):
            return None
        size = micrometres(value, attributes.get(f"PhysicalSize{axis}Unit", "µm"))
        if size is None or not size > 0:
            return None
        sizes.append(size)
    return tuple(sizes)
