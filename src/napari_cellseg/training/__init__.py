"""Training: the loop (a generator of events), schedule, losses, metrics, writers, tuning.

Import the submodules directly (``from napari_cellseg.training.loop import train``);
this package imports nothing, so ``import napari_cellseg`` stays free of torch.
"""
