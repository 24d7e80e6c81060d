"""Models that come with the package: give their name wherever a model .yaml is asked for.

``nuclei``
    Fluorescence nuclei.  The CPU U-Net (4 levels, 16 filters, object diameter 24) of
    ``benchmarks/quality.py``, trained on the 381 fluorescence images of the 2018 Data
    Science Bowl stage 1 (CC0; ``../shared/data/dsb2018-fluo/train``) and its
    post-processing tuned on the 60 validation images; the yaml's ``record`` tells how
    long it trained and its score.  Weights stored in float16.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["BUILTIN_MODELS", "model_yaml"]

BUILTIN_MODELS = {"nuclei": Path(__file__).with_name("nuclei-dsb2018-fluo.yaml")}
"""Name -> settings file of each built-in model."""


def model_yaml(path: str | Path) -> Path:
    """``path``, or the yaml of the built-in model named ``path`` when no such file exists.

    >>> model_yaml("nuclei").name
    'nuclei-dsb2018-fluo.yaml'
    >>> str(model_yaml("models/mine.yaml"))
    'models/mine.yaml'
    """
    path = Path(path)
    if not path.exists() and str(path) in BUILTIN_MODELS:
        return BUILTIN_MODELS[str(path)]
    return path
