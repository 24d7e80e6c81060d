"""Where the work runs: CUDA, then Apple MPS, else the CPU; loader workers; precision."""

from __future__ import annotations

import contextlib
import functools
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


@functools.cache  # asked per batch by autocast(); the answer never changes
def mixed_precision_dtype(device):
    """The reduced-precision ``torch.dtype`` that ``device`` computes fast, or None.

    bfloat16 on CUDA GPUs that support it and on CPUs with native bfloat16 instructions
    (AVX512-BF16 or AMX, through oneDNN); None elsewhere (MPS, older CPUs and GPUs),
    where it would be emulated and slower than float32.
    """
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu":
        try:
            native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
        except (AttributeError, RuntimeError):  # a build without oneDNN
            native = False
        return torch.bfloat16 if native else None
    return None


def autocast(device, enabled: bool = True):
    """Context in which the network computes in :func:`mixed_precision_dtype` (weights stay
    float32); a no-op when not ``enabled`` or the device has no fast reduced precision."""
    import torch

    dtype = mixed_precision_dtype(device) if enabled else None
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def precision_name(device, enabled: bool = True) -> str:
    """``"bfloat16 mixed precision"`` or ``"float32"``: what :func:`autocast` computes in."""
    dtype = mixed_precision_dtype(device) if enabled else None
    return "float32" if dtype is None else f"{str(dtype).removeprefix('torch.')} mixed precision"


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is running out of memory: torch.OutOfMemoryError (CUDA, MPS), a
    failed CPU allocation, or numpy's MemoryError.

    >>> is_out_of_memory(RuntimeError("CUDA out of memory")), is_out_of_memory(ValueError())
    (True, False)
    """
    message = str(exc).lower()
    return isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError)
        and ("out of memory" in message or "can't allocate memory" in message)
    )


def free_memory(device) -> int | None:
    """Bytes ``device`` can still allocate: CUDA's free memory, the CPU's available memory
    (Linux), else None (unknown)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu":
        with contextlib.suppress(OSError, ValueError, StopIteration):
            with open("/proc/meminfo") as fh:
                line = next(line for line in fh if line.startswith("MemAvailable:"))
            return int(line.split()[1]) * 1024
    return None
