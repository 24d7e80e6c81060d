"""Sample data for napari: real DSB2018 nuclei, synthetic nuclei with blob regions, a z-stack."""

from __future__ import annotations

from pathlib import Path

from napari_cellseg.data.synthetic import make_nuclei, make_nuclei_stack

__all__ = ["dsb2018_nuclei", "synthetic_nuclei", "synthetic_nuclei_stack"]

_SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def dsb2018_nuclei() -> list[tuple]:
    """A real fluorescence image of the 2018 Data Science Bowl (CC0; 520 x 696, 148 nuclei)
    and its annotation: see ``samples/README.md`` for its source and credit."""
    import imageio.v3 as iio

    image = iio.imread(_SAMPLES / "dsb2018-nuclei.png")
    labels = iio.imread(_SAMPLES / "dsb2018-nuclei-labels.png")
    return [
        (image, {"name": "DSB2018 nuclei"}, "image"),
        (labels, {"name": "DSB2018 nuclei labels"}, "labels"),
    ]


def synthetic_nuclei() -> list[tuple]:
    """A 512x512 synthetic fluorescence image and its labels (0 background, 1 blob, 2.. nuclei)."""
    image, labels = make_nuclei((512, 512), blobs=2, seed=4)
    return [
        (image, {"name": "nuclei"}, "image"),
        (labels, {"name": "nuclei labels"}, "labels"),
    ]


def synthetic_nuclei_stack() -> list[tuple]:
    """A synthetic z-stack of nuclei (24 x 256 x 256; slices 1 µm apart, 0.5 µm pixels) and
    its 3D labels: try the Predict dock's *stitch slices* on it."""
    image, labels = make_nuclei_stack((24, 256, 256), seed=4)
    scale = {"scale": (1.0, 0.5, 0.5), "units": ("µm", "µm", "µm")}
    return [
        (image, {"name": "nuclei stack", **scale}, "image"),
        (labels, {"name": "nuclei stack labels", **scale}, "labels"),
    ]
