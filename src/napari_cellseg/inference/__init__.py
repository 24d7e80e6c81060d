"""Inference: probability maps of images of any size (tiled predictor, tiling geometry)."""
