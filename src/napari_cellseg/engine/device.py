"""Where the work runs: CUDA, then Apple MPS, else the CPU; and how many loader workers."""

from __future__ import annotations

import os

from napari_cellseg.errors import ConfigError


def resolve_device(name: str = "auto"):
    """Return the ``torch.device`` for a device setting.

    Parameters
    ----------
    name
        ``"auto"`` picks CUDA when present, then MPS, else the CPU; any other value
        (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``) is used as given.

    Raises
    ------
    ConfigError
        When the named device does not exist on this machine.
    """
    import torch

    if name in ("", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"Setting 'device' is {name!r}; use auto, cpu, cuda, cuda:N or mps."
        ) from None
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available()
        and (device.index is None or device.index < torch.cuda.device_count()),
        "mps": bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available(),
    }
    if not available.get(device.type, False):
        raise ConfigError(
            f"Setting 'device' is {name!r} but this machine has no such device; use 'auto'."
        )
    return device


def default_num_workers(setting: int = -1) -> int:
    """DataLoader worker processes: the setting, or for ``-1`` one per spare core (max 4)."""
    if setting >= 0:
        return setting
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(0, min(4, (cores or 1) - 1))
