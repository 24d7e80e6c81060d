"""Probability maps of images of any size from a trained model (tiled, batched, blended).

Geometry, per 2D slice (the model was trained on ``im_dim x im_dim`` inputs):

- A slice no larger than ``im_dim`` is brought to ``im_dim`` by the model's
  ``trim_method`` and mapped back with :func:`~napari_cellseg.data.trim.untrim`,
  exactly as training treated it.
- A larger slice is covered by overlapping square tiles (``tile_overlap``; tile
  corners on the network's pooling grid), predicted ``tile_batch`` at a time and
  blended with a smooth window (:mod:`napari_cellseg.inference.tiling`); a side shorter
  than the tile is padded first (zeros for ``padding``, the mirrored image otherwise).
  The tiles are ``tile_size`` pixels (at least ``im_dim``; less when the slice fits in
  fewer): the network is fully convolutional, and fewer pixels lie in two tiles (on 2
  CPU cores the 128-pixel CPU model predicts a 2048 x 2048 image in 0.85 s with tiles of
  256, two at a time, against 1.31 s with tiles of 128, four at a time).
- ``resize`` models saw their training images scaled by ``im_dim / side``.  Their
  slices are measured at the scale ``s = im_dim / train_image_side`` (the median
  training image side the model yaml records under ``record``): a slice whose sides
  times ``s`` fit ``im_dim`` is resized to ``im_dim`` as in training; a larger one is
  scaled by ``s``, tiled, and its maps scaled back, so objects appear at the size the
  network learnt.  Without the record ``s`` is 1 (tiles at the original scale).
- Models trained with ``object_diameter`` D saw every image rescaled so that its
  median object diameter was D (:mod:`napari_cellseg.data.scale`).  A slice is
  predicted at the scale ``s = D / d``: ``d`` is the ``diameter`` given, or else
  measured on the instances of a first prediction at the original scale, then again
  on those of the prediction at ``s``, until the estimate moves by less than
  ``SCALE_TOLERANCE`` (at most ``MAX_PASSES`` predictions).  The maps are scaled back
  to the slice's size.  The instances measured are those of the default
  post-processing settings (``DIAMETER_SETTINGS``), not the model's: tuning the
  settings then leaves the maps it was tuned on unchanged.

A stack ``(Z, H, W)`` is predicted slice by slice; a model with ``channels`` C > 1
sees slices ``clip(z - C // 2 + c, 0, Z - 1)`` as its channels, as in training.
Memory beyond the outputs is bounded by one (normalised) slice, its blending sums and
``tile_batch`` tiles.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_cellseg.config import PredictConfig, TrainConfig
from napari_cellseg.data.labels import median_diameter
from napari_cellseg.data.scale import rescale, scale_factor, scaled_shape
from napari_cellseg.data.trim import resize_to, trim, untrim
from napari_cellseg.errors import ConfigError, DataError
from napari_cellseg.generators import drive
from napari_cellseg.inference.tiling import (
    Blender,
    pad_to,
    padded_shape,
    tile_positions,
)
from napari_cellseg.model_file import ModelFile, load_network, read_model
from napari_cellseg.segmentation.instances import instances
from napari_cellseg.segmentation.settings import SegmentationSettings

__all__ = [
    "PredictProgress",
    "Predictor",
    "load_model",
    "tiling_options",
    "MAX_PASSES",
    "DIAMETER_SETTINGS",
]

log = logging.getLogger(__name__)

_DEFAULTS = PredictConfig()

MAX_PASSES = 3
"""Most predictions of one slice while its object diameter is estimated."""

SCALE_TOLERANCE = 1.2
"""A new diameter estimate within this factor of the last one ends the estimation."""

DIAMETER_SETTINGS = SegmentationSettings.of(TrainConfig())
"""Post-processing of the instances whose median diameter sets the prediction scale."""


@dataclass
class _Count:
    """Tiles predicted so far and planned in all (the plan grows with extra passes)."""

    done: int
    total: int


@dataclass(frozen=True)
class PredictProgress:
    """``done`` of ``total`` network tiles of the current image are predicted."""

    done: int
    total: int


def tiling_options(settings: PredictConfig) -> dict:
    """The keyword arguments of :func:`load_model` that ``settings`` hold (tiling and tta)."""
    keys = ("tile_size", "tile_overlap", "tile_batch", "tta")
    return {key: getattr(settings, key) for key in keys}


def load_model(
    path: str | Path,
    device: str = "auto",
    *,
    tile_size: int = _DEFAULTS.tile_size,
    tile_overlap: int = _DEFAULTS.tile_overlap,
    tile_batch: int = _DEFAULTS.tile_batch,
    tta: bool = _DEFAULTS.tta,
) -> Predictor:
    """A predictor of the model a training run saved (:mod:`napari_cellseg.model_file`).

    Parameters
    ----------
    path
        The model's yaml (or .pt), or the name of a built-in model.
    device
        ``auto`` (CUDA, then MPS, else CPU), ``cpu``, ``cuda``, ``cuda:1``, ``mps``.
    tile_size, tile_overlap, tile_batch
        Tiling of large images: the tiles' side in pixels (at least ``im_dim`` is
        used), their overlap (-1: ``im_dim // 4``; at most ``im_dim // 2`` is used) and
        tiles per forward pass.
    tta
        Test-time augmentation: average the maps of the 8 flips and rotations of
        every tile (segmented with the settings the model holds for such maps, when
        tuned).

    Raises
    ------
    ConfigError
        When the yaml or the weights are missing or unreadable, or the weights do not
        fit the architecture the yaml describes.
    """
    from napari_cellseg.device import resolve_device

    model = read_model(path)
    torch_device = resolve_device(device)
    return Predictor(
        load_network(model, torch_device),
        model,
        torch_device,
        tile_size=tile_size,
        tile_overlap=tile_overlap,
        tile_batch=tile_batch,
        tta=tta,
    )


class Predictor:
    """A trained network ready to predict images of any size.

    Parameters
    ----------
    network
        The torch module (eval mode is set).
    model : ModelFile
        The model it belongs to: settings, record, segmentation settings.
    device
        The torch device the network is on.
    tile_size, tile_overlap, tile_batch, tta
        As :func:`load_model`.

    Attributes
    ----------
    config : TrainConfig
        The model's settings (architecture, im_dim, trim_method, post-processing, ...).
    """

    def __init__(
        self,
        network,
        model: ModelFile,
        device,
        *,
        tile_size: int = _DEFAULTS.tile_size,
        tile_overlap: int = _DEFAULTS.tile_overlap,
        tile_batch: int = _DEFAULTS.tile_batch,
        tta: bool = _DEFAULTS.tta,
    ) -> None:
        if tile_batch < 1 or tile_size < 1 or tile_overlap < -1:
            raise ConfigError(
                f"Settings 'tile_batch' ({tile_batch}) and 'tile_size' ({tile_size}) must be "
                f"at least 1 and 'tile_overlap' ({tile_overlap}) at least 0 (or -1 for a "
                "quarter of the model's im_dim)."
            )
        config = model.config
        self.model, self.model_file, self.config = network.eval(), model, config
        self.device = device
        from napari_cellseg.models.registry import required_multiple

        self.align = required_multiple(config)
        self.tile = max(config.im_dim, -(-tile_size // self.align) * self.align)  # largest
        half = config.im_dim // 2
        self.overlap = config.im_dim // 4 if tile_overlap == -1 else min(tile_overlap, half)
        self.tile_batch = tile_batch
        self.tta = tta
        side = model.train_side
        self.scale = config.im_dim / side if config.trim_method == "resize" and side else 1.0

    # --- public API -------------------------------------------------------------------------

    def iter_predict(
        self, image: np.ndarray, diameter: float = 0.0
    ) -> Generator[PredictProgress, None, tuple[np.ndarray, np.ndarray]]:
        """Predict ``image``, yielding progress after every batch of tiles.

        Parameters
        ----------
        image
            ``(H, W)`` or a stack ``(Z, H, W)``, any size and real dtype.
        diameter
            Median object diameter in pixels in ``image``, for models trained with
            ``object_diameter``; 0: estimated for every slice.

        Yields
        ------
        PredictProgress
            Tiles done so far out of the total.

        Returns
        -------
        objects, boundaries : np.ndarray
            float32 probabilities in [0, 1], the shape of ``image`` (the generator's
            return value: ``objects, boundaries = yield from predictor.iter_predict(x)``).
        """
        from napari_cellseg.data.normalize import count_nonfinite, normalize_image

        stack = _as_stack(image)
        missing = count_nonfinite(stack)
        if missing:
            log.warning(
                "%d of the image's %d pixels are not numbers (NaN or infinite): they are "
                "left out of the intensity scaling and segmented as background.",
                missing,
                stack.size,
            )
        if diameter < 0:
            raise ConfigError(
                f"Setting 'diameter' is {diameter}; give the objects' diameter in pixels, "
                "or 0 to estimate it."
            )
        count = _Count(0, len(stack) * self.count_tiles(stack.shape[-2:], diameter))
        offsets = np.arange(self.config.channels) - self.config.channels // 2
        # a stack's maps; a 2D image returns its slice's maps (a copy costs ~4 % of the time)
        out = np.empty((2, *stack.shape), np.float32) if np.ndim(image) == 3 else None
        for z in range(len(stack)):
            channels = np.clip(z + offsets, 0, len(stack) - 1)
            image_z = normalize_image(stack[channels])  # per slice, as in training
            maps = yield from self._predict_slice(image_z, diameter, count)
            if out is None:
                return maps[0], maps[1]
            out[:, z] = maps
        return out[0], out[1]

    def predict(
        self,
        image: np.ndarray,
        progress: Callable[[PredictProgress], object] | None = None,
        diameter: float = 0.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Run :meth:`iter_predict` to the end; ``progress`` is called with each progress record."""
        return drive(self.iter_predict(image, diameter), progress)

    def segmentation(self) -> SegmentationSettings:
        """The segmentation settings of this predictor's maps (plain or test-time augmented),
        as the model resolves them (:meth:`ModelFile.segmentation
        <napari_cellseg.model_file.ModelFile.segmentation>`)."""
        return self.model_file.segmentation(self.tta)

    def instances(
        self,
        objects: np.ndarray,
        boundaries: np.ndarray,
        settings: SegmentationSettings | None = None,
    ) -> np.ndarray:
        """Instance labels with ``settings``, by default :meth:`segmentation`.

        Numbered as annotations: no object takes the model's ``blob_label``, so the
        labels can be corrected and trained on as they are.
        """
        settings = settings or self.segmentation()
        return instances(
            objects, boundaries, **settings.as_dict(), skip_label=self.config.blob_label
        )

    def count_tiles(self, shape: tuple[int, int], diameter: float = 0.0) -> int:
        """Network tiles of the first prediction of a slice of ``shape`` (H, W).

        Estimating the object diameter may add predictions; progress records then
        grow their total.
        """
        return self._count_at(shape, self.first_scale(diameter))

    # --- geometry ---------------------------------------------------------------------------

    def _count_at(self, shape: tuple[int, int], scale: float) -> int:
        size = scaled_shape(shape, scale)
        if max(size) <= self.config.im_dim:
            return 1
        tile = self.tile_side(size)
        padded = padded_shape(size, tile, self.align)
        return len(tile_positions(padded, tile, self.overlap, self.align))

    def tile_side(self, size: tuple[int, int]) -> int:
        """Side of the tiles of a slice of ``size`` (at the network's scale) larger than im_dim."""
        return max(self.config.im_dim, min(self.tile, max(padded_shape(size, 1, self.align))))

    def first_scale(self, diameter: float) -> float:
        """The scale a slice is first predicted at (network pixels per image pixel)."""
        if self.config.object_diameter:
            return scale_factor(self.config.object_diameter, diameter)  # 1 when unknown
        return self.scale

    def _predict_slice(self, image: np.ndarray, diameter: float, count: _Count):
        """(C, H, W) normalised slice -> (2, H, W) maps; yields progress per batch."""
        maps, _scale = yield from self._scaled_prediction(image, diameter, count)
        return maps

    def _scaled_prediction(self, image: np.ndarray, diameter: float, count: _Count):
        """The maps of a (C, H, W) normalised slice and the scale they were predicted at."""
        scale = self.first_scale(diameter)
        if not self.config.object_diameter or diameter:
            return (yield from self._predict_at(image, scale, count)), scale
        for n in range(MAX_PASSES):
            if n:
                count.total += self._count_at(image.shape[-2:], scale)
            used = scale
            maps = yield from self._predict_at(image, scale, count)
            measured = median_diameter(
                instances(*maps, **DIAMETER_SETTINGS.as_dict()), ignore_label=None
            )
            scale = scale_factor(self.config.object_diameter, measured)
            if abs(np.log(scale / used)) <= np.log(SCALE_TOLERANCE):
                break
        return maps, used

    def predict_normalised(
        self, image: np.ndarray, diameter: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Objects and boundaries maps of one (C, H, W) slice already scaled to 0..1.

        For images predicted block by block, whose intensities are scaled once for the
        whole image (:mod:`napari_cellseg.bigimage`).
        """
        maps = drive(
            self._predict_slice(image.astype(np.float32, copy=False), diameter, _Count(0, 1)), None
        )
        return maps[0], maps[1]

    def estimate_diameter(self, image: np.ndarray) -> float:
        """The objects' diameter in pixels that this model measures on a (C, H, W) slice
        scaled to 0..1, for models trained with ``object_diameter`` (else 0)."""
        if not self.config.object_diameter:
            return 0.0
        _maps, scale = drive(self._scaled_prediction(image, 0.0, _Count(0, 1)), None)
        return self.config.object_diameter / scale

    def _predict_at(self, image: np.ndarray, scale: float, count: _Count):
        """The maps of a (C, H, W) slice predicted at ``scale``, back at its size."""
        shape = image.shape[-2:]
        cfg = self.config
        size = scaled_shape(shape, scale)
        if max(size) <= cfg.im_dim:
            small = image if cfg.trim_method == "resize" else rescale(image, scale)
            trimmed, info = trim(small, cfg.im_dim, cfg.trim_method)
            maps = untrim(self._forward(trimmed[np.newaxis])[0], info)
            count.done += 1
            yield PredictProgress(count.done, count.total)
        else:
            mode = "constant" if cfg.trim_method == "padding" else "reflect"
            tile = self.tile_side(size)
            padded, crop = pad_to(rescale(image, scale), tile, self.align, mode)
            positions = tile_positions(padded.shape[-2:], tile, self.overlap, self.align)
            blender = Blender(2, padded.shape[-2:], positions, tile, self.overlap)
            for start in range(0, len(positions), self.tile_batch):
                batch = positions[start : start + self.tile_batch]
                tiles = np.stack([padded[:, y : y + tile, x : x + tile] for y, x in batch])
                for maps, (y, x) in zip(self._forward(tiles), batch, strict=True):
                    blender.add(maps, y, x)
                count.done += len(batch)
                yield PredictProgress(count.done, count.total)
            maps = blender.result()[(slice(None), *crop)]
        if maps.shape[-2:] != shape:
            maps = resize_to(maps, shape, 1)
        return np.clip(maps, 0, 1, out=maps)

    def _forward(self, tiles: np.ndarray) -> np.ndarray:
        """(B, C, T, T) float32 -> (B, 2, T, T) objects and boundaries probabilities.

        With ``tta`` the mean over the 8 symmetries of the square tiles (rotations by
        90 degrees, each also mirrored), every map turned back first.
        """
        if not self.tta:
            return self._probabilities(tiles)
        total = np.zeros((len(tiles), 2, *tiles.shape[-2:]), np.float32)
        for turns in range(4):
            for mirror in (False, True):
                view = np.rot90(tiles, turns, axes=(2, 3))
                maps = self._probabilities(view[..., ::-1] if mirror else view)
                total += np.rot90(maps[..., ::-1] if mirror else maps, -turns, axes=(2, 3))
        return total / 8

    def _probabilities(self, tiles: np.ndarray) -> np.ndarray:
        """One forward pass of (B, C, T, T) tiles: (B, 2, T, T) float32 maps."""
        import torch

        from napari_cellseg.device import autocast
        from napari_cellseg.models.registry import prepare_batch, probability_maps

        batch = prepare_batch(torch.from_numpy(np.ascontiguousarray(tiles)), self.device)
        with torch.inference_mode():  # not around a yield: it would leak into the caller
            with autocast(self.device, self.config.mixed_precision):
                logits = self.model(batch)
            return probability_maps(self.config, logits.float()).cpu().numpy()


def _as_stack(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim not in (2, 3) or 0 in image.shape:
        raise DataError(
            f"Cannot predict an image of shape {image.shape}: give a 2D image (H, W) "
            "or a stack of them (Z, H, W)."
        )
    if not (
        np.issubdtype(image.dtype, np.integer)
        or np.issubdtype(image.dtype, np.floating)
        or image.dtype == bool
    ):
        raise DataError(
            f"Cannot predict an image of dtype {image.dtype}; give a real-valued image."
        )
    return image if image.ndim == 3 else image[np.newaxis]
