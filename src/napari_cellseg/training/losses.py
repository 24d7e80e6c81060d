"""Training losses of DCAN and U-Net, masked by the ignore map (blob pixels).

Batch keys (see :class:`napari_cellseg.data.dataset.SegmentationDataset`): ``objects``,
``boundaries``, ``ignore``, ``separation`` float32 (B, 1, H, W) and ``classes`` int64
(B, H, W).  Pixels whose ``ignore`` is 1 contribute nothing; the loss is a weighted mean
over the others, and a batch whose every pixel is ignored gives a loss of 0 that still
has a gradient.  ``separation`` pixels (near two objects) weigh ``separation_weight``
more (a batch without that key: none).
"""

# ruff: noqa: TID253 - training internals compute on tensors, so torch is imported at module level
from __future__ import annotations

import torch
import torch.nn.functional as F

from napari_cellseg.config import TrainConfig

__all__ = ["compute_loss"]

_TINY = 1e-12


def compute_loss(
    cfg: TrainConfig, logits: torch.Tensor, batch: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss of a batch and its two parts.

    Parameters
    ----------
    cfg
        Settings of the run (architecture, loss weights, DCAN final activation).
    logits
        Network output: DCAN (B, 2, H, W) [objects, boundaries], U-Net (B, 3, H, W).
    batch
        Targets of the batch (keys in the module docstring).

    Returns
    -------
    loss
        Scalar tensor to back-propagate.
    parts
        ``objects_loss`` and ``boundaries_loss`` (floats).  DCAN: the unweighted binary
        cross-entropy of each output; ``loss = obj_weight * objects_loss + bnd_weight *
        boundaries_loss``.  U-Net: the shares of the class-weighted cross-entropy that
        come from pixels whose target is background or object (``objects_loss``) and
        boundary (``boundaries_loss``); they add up to ``loss``.

    Notes
    -----
    Each pixel not ignored weighs ``1 + separation_weight * separation`` (DCAN) or
    ``class weight + separation_weight * separation`` (U-Net), added as the U-Net
    paper adds its border weights to the class weights.
    DCAN: binary cross-entropy on the probabilities of
    :func:`napari_cellseg.models.registry.probabilities`, computed stably from the
    logits ``z``: on ``z`` for a sigmoid final activation, on ``2 z`` for tanh, since
    ``(tanh(z) + 1) / 2 == sigmoid(2 z)``.
    U-Net: cross-entropy with class weights (background 1, object 1, boundary
    ``unet_bnd_class_weight``), averaged with those weights as ``torch.nn.CrossEntropyLoss``
    does: ``sum(w[y] * ce) / sum(w[y])`` over the pixels not ignored.
    """
    logits = logits.float()
    valid = (batch["ignore"][:, 0] < 0.5).float()
    separation = batch.get("separation")
    extra = 0.0 if separation is None else cfg.separation_weight * separation[:, 0]
    if cfg.architecture == "dcan":
        weight = valid * (1.0 + extra)
        z = logits * (2.0 if cfg.dcan_final_act == "tanh" else 1.0)
        objects, boundaries = (
            _weighted_mean(
                F.binary_cross_entropy_with_logits(z[:, i], batch[key][:, 0], reduction="none"),
                weight,
            )
            for i, key in enumerate(("objects", "boundaries"))
        )
        loss = cfg.obj_weight * objects + cfg.bnd_weight * boundaries
        return loss, {"objects_loss": objects.item(), "boundaries_loss": boundaries.item()}

    classes = batch["classes"]
    class_weight = logits.new_tensor([1.0, 1.0, cfg.unet_bnd_class_weight])
    weight = (class_weight[classes] + extra) * valid
    ce = F.cross_entropy(logits, classes, reduction="none")
    loss = _weighted_mean(ce, weight)
    boundaries = _weighted_mean(ce * (classes == 2), weight)
    return loss, {"objects_loss": (loss - boundaries).item(), "boundaries_loss": boundaries.item()}


def _weighted_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``sum(values * weight) / sum(weight)``; 0 (with a gradient) when every weight is 0."""
    return (values * weight).sum() / weight.sum().clamp_min(_TINY)
