"""Device choice and mixed precision."""

import pytest
import torch

from napari_cellseg.device import (
    autocast,
    default_num_workers,
    mixed_precision_dtype,
    precision_name,
    resolve_device,
)
from napari_cellseg.errors import ConfigError

NATIVE_BF16 = mixed_precision_dtype("cpu") is not None


def test_auto_is_the_cpu_on_a_machine_without_accelerators():
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("this machine has an accelerator")
    assert resolve_device("auto") == torch.device("cpu")


def test_a_missing_device_is_a_config_error_that_suggests_auto():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="'cuda'.*use 'auto'"):
        resolve_device("cuda")


def test_workers_are_the_setting_or_the_spare_cores():
    assert default_num_workers(3) == 3
    assert 0 <= default_num_workers(-1) <= 4


def test_cpu_mixed_precision_follows_native_bfloat16_support():
    assert mixed_precision_dtype("cpu") == (
        torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None
    )
    assert mixed_precision_dtype("meta") is None


@pytest.mark.parametrize("enabled", [True, False])
def test_autocast_computes_convolutions_in_bfloat16_only_when_enabled_and_native(enabled):
    conv = torch.nn.Conv2d(1, 2, 3)
    with autocast("cpu", enabled):
        out = conv(torch.ones(1, 1, 8, 8))
    bf16 = enabled and NATIVE_BF16
    assert out.dtype == (torch.bfloat16 if bf16 else torch.float32)
    assert conv.weight.dtype == torch.float32
    assert precision_name("cpu", enabled) == ("bfloat16 mixed precision" if bf16 else "float32")
