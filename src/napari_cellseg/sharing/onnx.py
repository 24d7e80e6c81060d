"""A model as an ONNX file: the network giving probabilities, any height and width.

The file's input ``image`` is (batch, channels, height, width) float32 scaled as
:func:`~.networks.scale_range` does; its output ``probabilities`` is (batch, 2 or 3,
height, width).  Its metadata holds the opset, what each output channel means, the
normalisation, and the model yaml (as JSON) of this plugin.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from napari_cellseg.model_file import read_model
from napari_cellseg.models.registry import required_multiple
from napari_cellseg.sharing.networks import (
    check_output,
    example_image,
    exported_network,
    output_names,
    scale_range,
)

__all__ = ["OPSET", "export_onnx", "onnx_difference"]

OPSET = 17
"""The ONNX operator set written (onnxruntime 1.14 and later run it)."""


def export_onnx(model_path: str | Path, output: str | Path, *, overwrite: bool = False) -> Path:
    """Write the model ``model_path`` (yaml, .pt or built-in name) as an ONNX file.

    Raises
    ------
    ConfigError
        For a model without weights or a bad output path (see
        :func:`~.networks.check_output`).
    """
    import io

    import onnx
    import torch

    from napari_cellseg.io_utils import atomic_write

    model = read_model(model_path)
    output = check_output(output, ".onnx", overwrite)
    network, _, _ = exported_network(model)
    example = torch.from_numpy(scale_range(example_image(model)))
    axes = {0: "batch", 2: "height", 3: "width"}
    buffer = io.BytesIO()
    torch.onnx.export(
        network,
        (example,),
        buffer,
        dynamo=False,  # the TorchScript exporter: no onnxscript needed, dynamic sizes
        opset_version=OPSET,
        input_names=["image"],
        output_names=["probabilities"],
        dynamic_axes={"image": axes, "probabilities": axes},
    )
    exported = onnx.load_from_string(buffer.getvalue())
    metadata = {
        "opset": str(OPSET),
        "channels": ", ".join(output_names(model)),
        "normalisation": "each image's 1st..99.8th percentile to 0..1 (per channel)",
        "height_width_multiple_of": str(required_multiple(model.config)),
        "napari-cellseg": json.dumps(dataclasses.asdict(model.config)),
    }
    onnx.helper.set_model_props(exported, metadata)
    return atomic_write(output, lambda path: path.write_bytes(exported.SerializeToString()))


def onnx_difference(path: str | Path, model_path: str | Path) -> float:
    """The largest difference between the ONNX file's and the torch network's
    probabilities on the real test image (onnxruntime on the CPU)."""
    import onnxruntime
    import torch

    model = read_model(model_path)
    network, _, _ = exported_network(model)
    tiles = scale_range(example_image(model))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_maps,) = session.run(None, {"image": tiles})
    with torch.no_grad():
        torch_maps = network(torch.from_numpy(tiles)).numpy()
    return float(np.abs(onnx_maps - torch_maps).max())
