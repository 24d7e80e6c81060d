"""The settings that turn probability maps into instances: one typed, validated record.

A model owns two sets of them (:class:`~napari_cellseg.model_file.ModelFile`): those for
plain maps (the ``obj_threshold`` ... ``small_object_prob`` keys of its yaml, defaults in
:class:`~napari_cellseg.config.TrainConfig`) and, once tuned, those for test-time
augmented maps (its yaml's ``tta_segmentation`` block).  Which set applies to a
prediction is decided in one place, :meth:`ModelFile.segmentation
<napari_cellseg.model_file.ModelFile.segmentation>`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from napari_cellseg.errors import ConfigError

__all__ = ["SegmentationSettings", "SEGMENT_KEYS"]


@dataclass(frozen=True)
class SegmentationSettings:
    """How the seeded watershed (:func:`~.instances.instances`) makes instances.

    Attributes
    ----------
    obj_threshold : float
        Object probability above which a core pixel may seed an object, and foreground
        probability above which a pixel joins one (0-1).
    bnd_threshold : float
        Boundary probability below which a foreground pixel may seed an object (0-1).
    split_depth : float
        How far ``objects - boundaries`` must fall between two seeds to keep them apart
        (0 or more; 0: every seed is an object).
    min_size : int
        Smallest object kept, in pixels (0 or more) ...
    small_object_prob : float
        ... unless its highest object probability is above this (0-1; 1: no exception).

    Raises
    ------
    ConfigError
        When a value is outside its range; the message names the setting.

    Examples
    --------
    >>> s = SegmentationSettings(0.7, 0.3, 0.75, 20, 1.0)
    >>> s.describe()
    'obj_threshold 0.7, bnd_threshold 0.3, split_depth 0.75, min_size 20, small_object_prob 1'
    """

    obj_threshold: float
    bnd_threshold: float
    split_depth: float
    min_size: int
    small_object_prob: float

    def __post_init__(self) -> None:
        for name in ("obj_threshold", "bnd_threshold", "small_object_prob"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ConfigError(
                    f"Setting '{name}' is {value}; it is a probability: give a value from 0 to 1."
                )
        if self.split_depth < 0:
            raise ConfigError(
                f"Setting 'split_depth' is {self.split_depth}; give 0 or more (0: never "
                "merge seeds)."
            )
        if self.min_size < 0:
            raise ConfigError(
                f"Setting 'min_size' is {self.min_size}; give the smallest object size in "
                "pixels (0 or more)."
            )

    @classmethod
    def of(cls, source: Any) -> SegmentationSettings:
        """The settings held by a config object (a TrainConfig) or a mapping with their keys."""
        if isinstance(source, Mapping):
            return cls(**{key: source[key] for key in SEGMENT_KEYS})
        return cls(**{key: getattr(source, key) for key in SEGMENT_KEYS})

    def as_dict(self) -> dict[str, float]:
        """The settings as keyword arguments of :func:`~.instances.instances`."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> SegmentationSettings:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """The settings as text, e.g. ``obj_threshold 0.7, bnd_threshold 0.3, ...``."""
        return ", ".join(f"{key} {value:g}" for key, value in self.as_dict().items())


SEGMENT_KEYS = tuple(f.name for f in dataclasses.fields(SegmentationSettings))
"""The settings' names: keys of a model yaml (and fields of its TrainConfig)."""
