"""The demo writes every promised file from data it makes itself."""

import numpy as np
import tifffile
from imageio.v3 import imread

from napari_cellseg.cli.demo import run_demo


def test_demo_writes_maps_labels_and_figure(tmp_path):
    files = run_demo(tmp_path, minutes=1e-6)  # one epoch
    objects = tifffile.imread(files["objects"])
    boundaries = tifffile.imread(files["boundaries"])
    labels = tifffile.imread(files["instances"])
    assert objects.shape == boundaries.shape == labels.shape == (200, 200)
    assert objects.dtype == np.float32 and 0 <= objects.min() and objects.max() <= 1
    assert np.issubdtype(labels.dtype, np.integer)
    figure = imread(files["figure"])
    assert figure.ndim == 3 and figure.shape[1] > 3 * figure.shape[0] // 2
    assert files["model"].is_file() and files["model"].with_suffix(".pt").is_file()
