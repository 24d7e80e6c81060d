"""A trained model on disk: the one place that names, reads, writes and describes it.

A model is two files side by side::

    nuclei.pt     the network's weights (a torch state dict)
    nuclei.yaml   every setting of the run that made it (:class:`~.config.TrainConfig`,
                  the seed's keys included), the segmentation settings at top level,
                  optionally ``tta_segmentation`` (settings tuned on test-time augmented
                  maps) and last a ``record`` of facts: epochs trained, best scores, the
                  median training image side, tuning scores, the plugin's version.

Prediction needs only the yaml (it names the weights).  Wherever a model is asked for,
the name of a built-in model (:data:`BUILTIN_MODELS`) works too, and so does a
bioimage.io package this plugin exported (:mod:`napari_cellseg.sharing.bioimageio`).
Every model file that earlier versions wrote reads the same: the format only ever gained
optional keys.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from napari_cellseg.config import TrainConfig
from napari_cellseg.config_io import from_dict, read_yaml_dict
from napari_cellseg.errors import ConfigError
from napari_cellseg.io_utils import atomic_write_text
from napari_cellseg.segmentation.settings import SEGMENT_KEYS, SegmentationSettings

__all__ = [
    "BUILTIN_MODELS",
    "ModelFile",
    "read_model",
    "write_model",
    "save_segmentation",
    "load_network",
    "model_yaml",
    "yaml_beside",
    "is_builtin",
    "is_model_yaml",
    "RECORD_KEY",
    "TTA_SEGMENTATION_KEY",
    "MODEL_BLOCKS",
    "TRAIN_SIDE_KEY",
]

_PRETRAINED = Path(__file__).with_name("pretrained")

BUILTIN_MODELS = {"nuclei": _PRETRAINED / "nuclei-dsb2018-fluo.yaml"}
"""Name -> yaml of each model that comes with the package.

``nuclei``: fluorescence nuclei.  The CPU U-Net (4 levels, 16 filters, object diameter
24) of ``benchmarks/quality.py``, trained on the 381 fluorescence images of the 2018 Data
Science Bowl stage 1 (CC0) and its segmentation tuned on the 60 validation images; the
yaml's ``record`` tells how long it trained and its score."""

RECORD_KEY = "record"
"""Key of the yaml mapping with facts about the run (epochs trained, scores)."""

TTA_SEGMENTATION_KEY = "tta_segmentation"
"""Key of the yaml mapping with the segmentation settings tuned on test-time augmented
maps (``tune-postprocess --tta``): averaging 8 predictions flattens the maps, so they
want other thresholds than single predictions."""

MODEL_BLOCKS = (RECORD_KEY, TTA_SEGMENTATION_KEY)
"""The yaml's mappings that are no training settings."""

TRAIN_SIDE_KEY = "train_image_side"
"""Key in the ``record``: median side of the training images in pixels."""


def model_yaml(path: str | Path) -> Path:
    """The yaml of a model given by its yaml, its .pt, a built-in model's name or a
    bioimage.io package (.zip) exported by this plugin (unpacked once into a cache).

    >>> model_yaml("nuclei").name
    'nuclei-dsb2018-fluo.yaml'
    >>> [str(model_yaml(p)) for p in ("models/mine.yaml", "models/mine.pt")]
    ['models/mine.yaml', 'models/mine.yaml']
    """
    path = Path(path)
    if not path.exists() and str(path) in BUILTIN_MODELS:
        return BUILTIN_MODELS[str(path)]
    if path.suffix.lower() == ".zip":  # a bioimage.io package this plugin exported
        from napari_cellseg.sharing.bioimageio import unpack_package

        return unpack_package(path)
    return path.with_suffix(".yaml") if path.suffix == ".pt" else path


def yaml_beside(weights: str | Path) -> Path:
    """The yaml written beside a weights file: ``x.pt`` -> ``x.yaml``.

    >>> str(yaml_beside("models/run1.pt"))
    'models/run1.yaml'
    """
    return Path(weights).with_suffix(".yaml")


