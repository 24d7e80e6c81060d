"""Pixel sizes read from the metadata Fiji/ImageJ and OME-TIFF writers leave in the file."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from imageio import v3 as iio

from napari_cellseg.data.calibration import read_pixel_size, read_z_spacing

STACK = np.zeros((3, 20, 30), np.uint16)


@pytest.mark.parametrize(
    "unit, expected",
    [("micron", (0.25, 0.5)), ("um", (0.25, 0.5)), ("\\u00B5m", (0.25, 0.5)),
     ("nm", (0.25e-3, 0.5e-3)), ("pixel", None), ("", None)],
)  # fmt: skip
def test_imagej_tiffs(tmp_path, unit, expected):
    path = tmp_path / "fiji.tif"
    metadata = {"axes": "ZYX", **({"unit": unit} if unit else {})}
    tifffile.imwrite(path, STACK, imagej=True, resolution=(2.0, 4.0), metadata=metadata)
    assert read_pixel_size(path) == (pytest.approx(expected) if expected else None)


def test_ome_tiffs(tmp_path):
    path = tmp_path / "image.ome.tif"
    sizes = {"PhysicalSizeX": 0.3, "PhysicalSizeY": 0.65}
    tifffile.imwrite(path, STACK, ome=True, metadata={"axes": "ZYX", **sizes})
    assert read_pixel_size(path) == pytest.approx((0.65, 0.3))  # micrometres by default
    units = {"PhysicalSizeXUnit": "nm", "PhysicalSizeYUnit": "nm"}
    tifffile.imwrite(path, STACK, ome=True, metadata={"axes": "ZYX", **sizes, **units})
    assert read_pixel_size(path) == pytest.approx((0.65e-3, 0.3e-3))


def test_files_without_a_calibration(tmp_path):
    printer = {"photometric": "minisblack", "resolution": (72, 72)}  # dots per inch
    tifffile.imwrite(tmp_path / "printer.tif", STACK, **printer)
    tifffile.imwrite(tmp_path / "ome.ome.tif", STACK, ome=True, metadata={"axes": "ZYX"})
    iio.imwrite(tmp_path / "image.png", STACK[0].astype(np.uint8))
    (tmp_path / "broken.tif").write_bytes(b"not a tiff")
    for name in ("printer.tif", "ome.ome.tif", "image.png", "broken.tif", "missing.tif"):
        assert read_pixel_size(tmp_path / name) is None, name


def test_z_spacing_of_stacks(tmp_path):
    fiji, ome = tmp_path / "fiji.tif", tmp_path / "stack.ome.tif"
    metadata = {"axes": "ZYX", "unit": "micron", "spacing": 2.5}
    tifffile.imwrite(fiji, STACK, imagej=True, resolution=(2.0, 4.0), metadata=metadata)
    sizes = {"PhysicalSizeX": 0.3, "PhysicalSizeY": 0.3, "PhysicalSizeZ": 800}
    tifffile.imwrite(
        ome, STACK, ome=True, metadata={"axes": "ZYX", **sizes, "PhysicalSizeZUnit": "nm"}
    )
    assert read_z_spacing(fiji) == pytest.approx(2.5)
    assert read_z_spacing(ome) == pytest.approx(0.8)
    assert read_pixel_size(ome) == pytest.approx((0.3, 0.3))
    tifffile.imwrite(fiji, STACK, imagej=True, metadata={"axes": "ZYX", "unit": "micron"})
    tifffile.imwrite(ome, STACK, ome=True, metadata={"axes": "ZYX", "PhysicalSizeX": 0.3})
    assert read_z_spacing(fiji) is None and read_z_spacing(ome) is None
    assert read_z_spacing(tmp_path / "missing.tif") is None
