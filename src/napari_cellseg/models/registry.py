"""Build the network a :class:`~napari_cellseg.config.TrainConfig` names; read its outputs.

Importing this module does not import torch: the networks are imported when built, and
the other functions only call methods of the tensors and modules they are given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from napari_cellseg.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from napari_cellseg.config import TrainConfig

__all__ = [
    "training_memory",
    "check_training_memory",
    "ARCHITECTURES",
    "build_model",
    "depth",
    "prepare_batch",
    "prepare_model",
    "probabilities",
    "probability_maps",
    "required_multiple",
]

ARCHITECTURES = ("dcan", "unet")

DCAN_DEPTH = 5
"""Down-sampling steps of DCAN (six blocks, max pooling between them)."""


def depth(cfg: TrainConfig) -> int:
    """Number of 2x down-sampling steps of the network ``cfg`` describes."""
    _check_architecture(cfg)
    return DCAN_DEPTH if cfg.architecture == "dcan" else cfg.unet_levels


def required_multiple(cfg: TrainConfig) -> int:
    """The network's input height and width must be multiples of this (``2 ** depth``)."""
    return 2 ** depth(cfg)


def build_model(cfg: TrainConfig) -> nn.Module:
    """A freshly initialised network for ``cfg`` (on the CPU, in training mode).

    Raises
    ------
    ConfigError
        When the architecture is unknown, ``channels``, ``start_filters``, ``unet_levels``
        or ``dropout`` are out of range, DCAN is asked for more than one channel, or
        ``im_dim`` is not a multiple of ``2 ** depth``.
    """
    _check(cfg)
    if cfg.architecture == "dcan":
        from napari_cellseg.models.dcan import DCAN

        return DCAN(cfg.channels, cfg.start_filters, cfg.dropout)
    from napari_cellseg.models.unet import UNet

    return UNet(cfg.channels, cfg.unet_levels, cfg.start_filters, cfg.dropout)


def probabilities(cfg: TrainConfig, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Objects and boundaries probabilities, each (B, H, W) in [0, 1], from network logits.

    Views of :func:`probability_maps`.
    """
    maps = probability_maps(cfg, logits)
    return maps[:, 0], maps[:, 1]


def probability_maps(cfg: TrainConfig, logits: torch.Tensor) -> torch.Tensor:
    """Objects and boundaries probabilities (B, 2, H, W) in [0, 1], from network logits.

    DCAN (B, 2, H, W): ``sigmoid(z)``, or ``(tanh(z) + 1) / 2`` when ``dcan_final_act`` is
    tanh (computed as the identical ``sigmoid(2 z)``).  U-Net (B, 3, H, W): softmax over
    the classes; objects = p(object), boundaries = p(boundary) (a view of the softmax).
    Computed on contiguous logits: a softmax over the channels of a channels-last tensor
    is 5x slower on the CPU.
    """
    logits = logits.contiguous()
    if cfg.architecture == "dcan":
        scale = 2.0 if cfg.dcan_final_act == "tanh" else 1.0
        return (scale * logits).sigmoid()
    return logits.softmax(dim=1)[:, 1:]


CHANNELS_LAST_DEVICES: frozenset[str] = frozenset({"cpu"})
"""Device types on which the channels-last memory format was measured to train faster.

On 2 CPU cores (im_dim 256, batch 4, forward + loss + backward + Adam step), both
networks at start_filters 16, 32 and 64 were faster in channels-last in every one of 12
interleaved comparisons: by 5 to 70 %, median 17 %.  Re-measure with
``benchmarks/train_throughput.py --compare_memory_formats``.  CUDA and MPS have not been
measured, so they keep the default format.
"""


TRAINING_MEMORY_FACTOR = 1.5
"""Peak memory of a training step over the sum of the layers' outputs: measured on a CPU
(U-Nets of 4-64 filters at 512-1024 px, DCAN): 0.9-1.5."""


def training_memory(model: nn.Module, cfg: TrainConfig) -> int:
    """Bytes a training step of ``cfg.batch`` images of ``cfg.im_dim`` pixels needs, about.

    The layers' outputs (kept for the backward pass) are counted on one small input and
    scaled to the batch; weights, gradients and Adam's two moments add four copies of the
    parameters.
    """
    import torch

    side = max(64, required_multiple(cfg))
    counted = 0

    def count(_module, _inputs, output) -> None:
        nonlocal counted
        if isinstance(output, torch.Tensor):
            counted += output.numel()

    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    training = model.training
    try:
        probe = torch.zeros(1, cfg.channels, side, side, device=next(model.parameters()).device)
        with torch.no_grad():
            model.eval()(probe)  # eval: the probe leaves batch norm's statistics alone
    finally:
        for hook in hooks:
            hook.remove()
        model.train(training)
    outputs = counted / side**2 * cfg.im_dim**2 * cfg.batch * 4
    parameters = sum(p.numel() for p in model.parameters()) * 4 * 4
    return int(TRAINING_MEMORY_FACTOR * outputs + parameters)


def check_training_memory(model: nn.Module, cfg: TrainConfig, device) -> None:
    """Refuse a batch that cannot fit the device's free memory, before it is tried (the
    kernel would kill the process without a word).

    Raises
    ------
    ConfigError
        Naming the memory needed and free, and the settings to lower.
    """
    from napari_cellseg.device import free_memory

    need, free = training_memory(model, cfg), free_memory(device)
    if free is not None and need > free:
        raise ConfigError(
            f"A training batch of {cfg.batch} images of {cfg.im_dim} x {cfg.im_dim} pixels "
            f"needs about {need / 2**30:.1f} GiB for this network, more than the "
            f"{free / 2**30:.1f} GiB free on {device}: lower 'im_dim' or 'batch' (or "
            "'start_filters'), or train on a larger machine."
        )


def prepare_model(model: nn.Module, device: torch.device | str) -> nn.Module:
    """Move ``model`` to ``device`` in the memory format that is fastest there."""
    model = model.to(device)
    if _channels_last(device):
        import torch

        model = model.to(memory_format=torch.channels_last)
    return model


def prepare_batch(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """Move an input batch (B, C, H, W) to ``device`` in the format :func:`prepare_model` chose."""
    tensor = tensor.to(device, non_blocking=True)
    if _channels_last(device):
        import torch

        tensor = tensor.contiguous(memory_format=torch.channels_last)
    return tensor


def _channels_last(device: torch.device | str) -> bool:
    import torch

    return torch.device(device).type in CHANNELS_LAST_DEVICES


def _check_architecture(cfg: TrainConfig) -> None:
    if cfg.architecture not in ARCHITECTURES:
        raise ConfigError(
            f"Setting 'architecture' is {cfg.architecture!r}; choose one of "
            f"{', '.join(ARCHITECTURES)}."
        )


def _check(cfg: TrainConfig) -> None:
    _check_architecture(cfg)
    multiple = required_multiple(cfg)
    if cfg.im_dim < multiple or cfg.im_dim % multiple:
        suggestion = max(multiple, round(cfg.im_dim / multiple) * multiple)
        raise ConfigError(
            f"Setting 'im_dim' is {cfg.im_dim} but the {cfg.architecture} network down-samples "
            f"{depth(cfg)} times, so im_dim must be a multiple of {multiple}; "
            f"use e.g. im_dim {suggestion}."
        )
