"""Images larger than memory: read lazily (OME-Zarr, TIFF), segmented block by block into
an OME-Zarr with one label per object across block faces."""
