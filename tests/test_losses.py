"""Losses: hand-worked values, agreement with torch's own losses, ignore masking."""

# ruff: noqa: TID253 - tests of torch code, so torch is imported at module level
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from napari_cellseg.config import TrainConfig
from napari_cellseg.training.losses import compute_loss


def make_batch(objects, boundaries, ignore) -> dict[str, torch.Tensor]:
    """A batch from (B, H, W) 0/1 lists; classes: boundary 2, else object 1, else 0."""
    objects, boundaries, ignore = (
        torch.tensor(a, dtype=torch.float32)[:, None] for a in (objects, boundaries, ignore)
    )
    classes = torch.where(boundaries[:, 0] > 0, 2, objects[:, 0].long())
    return dict(
        image=objects.clone(),
        objects=objects,
        boundaries=boundaries,
        ignore=ignore,
        classes=classes,
    )


# One image of 2 x 3 pixels; the last column is ignored (a blob).
BATCH = make_batch(
    objects=[[[1, 1, 0], [0, 1, 1]]],
    boundaries=[[[0, 1, 0], [0, 1, 0]]],
    ignore=[[[0, 0, 1], [0, 0, 1]]],
)
VALID = BATCH["ignore"][:, 0] == 0


def random_logits(channels: int, seed: int = 0) -> torch.Tensor:
    return 3 * torch.randn(1, channels, 2, 3, generator=torch.Generator().manual_seed(seed))


def test_dcan_zero_logits_give_log2():
    cfg = TrainConfig(architecture="dcan", obj_weight=0.25, bnd_weight=2.0)
    loss, parts = compute_loss(cfg, torch.zeros(1, 2, 2, 3), BATCH)
    assert parts == pytest.approx({"objects_loss": math.log(2), "boundaries_loss": math.log(2)})
    assert loss.item() == pytest.approx(2.25 * math.log(2))


@pytest.mark.parametrize("final_act", ["sigmoid", "tanh"])
def test_dcan_loss_is_bce_of_the_probabilities(final_act):
    cfg = TrainConfig(architecture="dcan", dcan_final_act=final_act, obj_weight=0.3, bnd_weight=0.7)
    z = random_logits(2)
    prob = z.sigmoid() if final_act == "sigmoid" else (z.tanh() + 1) / 2
    expected = [
        F.binary_cross_entropy(prob[:, i][VALID], BATCH[key][:, 0][VALID])
        for i, key in enumerate(("objects", "boundaries"))
    ]
    loss, parts = compute_loss(cfg, z, BATCH)
    assert parts["objects_loss"] == pytest.approx(expected[0].item(), rel=1e-5)
    assert parts["boundaries_loss"] == pytest.approx(expected[1].item(), rel=1e-5)
    assert loss.item() == pytest.approx((0.3 * expected[0] + 0.7 * expected[1]).item(), rel=1e-5)


def test_dcan_tanh_loss_is_finite_for_saturated_logits():
    cfg = TrainConfig(architecture="dcan", dcan_final_act="tanh", obj_weight=1.0, bnd_weight=0.0)
    batch = make_batch([[[1, 0]]], [[[0, 0]]], [[[0, 0]]])
    right = torch.tensor([[100.0, -100.0], [0.0, 0.0]]).reshape(1, 2, 1, 2)
    assert compute_loss(cfg, right, batch)[0].item() == pytest.approx(0.0, abs=1e-6)
    # tanh(z) rounds to -1 in float32 here, yet the loss stays exact: -log(sigmoid(-200)).
    wrong = -right
    assert compute_loss(cfg, wrong, batch)[0].item() == pytest.approx(200.0)


def test_unet_zero_logits_hand_worked():
    cfg = TrainConfig(architecture="unet", unet_bnd_class_weight=5.0)
    # Valid pixels: classes 1, 2, 0, 2 -> weights 1, 5, 1, 5 (sum 12), each CE = log 3.
    loss, parts = compute_loss(cfg, torch.zeros(1, 3, 2, 3), BATCH)
    assert loss.item() == pytest.approx(math.log(3))
    assert parts["boundaries_loss"] == pytest.approx(10 / 12 * math.log(3))
    assert parts["objects_loss"] == pytest.approx(2 / 12 * math.log(3))


def test_unet_loss_is_torch_weighted_cross_entropy():
    cfg = TrainConfig(architecture="unet", unet_bnd_class_weight=5.0)
    z = random_logits(3)
    target = BATCH["classes"].masked_fill(~VALID, -100)
    expected = F.cross_entropy(z, target, weight=torch.tensor([1.0, 1.0, 5.0]), ignore_index=-100)
    loss, parts = compute_loss(cfg, z, BATCH)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert parts["objects_loss"] + parts["boundaries_loss"] == pytest.approx(loss.item(), rel=1e-5)


@pytest.mark.parametrize(("architecture", "channels"), [("dcan", 2), ("unet", 3)])
def test_ignored_pixels_do_not_count(architecture, channels):
    cfg = TrainConfig(architecture=architecture)
    z = random_logits(channels).requires_grad_()
    changed = torch.where(VALID[:, None], z, random_logits(channels, seed=1))
    loss = compute_loss(cfg, z, BATCH)[0]
    assert compute_loss(cfg, changed, BATCH)[0].item() == loss.item()
    loss.backward()
    assert (z.grad[:, :, ~VALID[0]] == 0).all()
    assert (z.grad[:, :, VALID[0]] != 0).any()


@pytest.mark.parametrize(("architecture", "channels"), [("dcan", 2), ("unet", 3)])
def test_all_ignored_batch_gives_zero_with_gradient(architecture, channels):
    batch = dict(BATCH, ignore=torch.ones_like(BATCH["ignore"]))
    z = random_logits(channels).requires_grad_()
    loss, parts = compute_loss(TrainConfig(architecture=architecture), z, batch)
    assert loss.item() == 0.0 and parts == {"objects_loss": 0.0, "boundaries_loss": 0.0}
    loss.backward()
    assert torch.equal(z.grad, torch.zeros_like(z))


def with_first_pixel_repeated(tensor: torch.Tensor, copies: int) -> torch.Tensor:
    """(..., H, W) -> (..., 1, H * W + copies): the pixels in one row, pixel (0, 0) added."""
    flat = tensor.flatten(-2)
    return torch.cat([flat] + [flat[..., :1]] * copies, -1)[..., None, :]


@pytest.mark.parametrize(("architecture", "channels"), [("dcan", 2), ("unet", 3)])
def test_separation_pixels_weigh_separation_weight_more(architecture, channels):
    """Weight 4 on pixel (0, 0), an object pixel of class weight 1: it counts 1 + 4 times."""
    z = random_logits(channels)
    separation = torch.zeros_like(BATCH["ignore"])
    separation[0, 0, 0, 0] = 1.0
    batch = dict(BATCH, separation=separation)
    plain = compute_loss(TrainConfig(architecture=architecture), z, BATCH)[0]
    assert compute_loss(TrainConfig(architecture=architecture), z, batch)[0] == plain
    cfg = TrainConfig(architecture=architecture, separation_weight=4.0)
    weighted = compute_loss(cfg, z, batch)[0]
    repeated = {k: with_first_pixel_repeated(v, 4) for k, v in BATCH.items()}
    expected = compute_loss(
        TrainConfig(architecture=architecture), with_first_pixel_repeated(z, 4), repeated
    )[0]
    assert weighted.item() == pytest.approx(expected.item(), rel=1e-5)
    assert weighted.item() != pytest.approx(plain.item(), rel=1e-3)
