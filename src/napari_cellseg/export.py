"""``python -m napari_cellseg.export``: the same as ``cellseg export``.

The command lives in :mod:`napari_cellseg.cli.export`.
"""

import sys

from napari_cellseg.cli.export import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
