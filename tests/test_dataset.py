"""SegmentationDataset: length, item layout, determinism, channels, crops, blobs."""

import dataclasses
import pickle

import numpy as np
import pytest

from napari_cellseg.data.dataset import SegmentationDataset
from napari_cellseg.data.io import read_folder
from napari_cellseg.data.normalize import normalize_image
from napari_cellseg.data.stacks import stacks_from_arrays
from napari_cellseg.data.synthetic import make_nuclei
from napari_cellseg.data.targets import make_targets, separation_mask
from napari_cellseg.data.trim import trim
from napari_cellseg.errors import DataError


def _same(a: dict, b: dict) -> bool:
    return all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def test_training_length_layout_and_targets(synthetic_dir, tiny_train_config):
    stacks = read_folder(f"{synthetic_dir}+{synthetic_dir.parent / 'multipage'}")  # 4 + 3 slices
    ds = SegmentationDataset(stacks, tiny_train_config, train=True)
    assert len(ds) == 7 * (1 + tiny_train_config.augments) == 14
    for index in (0, 8):  # as is, augmented copy
        item = ds[index]
        assert item["image"].shape == (1, 32, 32) and str(item["image"].dtype) == "torch.float32"
        for key in ("objects", "boundaries", "ignore", "separation"):
            assert item[key].shape == (1, 32, 32) and str(item[key].dtype) == "torch.float32"
            assert set(np.unique(item[key].numpy())) <= {0.0, 1.0}
        classes = item["classes"].numpy()
        assert classes.shape == (32, 32) and classes.dtype == np.int64
        expected = item["objects"][0].numpy() + 2 * item["boundaries"][0].numpy()
        np.testing.assert_array_equal(classes, expected)
    # an un-augmented item is the resized image and the targets of the resized labels
    labels = trim(stacks[1].labels[0], 32, "resize", order=0)[0]
    objects, boundaries, ignore = make_targets(labels)
    item = ds[1]
    np.testing.assert_array_equal(item["objects"][0].numpy(), objects)
    np.testing.assert_array_equal(item["boundaries"][0].numpy(), boundaries)
    np.testing.assert_array_equal(item["ignore"][0].numpy(), ignore)
    assert not item["separation"].any()  # separation_weight 0: not computed
    weighted = SegmentationDataset(
        stacks, dataclasses.replace(tiny_train_config, separation_weight=10.0), train=True
    )
    np.testing.assert_array_equal(weighted[1]["separation"][0].numpy(), separation_mask(labels))
    assert separation_mask(labels).any()
    assert ignore.any()  # the synthetic PNGs hold a blob
    image = trim(normalize_image(stacks[1].image), 32, "resize")[0]
    np.testing.assert_allclose(item["image"].numpy(), image, rtol=1e-6)
    assert len(SegmentationDataset(stacks, tiny_train_config, train=False)) == 7


def test_items_are_deterministic_per_seed_epoch_and_index(synthetic_dir, tiny_train_config):
    cfg = dataclasses.replace(tiny_train_config, enable_elastic=True)
    stacks = read_folder(synthetic_dir)
    ds, twin = (SegmentationDataset(stacks, cfg, train=True) for _ in range(2))
    assert _same(ds[5], twin[5])
    assert _same(ds[5], pickle.loads(pickle.dumps(ds))[5])  # as in a DataLoader worker
    assert not _same(ds[5], ds[6])
    ds.set_epoch(1)
    assert not _same(ds[5], twin[5])
    assert _same(ds[1], twin[1])  # un-augmented items do not change with the epoch
    other_seed = SegmentationDataset(stacks, dataclasses.replace(cfg, seed=7), train=True)
    assert not _same(other_seed[5], twin[5])


def test_channels_are_neighbouring_slices_clipped_at_the_ends(tiny_train_config):
    rng = np.random.default_rng(0)
    volume = rng.integers(0, 255, (4, 32, 32)).astype(np.uint8)
    labels = np.zeros((4, 32, 32), np.uint16)
    cfg = dataclasses.replace(tiny_train_config, channels=3)
    ds = SegmentationDataset(stacks_from_arrays([volume], [labels]), cfg, train=False)
    normalized = normalize_image(volume)  # 32x32 = im_dim: resize leaves it unchanged
    for z, expected in [(0, [0, 0, 1]), (2, [1, 2, 3]), (3, [2, 3, 3])]:
        np.testing.assert_array_equal(ds[z]["image"].numpy(), normalized[expected])
    single = SegmentationDataset(stacks_from_arrays([volume[0]], [labels[0]]), cfg, train=False)
    np.testing.assert_array_equal(single[0]["image"].numpy(), normalized[[0, 0, 0]])