def is_model_yaml(path: str | Path) -> bool:
    """Whether ``path`` is a model's yaml (a settings file naming weights), not any YAML file."""
    if Path(path).suffix not in (".yaml", ".yml"):
        return False
    try:
        data = read_yaml_dict(path)
    except ConfigError:
        return False
    return "architecture" in data and "model" in data


def is_builtin(path: str | Path) -> bool:
    """Whether ``path`` (or name) is a built-in model, which no user may change.

    >>> is_builtin("nuclei"), is_builtin("models/mine.yaml")
    (True, False)
    """
    return model_yaml(path).resolve() in {p.resolve() for p in BUILTIN_MODELS.values()}


@dataclass(frozen=True)
class ModelFile:
    """A model's yaml, read and checked.

    Attributes
    ----------
    path : Path
        The yaml.
    config : TrainConfig
        Every setting of the run (network, data, optimisation, segmentation).
    record : dict
        Facts about the run (``epochs_trained``, ``best``, ``postprocess``, ...).
    tta_segmentation : SegmentationSettings or None
        The settings tuned for test-time augmented maps; None until tuned.
    """

    path: Path
    config: TrainConfig
    record: dict = field(default_factory=dict)
    tta_segmentation: SegmentationSettings | None = None

    @classmethod
    def unsaved(cls, config: TrainConfig, record: dict | None = None) -> ModelFile:
        """A model not written to disk (a network built or trained in memory)."""
        return cls(Path("unsaved.yaml"), config, dict(record or {}))

    def segmentation(self, tta: bool = False) -> SegmentationSettings:
        """The settings that segment this model's maps: the one rule every front end asks.

        With ``tta`` those tuned for test-time augmented maps, when the model has them;
        otherwise (and without ``tta``) the model's plain settings.
        """
        if tta and self.tta_segmentation is not None:
            return self.tta_segmentation
        return SegmentationSettings.of(self.config)

    @property
    def weights(self) -> Path:
        """The weights file; a relative path missing as given is looked up beside the yaml.

        Raises
        ------
        ConfigError
            When the yaml names no weights, or they are in none of the places looked in.
        """
        name = self.config.model
        if not name:
            raise ConfigError(f"'{self.path}' names no weights file (setting 'model' is empty).")
        given = Path(name)
        candidates = [given] if given.is_absolute() else [given, self.path.parent / given]
        candidates.append(self.path.parent / given.name)
        for path in candidates:
            if path.is_file():
                return path
        raise ConfigError(
            f"The weights file '{name}' named by '{self.path}' does not exist (looked in "
            f"{', '.join(repr(str(p)) for p in candidates)}); put the .pt file next to the yaml."
        )

    @property
    def builtin(self) -> bool:
        """Whether this is a built-in model (read-only for everyone)."""
        return is_builtin(self.path)

    @property
    def train_side(self) -> float | None:
        """Median side of the training images in pixels, where the record holds it."""
        return self.record.get(TRAIN_SIDE_KEY)


def read_model(path: str | Path) -> ModelFile:
    """Read the model a yaml (or .pt, or built-in name) describes.

    Raises
    ------
    ConfigError
        When the yaml is missing, not YAML, holds a bad setting, or its
        ``tta_segmentation`` is not a mapping of segmentation settings.
    """
    yaml_path = model_yaml(path)
    content = read_yaml_dict(yaml_path)
    if not {"architecture", "model"} <= set(content):
        raise ConfigError(
            f"'{yaml_path}' is not a model's settings (it names no 'architecture' and "
            "'model'): pick the .yaml that training wrote beside the model's .pt."
        )
    try:
        config = from_dict(TrainConfig, content, source=str(yaml_path))
        tta = _tta_segmentation(content, yaml_path)
    except ConfigError as exc:
        if str(yaml_path) in str(exc):
            raise
        raise ConfigError(f"In '{yaml_path}': {exc}") from None
    return ModelFile(yaml_path, config, dict(content.get(RECORD_KEY) or {}), tta)


