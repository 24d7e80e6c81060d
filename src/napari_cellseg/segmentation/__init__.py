"""Segmentation: instance labels from the maps, z-stacks stitched in 3D, settings tuning."""
