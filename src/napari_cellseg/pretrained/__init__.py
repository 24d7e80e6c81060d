"""Models that come with the package: give their name wherever a model .yaml is asked for.

``nuclei``
    Fluorescence nuclei.  The CPU U-Net (4 levels, 16 filters, object diameter 24) of
    ``benchmarks/quality.py``, trained on the 381 fluorescence images of the 2018 Data
    Science Bowl stage 1 (CC0; ``../shared/data/dsb2018-fluo/train``) and its
    post-processing tuned on the 60 validation images; the yaml's ``record`` tells how
    long it trained and its score.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["BUILTIN_MODELS", "model_yaml", "is_builtin"]

BUILTIN_MODELS = {"nuclei": Path(__file__).with_name("nuclei-dsb2018-fluo.yaml")}
"""Name -> settings file of each built-in model."""


def model_yaml(path: str | Path) -> Path:
    """The settings file of a model given by its yaml, its .pt or a built-in model's name.

    >>> model_yaml("nuclei").name
    'nuclei-dsb2018-fluo.yaml'
    >>> [str(model_yaml(p)) for p in ("models/mine.yaml", "models/mine.pt")]
    ['models/mine.yaml', 'models/mine.yaml']
    """
    path = Path(path)
    if not path.exists() and str(path) in BUILTIN_MODELS:
        return BUILTIN_MODELS[str(path)]
    return path.with_suffix(".yaml") if path.suffix == ".pt" else path


def is_builtin(path: str | Path) -> bool:
    """Whether ``path`` (or name) is a built-in model, which no user may change.

    >>> is_builtin("nuclei"), is_builtin("models/mine.yaml")
    (True, False)
    """
    return model_yaml(path).resolve() in {p.resolve() for p in BUILTIN_MODELS.values()}
