"""Train DCAN and U-Net cell-segmentation networks and segment images, in napari and the CLI.

Importing the package imports neither torch nor Qt: napari reads every plugin's
manifest at start-up, so heavy imports happen inside the functions that need them.
"""

__version__ = "0.1.0"
