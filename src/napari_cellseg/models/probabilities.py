"""The networks as other tools run them: probabilities out, not logits.

An exported model (bioimage.io, ONNX, TorchScript) is one of these: the network of
:mod:`.dcan` or :mod:`.unet` with its final activation, so that a consumer that knows
nothing of this plugin gets probability maps.  Their weights are the network's own (the
same state dict keys).
"""

from __future__ import annotations

import torch

from napari_cellseg.models.dcan import DCAN
from napari_cellseg.models.unet import UNet

__all__ = ["DCANProbabilities", "UNetProbabilities"]


class DCANProbabilities(DCAN):
    """DCAN giving (B, 2, H, W) probabilities: objects, boundaries.

    ``logit_scale`` 2 makes ``sigmoid(2 z) = (tanh(z) + 1) / 2``, the tanh final activation.
    """

    def __init__(
        self,
        in_channels: int = 1,
        start_filters: int = 64,
        dropout: float = 0.0,
        logit_scale: float = 1.0,
    ) -> None:
        super().__init__(in_channels, start_filters, dropout)
        self.logit_scale = logit_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Objects and boundaries probabilities of a batch (B, C, H, W)."""
        return torch.sigmoid(self.logit_scale * super().forward(x))


class UNetProbabilities(UNet):
    """U-Net giving (B, 3, H, W) class probabilities: background, object, boundary."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities of a batch (B, C, H, W)."""
        return torch.softmax(super().forward(x), dim=1)
