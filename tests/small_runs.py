"""The tiny network the tests train: a U-Net that runs an epoch in a fraction of a second."""

from __future__ import annotations

TINY_NETWORK = {"architecture": "unet", "im_dim": 32, "start_filters": 4, "unet_levels": 2}
"""TrainConfig fields of the tiny network."""

TINY_RUN = {**TINY_NETWORK, "batch": 2, "num_workers": 0, "tune_postprocess": False}
"""TrainConfig fields of a run of it small enough for a test."""


def as_flags(settings: dict) -> list[str]:
    """Command-line flags of ``settings``: ``--name value``, booleans ``--name``/``--no-name``.

    >>> as_flags({"im_dim": 32, "tune_postprocess": False})
    ['--im_dim', '32', '--no-tune_postprocess']
    """
    flags = []
    for name, value in settings.items():
        if isinstance(value, bool):
            flags.append(f"--{name}" if value else f"--no-{name}")
        else:
            flags += [f"--{name}", str(value)]
    return flags
