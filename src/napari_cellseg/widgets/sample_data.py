"""Sample data for napari: a synthetic nuclei image and its labels with a blob region."""

from __future__ import annotations

from napari_cellseg.data.synthetic import make_nuclei

__all__ = ["synthetic_nuclei"]


def synthetic_nuclei() -> list[tuple]:
    """A 512x512 synthetic fluorescence image and its labels (0 background, 1 blob, 2.. nuclei)."""
    image, labels = make_nuclei((512, 512), blobs=2, seed=4)
    return [
        (image, {"name": "nuclei"}, "image"),
        (labels, {"name": "nuclei labels"}, "labels"),
    ]
