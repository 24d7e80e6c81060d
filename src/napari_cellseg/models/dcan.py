"""DCAN, the deep contour-aware network (Chen et al., CVPR 2016), as in the seed tool.

A VGG-style encoder of six blocks (two 3x3 convolutions with batch norm and ReLU each,
2x max pooling between blocks) feeds two decoder branches, objects and boundaries.
Each branch sums transposed-convolution upsamplings of the three deepest blocks back to
the input resolution.

References
----------
H. Chen, X. Qi, L. Yu, P.-A. Heng, "DCAN: Deep Contour-Aware Networks for Accurate Gland
Segmentation", CVPR 2016, https://doi.org/10.1109/CVPR.2016.273
"""

# ruff: noqa: TID253 - this module defines torch networks, so torch is imported at module level
from __future__ import annotations

import torch
from torch import nn

from napari_cellseg.models.unet import conv_block, init_weights

__all__ = ["DCAN"]

WIDTH_FACTORS = (1, 2, 4, 8, 8, 16)
"""Block widths in units of ``start_filters`` (64-128-256-512-512-1024 by default)."""

DECODED_BLOCKS = 3
"""How many of the deepest blocks the decoder branches upsample and sum."""


class DCAN(nn.Module):
    """Deep contour-aware network with an objects and a boundaries output.

    Parameters
    ----------
    in_channels
        Channels of the input image.
    start_filters
        Filters of the first block; the others follow :data:`WIDTH_FACTORS`.
    dropout
        Dropout rate applied to the deep features before the decoder heads.

    Notes
    -----
    ``forward`` maps (B, in_channels, H, W) to logits (B, 2, H, W): objects, boundaries.
    H and W must be multiples of ``2 ** 5`` (:attr:`multiple`).  Per decoded block, one
    transposed convolution with two output channels is both branches at once: channel 0
    (objects) and channel 1 (boundaries) have separate weights.

    References
    ----------
    .. [1] H. Chen, X. Qi, L. Yu, P.-A. Heng, "DCAN: Deep Contour-Aware Networks for
       Accurate Gland Segmentation", CVPR 2016, https://doi.org/10.1109/CVPR.2016.273
    """

    multiple = 2 ** (len(WIDTH_FACTORS) - 1)

    def __init__(self, in_channels: int = 1, start_filters: int = 64, dropout: float = 0.0) -> None:
        super().__init__()
        widths = [start_filters * f for f in WIDTH_FACTORS]
        self.blocks = nn.ModuleList(
            conv_block(c_in, c_out)
            for c_in, c_out in zip([in_channels, *widths[:-1]], widths, strict=True)
        )
        self.pool = nn.MaxPool2d(2)
        self.dropout = nn.Dropout(dropout)
        first_decoded = len(widths) - DECODED_BLOCKS
        self.heads = nn.ModuleList(
            nn.ConvTranspose2d(widths[i], 2, 2 * 2**i, stride=2**i, padding=2**i // 2)
            for i in range(first_decoded, len(widths))
        )
        init_weights(self)
        for head in self.heads:
            # Each output pixel sees 4 taps per input channel of ReLU features (mean square
            # ~1/2), so this std gives summed logits of variance ~1 at the start.
            nn.init.normal_(head.weight, std=(6 * head.in_channels) ** -0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, 2, H, W) [objects, boundaries] of a batch (B, C, H, W)."""
        features = []
        for i, block in enumerate(self.blocks):
            x = block(x if i == 0 else self.pool(x))
            features.append(x)
        deep = features[-DECODED_BLOCKS:]
        return sum(head(self.dropout(f)) for head, f in zip(self.heads, deep, strict=True))
