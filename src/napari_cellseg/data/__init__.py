"""Data: read images and labels (io), normalise, make targets, trim, augment, Dataset, synthetic.

Import the submodules directly (``from napari_cellseg.data.io import read_folder``);
this package imports nothing, so importing it stays fast and torch-free.
"""
