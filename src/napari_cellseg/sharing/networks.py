"""A model's network as other tools run it, its source as one file, and a real test image.

Shared by the bioimage.io and the ONNX export: the network gives probabilities
(:mod:`napari_cellseg.models.probabilities`), on the CPU in float32, in eval mode.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np

from napari_cellseg.errors import CellsegError, ConfigError
from napari_cellseg.model_file import ModelFile, load_network
from napari_cellseg.models.registry import required_multiple

__all__ = [
    "exported_network",
    "network_source",
    "output_names",
    "scale_range",
    "example_image",
    "check_output",
]

SAMPLE_IMAGE = Path(__file__).resolve().parents[1] / "samples" / "dsb2018-nuclei.png"
"""The real image the test tensors are cut from (DSB2018, CC0; see ``samples/README.md``)."""

TEST_SIDE = 256
"""Side of the test image in pixels (a multiple of every network's pooling grid)."""


def exported_network(model: ModelFile) -> tuple[Any, str, dict]:
    """The model's network giving probabilities, with its weights.

    Returns
    -------
    network : torch.nn.Module
        On the CPU, float32, eval mode.
    name : str
        Its class name in :func:`network_source`.
    kwargs : dict
        The keyword arguments that build it.
    """
    import torch

    from napari_cellseg.models import probabilities

    cfg = model.config
    if cfg.architecture == "dcan":
        name = "DCANProbabilities"
        kwargs = {
            "in_channels": cfg.channels,
            "start_filters": cfg.start_filters,
            "dropout": 0.0,
            "logit_scale": 2.0 if cfg.dcan_final_act == "tanh" else 1.0,
        }
    else:
        name = "UNetProbabilities"
        kwargs = {
            "in_channels": cfg.channels,
            "levels": cfg.unet_levels,
            "start_filters": cfg.start_filters,
            "dropout": 0.0,
        }
    network = getattr(probabilities, name)(**kwargs)
    trained = load_network(model, torch.device("cpu"))
    network.load_state_dict(trained.state_dict())
    return network.float().eval(), name, kwargs


def output_names(model: ModelFile) -> list[str]:
    """What each output channel holds."""
    if model.config.architecture == "dcan":
        return ["objects", "boundaries"]
    return ["background", "objects", "boundaries"]


def network_source() -> str:
    """The networks of this plugin as one Python file that needs only torch.

    The modules :mod:`~napari_cellseg.models.unet`, :mod:`~napari_cellseg.models.dcan` and
    :mod:`~napari_cellseg.models.probabilities` in that order, their imports of each
    other left out: what a bioimage.io consumer imports to build the network.
    """
    from napari_cellseg.models import dcan, probabilities, unet

    parts = ['"""Networks of napari-cellseg (DCAN, U-Net), generated for a model package."""']
    parts.append("from __future__ import annotations")
    for module in (unet, dcan, probabilities):
        lines = inspect.getsource(module).splitlines()
        kept = [
            line
            for line in lines
            if not line.startswith(("from __future__", "from napari_cellseg", "# ruff"))
        ]
        parts.append(f"# --- {module.__name__} ---\n" + "\n".join(kept))
    return "\n\n".join(parts) + "\n"


def example_image(model: ModelFile) -> np.ndarray:
    """A real image for the test tensors: (1, channels, 256, 256) float32, raw intensities.

    A slice of the DSB2018 sample; a model of several channels (neighbouring slices)
    gets the slice repeated, as a single image is predicted.
    """
    from napari_cellseg.data.io import read_image

    side = TEST_SIDE - TEST_SIDE % required_multiple(model.config)
    page = read_image(SAMPLE_IMAGE)[0]
    top, left = (np.array(page.shape) - side) // 2
    crop = page[top : top + side, left : left + side].astype(np.float32)
    return np.repeat(crop[None, None], model.config.channels, axis=1)


def scale_range(raw: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Each sample's channel of (B, C, H, W) from its 1st..99.8th percentile to 0..1, as
    bioimage.io's ``scale_range`` preprocessing computes it (this plugin's normalisation
    without its fallbacks for flat images)."""
    low, high = np.percentile(raw, (1.0, 99.8), axis=(2, 3), keepdims=True)
    return ((raw - low) / (high - low + eps)).astype(np.float32)


def check_output(path: str | Path, suffix: str, overwrite: bool) -> Path:
    """The output file checked before any work: its suffix, its folder, no file replaced.

    Raises
    ------
    ConfigError
        For another suffix, a missing folder, a folder given as the file, or an existing
        file without ``overwrite``.
    CellsegError
        When the folder cannot be written.
    """
    import os

    path = Path(path).expanduser()
    if path.suffix.lower() != suffix:
        raise ConfigError(f"'{path}': give a file name ending in {suffix}.")
    if path.is_dir():
        raise ConfigError(f"'{path}' is a folder; give a file name ending in {suffix}.")
    if not path.parent.is_dir():
        raise ConfigError(
            f"The folder '{path.parent}' of '{path.name}' does not exist; create it or "
            "choose another."
        )
    if not os.access(path.parent, os.W_OK):
        raise CellsegError(
            f"The folder '{path.parent}' cannot be written; choose a folder you can write to."
        )
    if path.exists() and not overwrite:
        raise ConfigError(f"'{path}' exists; give another name, or --overwrite to replace it.")
    return path
