"""Prediction: tiled = whole image, exact geometry for every trim method, stacks, model files."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch  # noqa: TID253 - tests build and run networks
from scipy import ndimage
from scipy.ndimage import gaussian_filter
from small_runs import TINY_NETWORK

from napari_cellseg.config import TrainConfig
from napari_cellseg.config_io import save_yaml
from napari_cellseg.data.labels import median_diameter
from napari_cellseg.data.normalize import normalize_image
from napari_cellseg.device import mixed_precision_dtype
from napari_cellseg.errors import ConfigError, DataError
from napari_cellseg.inference.predictor import Predictor, PredictProgress, load_model
from napari_cellseg.model_file import TRAIN_SIDE_KEY, ModelFile
from napari_cellseg.models.registry import build_model, probabilities


def _predictor(network, cfg, device, *, train_side=None, **options) -> Predictor:
    """A predictor of a network built in memory (``train_side``: the record's)."""
    record = {TRAIN_SIDE_KEY: train_side} if train_side else {}
    return Predictor(network, ModelFile.unsaved(cfg, record), device, **options)


def smooth_image(shape, seed=0, sigma=2):
    rng = np.random.default_rng(seed)
    return (gaussian_filter(rng.random(shape), sigma) * 1000).astype(np.uint16)


class Pointwise(torch.nn.Module):
    """U-Net-shaped output whose object logit is 4 x (input channel ``source``), per pixel.

    Its objects map is a known function of each pixel alone, so any shift, flip or
    stitching error of the tiling shows up exactly.
    """

    def __init__(self, source: int = 0):
        super().__init__()
        self.source = source
        self.calls: list[int] = []

    def forward(self, x):
        self.calls.append(x.shape[0])
        z = 4 * x[:, self.source]
        return torch.stack([torch.zeros_like(z), z, -z], 1)


def pointwise_objects(normalized):
    """objects = softmax([0, 4x, -4x])[1] for a normalised image."""
    z = 4.0 * normalized.astype(np.float64)
    return np.exp(z) / (1 + np.exp(z) + np.exp(-z))


def tiny_cfg(**kw):
    return TrainConfig(**{**TINY_NETWORK, **kw})


@pytest.mark.parametrize("method", ["padding", "reflect", "resize"])
@pytest.mark.parametrize("shape", [(32, 32), (21, 27), (45, 19), (77, 101), (96, 64)])
def test_geometry_is_exact_for_every_trim_method(method, shape):
    image = smooth_image(shape)
    predictor = _predictor(
        Pointwise(), tiny_cfg(trim_method=method), "cpu", tile_size=32, tile_overlap=8
    )
    objects, boundaries = predictor.predict(image)
    assert objects.shape == boundaries.shape == shape
    assert objects.dtype == boundaries.dtype == np.float32
    expected = pointwise_objects(normalize_image(image))
    if method == "resize" and shape != (32, 32) and max(shape) <= 32:
        # resize brings a small image to 32 x 32 and back: interpolated, not exact
        assert np.abs(objects - expected).mean() < 0.01
    else:
        np.testing.assert_allclose(objects, expected, atol=1e-5)


def test_resize_model_scales_large_images_to_the_training_scale():
    # trained on images of median side 64 resized to 32: a 96 x 128 image is predicted at 48 x 64
    model = Pointwise()
    cfg = tiny_cfg(trim_method="resize")
    predictor = _predictor(model, cfg, "cpu", train_side=64, tile_size=32)
    assert predictor.scale == 0.5
    assert predictor.count_tiles((60, 64)) == 1  # 30 x 32 at the training scale: resized to 32
    assert predictor.count_tiles((96, 128)) == len(model.calls) + 6  # 2 x 3 tiles of 32 at 48 x 64
    image = smooth_image((96, 128), sigma=6)
    objects, _ = predictor.predict(image)
    assert objects.shape == (96, 128)
    assert sum(model.calls) == 6
    assert np.abs(objects - pointwise_objects(normalize_image(image))).mean() < 0.01


def test_stack_uses_neighbouring_slices_as_channels():
    # channels 3: channel c of slice z is slice clip(z - 1 + c); Pointwise(0) reads slice z - 1
    stack = np.stack([smooth_image((40, 50), seed) for seed in range(4)])
    cfg = tiny_cfg(channels=3, trim_method="reflect")
    objects, boundaries = _predictor(Pointwise(source=0), cfg, "cpu").predict(stack)
    assert objects.shape == boundaries.shape == (4, 40, 50)
    normalized = normalize_image(stack)
    for z, source in enumerate([0, 0, 1, 2]):
        np.testing.assert_allclose(objects[z], pointwise_objects(normalized[source]), atol=1e-5)


def test_progress_per_tile_batch_and_memory_bounded_by_it():
    model = Pointwise()
    predictor = _predictor(
        model, tiny_cfg(trim_method="reflect"), "cpu", tile_size=32, tile_overlap=8, tile_batch=3
    )
    stack = np.stack([smooth_image((64, 80), seed) for seed in range(2)])
    per_slice = predictor.count_tiles((64, 80))
    assert per_slice == 3 * 3  # rows start at 0, 24, 32; columns at 0, 24, 48
    generator = predictor.iter_predict(stack)
    records = []
    with pytest.raises(StopIteration) as finished:
        while True:
            records.append(next(generator))
            assert not torch.is_inference_mode_enabled()  # only around the forward pass
    objects, boundaries = finished.value.value
    assert objects.shape == (2, 64, 80)
    assert records[-1] == PredictProgress(18, 18)
    assert [r.done for r in records] == [3, 6, 9, 12, 15, 18]
    assert model.calls == [3] * 6
    seen = []
    predictor.predict(stack, seen.append)
    assert seen == records


def test_tiled_prediction_matches_whole_image_without_seams():
    torch.manual_seed(0)
    cfg = tiny_cfg(im_dim=64, trim_method="reflect", mixed_precision=False)
    model = build_model(cfg).eval()
    image = smooth_image((192, 256))
    with torch.inference_mode():
        whole = probabilities(cfg, model(torch.from_numpy(normalize_image(image))[None, None]))
    whole = np.stack([m[0].numpy() for m in whole])
    predictor = _predictor(model, cfg, "cpu", tile_size=64, tile_overlap=32)
    assert predictor.count_tiles(image.shape) > 20
    tiled = np.stack(predictor.predict(image))
    difference = tiled - whole
    assert np.abs(difference).max() < 0.05
    # no step at tile borders: neighbouring pixels differ no more than in the whole-image maps,
    # and the difference itself changes by < 0.02 from pixel to pixel
    for axis in (-1, -2):
        assert (
            np.abs(np.diff(tiled, axis=axis)).max()
            <= np.abs(np.diff(whole, axis=axis)).max() + 0.005
        )
        assert np.abs(np.diff(difference, axis=axis)).max() < 0.02


def test_tile_size_sets_the_tiles_of_large_images():
    # im_dim 32, pooling multiple 4: tile_size 50 -> tiles of 52; a slice that fits in fewer
    # pixels is one tile of its own (aligned) size; the maps do not depend on the tiling
    model = Pointwise()
    cfg = tiny_cfg(trim_method="reflect")
    predictor = _predictor(model, cfg, "cpu", tile_size=50, tile_overlap=8)
    assert predictor.tile == 52
    assert predictor.tile_side((40, 45)) == 48
    assert predictor.count_tiles((40, 45)) == 1
    assert predictor.count_tiles((100, 45)) == 3  # rows at 0, 44, 48 (step 44), one column
    image = smooth_image((100, 45))
    objects, _ = predictor.predict(image)
    assert sum(model.calls) == 3
    np.testing.assert_allclose(objects, pointwise_objects(normalize_image(image)), atol=1e-5)
    assert _predictor(model, cfg, "cpu", tile_size=1).tile == 32  # at least im_dim


SYMMETRIES = [(turns, mirror) for turns in range(4) for mirror in (False, True)]


def turn(array, turns, mirror):
    """Rotate the last two axes by 90 degrees ``turns`` times, then mirror left-right."""
    array = np.rot90(array, turns, axes=(-2, -1))
    return array[..., ::-1] if mirror else array


def unturn(array, turns, mirror):
    return np.rot90(array[..., ::-1] if mirror else array, -turns, axes=(-2, -1))


def test_tta_is_the_mean_of_the_eight_turned_predictions():
    torch.manual_seed(0)
    cfg = tiny_cfg(im_dim=64, trim_method="reflect", mixed_precision=False)
    model = build_model(cfg).eval()
    image = smooth_image((64, 64))  # one tile: turning the image turns the tile
    plain = _predictor(model, cfg, "cpu")
    tta = np.stack(_predictor(model, cfg, "cpu", tta=True).predict(image))
    views = [unturn(np.stack(plain.predict(turn(image, *s))), *s) for s in SYMMETRIES]
    np.testing.assert_allclose(tta, np.mean(views, axis=0), atol=1e-5)
    assert np.abs(tta - views[0]).max() > 1e-3  # the untrained network is not symmetric


@pytest.mark.parametrize("shape", [(150, 110), (21, 27)])
def test_tta_turns_every_tile_back(shape):
    # a per-pixel network gives the same maps for every view: TTA must change nothing
    image = smooth_image(shape)
    plain = _predictor(Pointwise(), tiny_cfg(trim_method="reflect"), "cpu", tile_overlap=8)
    tta = _predictor(Pointwise(), tiny_cfg(trim_method="reflect"), "cpu", tile_overlap=8, tta=True)
    assert plain.count_tiles(shape) == tta.count_tiles(shape)
    np.testing.assert_allclose(
        np.stack(tta.predict(image)), np.stack(plain.predict(image)), atol=1e-6
    )


@pytest.mark.skipif(mixed_precision_dtype("cpu") is None, reason="no native bfloat16 on this CPU")
def test_mixed_precision_prediction_is_close_to_float32():
    torch.manual_seed(0)
    cfg = tiny_cfg(im_dim=64, trim_method="reflect")
    model = build_model(cfg).eval()
    image = smooth_image((100, 140))
    fast = np.stack(_predictor(model, cfg, "cpu").predict(image))
    exact = np.stack(
        _predictor(model, dataclasses.replace(cfg, mixed_precision=False), "cpu").predict(image)
    )
    assert fast.dtype == np.float32
    assert 0 < np.abs(fast - exact).max() < 0.02


@pytest.mark.parametrize("arch, act", [("dcan", "sigmoid"), ("dcan", "tanh"), ("unet", "tanh")])
def test_probabilities_in_unit_range(arch, act):
    torch.manual_seed(1)
    cfg = tiny_cfg(architecture=arch, dcan_final_act=act, trim_method="reflect")
    predictor = _predictor(build_model(cfg), cfg, "cpu")
    image = smooth_image((50, 70)).astype(np.float64) - 500  # negative values are fine
    for maps in predictor.predict(image):
        assert maps.dtype == np.float32 and maps.shape == (50, 70)
        assert 0 <= maps.min() and maps.max() <= 1
        assert maps.std() > 0
    labels = predictor.instances(*predictor.predict(image))
    assert labels.dtype == np.int32 and labels.shape == (50, 70)


def test_bad_images():
    predictor = _predictor(Pointwise(), tiny_cfg(), "cpu")
    with pytest.raises(DataError, match="shape"):
        predictor.predict(np.zeros((2, 3, 4, 5)))
    with pytest.raises(DataError, match="dtype"):
        predictor.predict(np.zeros((8, 8), complex))


# --- model files ---------------------------------------------------------------------------------


def save_model(folder: Path, cfg: TrainConfig, model_name: str = "model.pt", seed: int = 0) -> Path:
    torch.manual_seed(seed)
    weights = folder / model_name
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(build_model(cfg).state_dict(), weights)
    return save_yaml(
        TrainConfig(**{**cfg.__dict__, "model": str(weights)}),
        weights.with_suffix(".yaml"),
        {"train_image_side": 64.0},
    )


def test_load_model_predicts_like_the_saved_network(tmp_path):
    cfg = tiny_cfg(trim_method="reflect", min_size=3)
    yaml_path = save_model(tmp_path / "models", cfg)
    predictor = load_model(yaml_path, "cpu", tile_overlap=8, tile_batch=2)
    assert predictor.config.min_size == 3 and predictor.config.im_dim == 32
    assert not predictor.model.training
    assert (predictor.overlap, predictor.tile_batch, predictor.scale) == (8, 2, 1.0)
    torch.manual_seed(0)
    reference = _predictor(build_model(cfg), cfg, "cpu", tile_overlap=8)
    image = smooth_image((40, 70))
    for got, want in zip(predictor.predict(image), reference.predict(image), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_moved_model_folder_still_loads(tmp_path):
    yaml_path = save_model(tmp_path / "models", tiny_cfg(trim_method="resize"))
    moved = shutil.move(tmp_path / "models", tmp_path / "elsewhere")
    predictor = load_model(Path(moved) / "model.yaml", "cpu")
    assert predictor.scale == 0.5  # im_dim 32 / recorded training side 64
    assert not yaml_path.exists()


def test_model_file_errors_name_the_files(tmp_path):
    with pytest.raises(ConfigError, match="missing.yaml"):
        load_model(tmp_path / "missing.yaml")
    yaml_path = save_model(tmp_path, tiny_cfg())
    (tmp_path / "model.pt").unlink()
    with pytest.raises(ConfigError, match=r"model\.pt.*model\.yaml.*does not exist"):
        load_model(yaml_path, "cpu")
    # weights of a 2-level U-Net under a yaml describing 3 levels
    torch.save(build_model(tiny_cfg()).state_dict(), tmp_path / "model.pt")
    save_yaml(tiny_cfg(unet_levels=3, model=str(tmp_path / "model.pt")), yaml_path)
    with pytest.raises(ConfigError, match=r"model\.pt.*do not fit the unet network.*model\.yaml"):
        load_model(yaml_path, "cpu")
    (tmp_path / "model.pt").write_text("not weights")
    with pytest.raises(ConfigError, match="Cannot read the weights"):
        load_model(yaml_path, "cpu")


def disks_image(shape=(64, 80), radius=4):
    from skimage.draw import disk

    image = np.zeros(shape, np.uint8)
    for y in range(10, shape[0] - 8, 16):
        for x in range(10, shape[1] - 8, 16):
            image[disk((y, x), radius, shape=shape)] = 200
    return image


def test_diameter_models_predict_at_the_trained_object_size():
    # the pointwise model finds the disks (diameter ~8) at any scale; trained at 16
    cfg = tiny_cfg(trim_method="reflect", object_diameter=16.0, obj_threshold=0.7, min_size=1)
    image = disks_image()
    given = _predictor(model := Pointwise(), cfg, "cpu")
    objects, _ = given.predict(image, diameter=8.0)
    assert objects.shape == image.shape
    assert sum(model.calls) == given.count_tiles(image.shape, 8.0) == given._count_at((128, 160), 1)

    estimated = _predictor(model := Pointwise(), cfg, "cpu")
    records = []
    objects_auto, _ = estimated.predict(image, records.append)
    factor = 16.0 / median_diameter(ndimage.label(image)[0], ignore_label=None)  # ~2.1
    first, second = estimated.count_tiles(image.shape), estimated._count_at(image.shape, factor)
    assert sum(model.calls) == first + second  # a pass at scale 1, then at ~2, estimate stable
    assert records[-1] == PredictProgress(first + second, first + second)
    assert records[0].total == first  # the second pass is added once planned
    assert np.abs(objects_auto - objects).mean() < 0.01  # scales 2.1 and 2: edges differ
    # the estimate does not depend on the model's own post-processing settings
    retuned = dataclasses.replace(cfg, obj_threshold=0.3, bnd_threshold=0.9, min_size=60)
    np.testing.assert_array_equal(
        _predictor(Pointwise(), retuned, "cpu").predict(image)[0], objects_auto
    )


def test_negative_diameter_is_refused():
    cfg = tiny_cfg(trim_method="reflect", object_diameter=16.0)
    predictor = _predictor(Pointwise(), cfg, "cpu")
    with pytest.raises(ConfigError, match="diameter"):
        predictor.predict(np.zeros((8, 8)), diameter=-3)
