"""Export a model to bioimage.io and ONNX and measure how equal the copies are.

    python benchmarks/export.py --config nuclei

Exports the model twice (a bioimage.io package, an ONNX file) into a temporary folder,
runs bioimage.io's ``test_model`` on the package, and compares on a real image (the
DSB2018 sample, 512 x 688) the maps of the package run by ``bioimageio.core``
(``pytorch_state_dict`` and ``torchscript`` weights, its own preprocessing) and of
onnxruntime with the plugin's network on the same normalised tiles.  The last line is one
JSON object: export seconds and MiB of each file, the ``test_model`` status and the
largest differences.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from napari_cellseg.data.io import read_image
from napari_cellseg.model_file import read_model
from napari_cellseg.sharing.bioimageio import check_package, export_package
from napari_cellseg.sharing.networks import SAMPLE_IMAGE, exported_network, scale_range
from napari_cellseg.sharing.onnx import export_onnx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="nuclei", help="model yaml or built-in name")
    args = parser.parse_args()
    import onnxruntime
    from bioimageio.core import create_prediction_pipeline, load_model_description
    from bioimageio.core.sample import Sample
    from bioimageio.core.tensor import Tensor

    model = read_model(args.config)
    network, _, _ = exported_network(model)
    page = read_image(SAMPLE_IMAGE)[0][:512, :688].astype(np.float32)
    raw = np.repeat(page[None, None], model.config.channels, axis=1)
    with torch.no_grad():
        ours = network(torch.from_numpy(scale_range(raw))).numpy()
    result = {}
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        package = export_package(args.config, Path(folder) / "model.zip")
        result["bioimageio_seconds"] = round(time.perf_counter() - start, 2)
        result["bioimageio_mib"] = round(package.stat().st_size / 2**20, 2)
        failures = check_package(package)
        result["test_model"] = "passed" if not failures else failures
        descr = load_model_description(package)
        for weights in ("pytorch_state_dict", "torchscript"):
            pipeline = create_prediction_pipeline(descr, weight_format=weights)
            image = Tensor.from_numpy(raw, dims=("batch", "channel", "y", "x"))
            sample = Sample(members={"image": image}, stat={}, id="sample")
            output = pipeline.predict_sample_without_blocking(sample)
            theirs = next(iter(output.members.values())).data.to_numpy()
            assert theirs.shape == ours.shape, (theirs.shape, ours.shape)
            result[f"max_diff_{weights}"] = float(np.abs(theirs - ours).max())
        start = time.perf_counter()
        onnx_file = export_onnx(args.config, Path(folder) / "model.onnx")
        result["onnx_seconds"] = round(time.perf_counter() - start, 2)
        result["onnx_mib"] = round(onnx_file.stat().st_size / 2**20, 2)
        session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
        (theirs,) = session.run(None, {"image": scale_range(raw)})
        result["max_diff_onnx"] = float(np.abs(theirs - ours).max())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