@pytest.mark.parametrize("method", ["padding", "reflect"])
def test_larger_images_are_cropped(tiny_train_config, method):
    image, labels = make_nuclei((70, 40), seed=2)
    stacks = stacks_from_arrays([image], [labels])
    cfg = dataclasses.replace(tiny_train_config, trim_method=method)
    val = SegmentationDataset(stacks, cfg, train=False)
    assert len(val) == 3 * 2  # rows at 0, 19, 38; columns at 0, 8
    np.testing.assert_array_equal(val[0]["image"][0].numpy(), normalize_image(image)[:32, :32])
    np.testing.assert_array_equal(val[5]["image"][0].numpy(), normalize_image(image)[38:, 8:])

    train = SegmentationDataset(stacks, cfg, train=True)
    assert len(train) == 3 * 2  # 70 x 40 pixels are covered by 3 crops of 32 x 32; + augmented
    crops = set()
    for epoch in range(6):
        train.set_epoch(epoch)
        crop = train[0]["image"][0].numpy()
        assert crop.shape == (32, 32)
        crops.add(crop.tobytes())
    assert len(crops) > 1  # a new crop position each epoch
    assert len({train[i]["image"].numpy().tobytes() for i in range(3)}) == 3  # 3 positions


def test_small_images_are_padded_centred(tiny_train_config):
    image = np.full((20, 26), 50, np.uint8)
    image[0, 0] = 100
    labels = np.zeros((20, 26), np.uint16)
    labels[5:10, 5:10] = 2
    cfg = dataclasses.replace(tiny_train_config, trim_method="padding")
    item = SegmentationDataset(stacks_from_arrays([image], [labels]), cfg, train=False)[0]
    pad_top, pad_left = 6, 3
    assert item["image"][0, pad_top, pad_left] > 0 and item["image"][0, 0, 0] == 0
    assert item["objects"][0].sum() == 1 and item["objects"][0, pad_top + 7, pad_left + 7] == 1


def test_blob_handling_settings(tiny_train_config):
    image = np.full((32, 32), 10, np.uint8)
    image[8:16, 8:16] = 200
    labels = np.zeros((32, 32), np.uint16)
    labels[8:16, 8:16] = 1
    labels[20:28, 20:28] = 2
    stacks = stacks_from_arrays([image], [labels])

    item = SegmentationDataset(stacks, tiny_train_config, train=False)[0]
    assert item["ignore"].sum() == 64 and item["objects"][0, 8:16, 8:16].sum() == 0

    no_blobs = dataclasses.replace(tiny_train_config, blob_label=None)
    item = SegmentationDataset(stacks, no_blobs, train=False)[0]
    assert item["ignore"].sum() == 0 and item["objects"][0, 8:16, 8:16].sum() == 4 * 4

    removed = dataclasses.replace(tiny_train_config, remove_blobs=True)
    item = SegmentationDataset(stacks, removed, train=False)[0]
    assert item["ignore"].sum() == 0 and (item["image"][0, 8:16, 8:16] == 0).all()


def test_images_without_labels_are_refused(tiny_train_config):
    stacks = stacks_from_arrays([np.zeros((8, 8))], names=["lonely"])
    with pytest.raises(DataError, match="'lonely' has no labels"):
        SegmentationDataset(stacks, tiny_train_config, train=True)


def test_normalize_maps_percentiles_per_slice_and_survives_constant_slices():
    ramp = np.arange(1000, dtype=np.uint16).reshape(1, 25, 40)
    volume = np.concatenate([ramp, 2 * ramp, np.full((1, 25, 40), 7, np.uint16)])
    out = normalize_image(volume)
    assert out.dtype == np.float32 and out.shape == volume.shape
    # the 1st and 99.8th percentiles of 0..999 are 9.99 and 997.002
    np.testing.assert_allclose(out[0, 0, 0], -9.99 / 987.012, rtol=1e-5)
    np.testing.assert_allclose(out[0].reshape(-1)[[10, 997]], [0.01 / 987.012, 1.0], rtol=1e-4)
    np.testing.assert_allclose(out[1], out[0], rtol=1e-5)  # each slice on its own scale
    np.testing.assert_array_equal(out[2], 0)  # constant: zeros, no NaN
    np.testing.assert_array_equal(normalize_image(volume[0]), out[0])
