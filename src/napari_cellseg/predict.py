"""``python -m napari_cellseg.predict``: the seed tool's command line, same flags.

The command lives in :mod:`napari_cellseg.cli.predict`; this module keeps the seed's
``python -m`` name working.
"""

import sys

from napari_cellseg.cli.predict import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
