"""DCAN and U-Net: shapes, gradients, settings checks, probabilities, learning a tiny batch."""

# ruff: noqa: TID253 - tests of torch code, so torch is imported at module level
from __future__ import annotations

import dataclasses

import pytest
import torch
from small_runs import TINY_NETWORK

from napari_cellseg.config import TrainConfig
from napari_cellseg.errors import ConfigError
from napari_cellseg.models.dcan import DCAN
from napari_cellseg.models.registry import (
    build_model,
    prepare_batch,
    prepare_model,
    probabilities,
    required_multiple,
)
from napari_cellseg.models.unet import UNet
from napari_cellseg.training.losses import compute_loss


def tiny(architecture: str, **kw) -> TrainConfig:
    return TrainConfig(**{**TINY_NETWORK, "architecture": architecture, **kw})


def disk_batch(n: int = 2, size: int = 32) -> dict[str, torch.Tensor]:
    """Bright disks of radius 7 and 5 with their 2-pixel rims as boundaries."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    objects, boundaries = [], []
    for i in range(n):
        r = ((yy - 12 - 4 * i) ** 2 + (xx - 16) ** 2).float().sqrt()
        radius = 7 - 2 * i
        objects.append((r <= radius).float())
        boundaries.append(((r <= radius) & (r > radius - 2)).float())
    objects = torch.stack(objects)[:, None]
    boundaries = torch.stack(boundaries)[:, None]
    return dict(
        image=objects
        + 0.1 * torch.randn(objects.shape, generator=torch.Generator().manual_seed(0)),
        objects=objects,
        boundaries=boundaries,
        ignore=torch.zeros_like(objects),
        classes=(objects[:, 0] + boundaries[:, 0]).long(),
    )


@pytest.mark.parametrize("shape", [(32, 32), (64, 96), (96, 32)])
def test_dcan_output_shape(shape):
    model = DCAN(in_channels=1, start_filters=2)
    assert model(torch.rand(2, 1, *shape)).shape == (2, 2, *shape)


@pytest.mark.parametrize(("levels", "shape"), [(1, (6, 10)), (2, (32, 32)), (3, (24, 40))])
def test_unet_output_shape(levels, shape):
    model = UNet(in_channels=3, levels=levels, start_filters=2)
    assert model(torch.rand(2, 3, *shape)).shape == (2, 3, *shape)


def test_widths_follow_start_filters():
    dcan = DCAN(start_filters=3)
    unet = UNet(levels=3, start_filters=3)
    assert [block[0].out_channels for block in dcan.blocks] == [3, 6, 12, 24, 24, 48]
    assert [block[0].out_channels for block in [unet.first, *unet.down]] == [3, 6, 12, 24]


@pytest.mark.parametrize("architecture", ["dcan", "unet"])
def test_every_parameter_gets_a_gradient(architecture):
    cfg = tiny(architecture, dropout=0.2)
    model = build_model(cfg)
    batch = disk_batch()
    loss, _ = compute_loss(cfg, model(batch["image"]), batch)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    ("architecture", "im_dim", "multiple"), [("unet", 90, 4), ("dcan", 48, 32), ("dcan", 16, 32)]
)
def test_im_dim_must_be_a_multiple(architecture, im_dim, multiple):
    cfg = dataclasses.replace(tiny(architecture), im_dim=im_dim)
    assert required_multiple(cfg) == multiple
    with pytest.raises(ConfigError, match=rf"im_dim.*multiple of {multiple}"):
        build_model(cfg)


def test_unet_multiple_follows_levels():
    assert required_multiple(TrainConfig(unet_levels=4)) == 16
    assert build_model(TrainConfig(unet_levels=3, start_filters=2, im_dim=40)).multiple == 8


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(architecture="dcan", channels=3), "use architecture 'unet'"),
        (dict(start_filters=0), "start_filters"),
        (dict(unet_levels=0), "unet_levels"),
        (dict(dropout=1.0), "dropout"),
    ],
)
def test_bad_settings_are_config_errors(changes, message):
    with pytest.raises(ConfigError, match=message):
        build_model(dataclasses.replace(tiny("unet"), **changes))


def test_unet_takes_several_channels():
    model = build_model(tiny("unet", channels=3))
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_unknown_architecture():
    cfg = tiny("unet")
    cfg.architecture = "segnet"
    with pytest.raises(ConfigError, match="architecture"):
        build_model(cfg)


def test_state_dict_holds_only_tensors():
    state = build_model(tiny("dcan")).state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())


@pytest.mark.parametrize("final_act", ["sigmoid", "tanh"])
def test_dcan_probabilities(final_act):
    logits = torch.tensor([[-100.0, -1.0, 0.0, 0.5, 100.0], [3.0, -3.0, 0.0, 1.0, -0.5]])
    logits = logits.reshape(1, 2, 1, 5)
    objects, boundaries = probabilities(tiny("dcan", dcan_final_act=final_act), logits)
    expected = logits.sigmoid() if final_act == "sigmoid" else (logits.tanh() + 1) / 2
    assert objects.shape == boundaries.shape == (1, 1, 5)
    torch.testing.assert_close(objects, expected[:, 0])
    torch.testing.assert_close(boundaries, expected[:, 1])
    assert objects.min() >= 0 and objects.max() <= 1
    assert objects[0, 0, 2] == 0.5


def test_unet_probabilities_are_the_softmax_classes():
    logits = torch.tensor([0.0, 1.0, 2.0]).reshape(1, 3, 1, 1).repeat(2, 1, 2, 3)
    objects, boundaries = probabilities(tiny("unet"), logits)
    e = torch.tensor([1.0, 2.718281828, 7.389056099])
    assert objects.shape == (2, 2, 3)
    torch.testing.assert_close(objects, torch.full((2, 2, 3), (e[1] / e.sum()).item()))
    torch.testing.assert_close(boundaries, torch.full((2, 2, 3), (e[2] / e.sum()).item()))


@pytest.mark.parametrize("architecture", ["dcan", "unet"])
def test_prepared_model_computes_the_same(architecture):
    model = build_model(tiny(architecture)).eval()
    x = torch.rand(2, 1, 32, 32)
    expected = model(x)
    prepared = prepare_model(model, "cpu")
    torch.testing.assert_close(prepared(prepare_batch(x, "cpu")), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("architecture", ["dcan", "unet"])
def test_tiny_net_overfits_tiny_batch(architecture):
    torch.manual_seed(0)
    cfg = tiny(architecture)
    model = build_model(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = disk_batch()
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss, _ = compute_loss(cfg, model(batch["image"]), batch)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