def _tta_segmentation(content: dict, yaml_path: Path) -> SegmentationSettings | None:
    """The yaml's ``tta_segmentation``; a key left out takes the plain setting's value."""
    tuned = content.get(TTA_SEGMENTATION_KEY)
    if tuned is None:
        return None
    if not isinstance(tuned, dict) or not set(tuned) <= set(SEGMENT_KEYS):
        raise ConfigError(
            f"'{TTA_SEGMENTATION_KEY}' in '{yaml_path}' must map settings of "
            f"{', '.join(SEGMENT_KEYS)} to values; fix it, or delete it to segment "
            "test-time augmented maps with the model's other settings."
        )
    source = f"'{yaml_path}' ({TTA_SEGMENTATION_KEY})"
    return SegmentationSettings.of(from_dict(TrainConfig, {**content, **tuned}, source=source))


def write_model(config: TrainConfig, weights: str | Path, record: dict | None = None) -> Path:
    """Write the yaml of the weights ``weights`` (atomically): ``config`` naming them, then
    ``record``.  Returns the yaml's path."""
    data = dataclasses.asdict(dataclasses.replace(config, model=str(weights)))
    if record:
        data[RECORD_KEY] = record
    return atomic_write_text(yaml_beside(weights), yaml.safe_dump(data, sort_keys=False))


def save_segmentation(
    path: str | Path,
    settings: SegmentationSettings,
    *,
    tta: bool = False,
    mean_ap: float | None = None,
    data: str = "",
) -> Path:
    """Write segmentation settings into a model yaml atomically, keeping every other entry.

    The settings replace the plain ones, or with ``tta`` go under ``tta_segmentation``;
    their score ``mean_ap`` (when measured) and ``data`` (what it was measured on) go to
    the record under ``postprocess`` (``postprocess_tta``).

    Raises
    ------
    ConfigError
        When ``path`` is a built-in model, or not a readable yaml.
    """
    yaml_path = model_yaml(path)
    if is_builtin(yaml_path):
        raise ConfigError(
            "The built-in model is shared by everyone who installs the plugin, so its "
            "settings stay as they are: fine-tune it to get a model of your own, whose "
            "settings you can save."
        )
    content = read_yaml_dict(yaml_path)
    if tta:
        content[TTA_SEGMENTATION_KEY] = settings.as_dict()
    else:
        content.update(settings.as_dict())
    record = content.pop(RECORD_KEY, None) or {}  # stays the last entry
    score = {} if mean_ap is None else {"mean_ap": float(mean_ap)}
    record["postprocess_tta" if tta else "postprocess"] = {**score, "data": str(data)}
    content[RECORD_KEY] = record
    return atomic_write_text(yaml_path, yaml.safe_dump(content, sort_keys=False))


def load_network(model: ModelFile, device: Any):
    """The model's network with its weights, on ``device`` (a torch.device), in eval mode.

    Raises
    ------
    ConfigError
        When the weights are missing or unreadable, or do not fit the architecture the
        yaml describes.
    """
    import torch

    from napari_cellseg.models.registry import build_model, prepare_model

    weights = model.weights
    network = build_model(model.config)
    try:
        state = torch.load(weights, map_location=device, weights_only=True)
    except Exception as exc:
        raise ConfigError(
            f"Cannot read the weights '{weights}' named by '{model.path}' ({exc}); "
            "re-copy the file or train the model again."
        ) from None
    try:
        network.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(
            f"The weights '{weights}' do not fit the {model.config.architecture} network that "
            f"'{model.path}' describes ({first}). Use the yaml written with these weights."
        ) from None
    return prepare_model(network, device).eval()
