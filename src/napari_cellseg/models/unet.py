"""U-Net (Ronneberger et al., MICCAI 2015) with batch norm, 3-class output.

The output classes are 0 background, 1 object, 2 boundary
(:func:`napari_cellseg.data.targets.unet_classes`).  The convolution block and the
weight initialisation defined here are shared with :mod:`napari_cellseg.models.dcan`.

References
----------
O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI 2015, https://doi.org/10.1007/978-3-319-24574-4_28
"""

# ruff: noqa: TID253 - this module defines torch networks, so torch is imported at module level
from __future__ import annotations

import torch
from torch import nn

__all__ = ["UNet", "conv_block", "init_weights"]


def conv_block(in_channels: int, out_channels: int, n_convs: int = 2) -> nn.Sequential:
    """``n_convs`` times (3x3 convolution, batch norm, ReLU); keeps the spatial size."""
    layers: list[nn.Module] = []
    for i in range(n_convs):
        layers += [
            nn.Conv2d(
                in_channels if i == 0 else out_channels, out_channels, 3, padding=1, bias=False
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


def init_weights(module: nn.Module) -> None:
    """He (kaiming) normal init of convolutions, unit scale / zero shift of batch norms."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class UNet(nn.Module):
    """U-Net: ``levels`` down-sampling steps, filters doubling per level.

    Parameters
    ----------
    in_channels
        Channels of the input image.
    levels
        Number of 2x down-sampling steps; the input size must be a multiple of
        ``2 ** levels``.
    start_filters
        Filters of the first level (64 in the original U-Net).
    dropout
        Dropout rate applied to the bottleneck features.

    Notes
    -----
    ``forward`` maps (B, in_channels, H, W) to class logits (B, 3, H, W):
    background, object, boundary.

    References
    ----------
    .. [1] O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for
       Biomedical Image Segmentation", MICCAI 2015,
       https://doi.org/10.1007/978-3-319-24574-4_28
    """

    def __init__(
        self, in_channels: int = 1, levels: int = 4, start_filters: int = 64, dropout: float = 0.0
    ) -> None:
        super().__init__()
        widths = [start_filters * 2**i for i in range(levels + 1)]
        self.multiple = 2**levels
        self.first = conv_block(in_channels, widths[0])
        self.down = nn.ModuleList(conv_block(w, 2 * w) for w in widths[:-1])
        self.pool = nn.MaxPool2d(2)
        self.dropout = nn.Dropout(dropout)
        self.up = nn.ModuleList(nn.ConvTranspose2d(2 * w, w, 2, stride=2) for w in widths[:-1])
        self.decode = nn.ModuleList(conv_block(2 * w, w) for w in widths[:-1])
        self.head = nn.Conv2d(widths[0], 3, 1)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, 3, H, W) of a batch (B, C, H, W)."""
        skips = [self.first(x)]
        for block in self.down:
            skips.append(block(self.pool(skips[-1])))
        x = self.dropout(skips.pop())
        for up, decode in zip(reversed(self.up), reversed(self.decode), strict=True):
            x = decode(torch.cat([skips.pop(), up(x)], dim=1))
        return self.head(x)
