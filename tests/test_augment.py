"""Augmentation: seedable, labels stay integer and aligned with the image."""

import numpy as np
import pytest

from napari_cellseg.data.augment import augment_pair
from napari_cellseg.data.synthetic import make_nuclei


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    _, labels = make_nuclei((48, 48), seed=3)
    image = np.stack([labels > 0, labels % 2 == 0]).astype(np.float32)  # 2 channels
    return image, labels


@pytest.mark.parametrize("elastic", [False, True])
def test_same_generator_state_gives_same_result(pair, elastic):
    first = augment_pair(*pair, np.random.default_rng(5), elastic=elastic)
    second = augment_pair(*pair, np.random.default_rng(5), elastic=elastic)
    other = augment_pair(*pair, np.random.default_rng(6), elastic=elastic)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[1], other[1])


@pytest.mark.parametrize("elastic", [False, True])
def test_labels_stay_integer_and_aligned(pair, elastic):
    image, labels = pair
    for seed in range(5):
        new_image, new_labels = augment_pair(
            image, labels, np.random.default_rng(seed), elastic=elastic
        )
        assert new_image.shape == image.shape and new_image.dtype == np.float32
        assert new_labels.shape == labels.shape and new_labels.dtype == labels.dtype
        assert set(np.unique(new_labels)) <= set(np.unique(labels))
        # channel 0 was the foreground mask: the warped image still marks the warped labels
        agreement = ((new_image[0] > 0.5) == (new_labels > 0)).mean()
        assert agreement > 0.95


def test_non_square_images_keep_their_shape():
    labels = np.zeros((20, 36), np.int32)
    labels[5:15, 5:30] = 4
    image = labels[np.newaxis].astype(np.float32)
    for seed in range(8):
        new_image, new_labels = augment_pair(image, labels, np.random.default_rng(seed))
        assert new_image.shape == (1, 20, 36) and new_labels.shape == (20, 36)


def test_gamma_is_one_power_of_the_warped_intensities_and_keeps_signs():
    labels = np.zeros((16, 16), np.int32)
    image = np.linspace(-0.5, 2.0, 256, dtype=np.float32).reshape(1, 16, 16)
    plain, plain_labels = augment_pair(image, labels, np.random.default_rng(1))
    powered, powered_labels = augment_pair(image, labels, np.random.default_rng(1), gamma=True)
    np.testing.assert_array_equal(plain_labels, powered_labels)  # geometry drawn first, unchanged
    assert np.array_equal(np.sign(plain), np.sign(powered))
    far_from_0_and_1 = np.abs(np.log(np.abs(plain) + 1e-9)) > 0.2
    powers = np.log(np.abs(powered[far_from_0_and_1])) / np.log(np.abs(plain[far_from_0_and_1]))
    assert 0.6 <= powers.min() and powers.max() <= 1.6
    np.testing.assert_allclose(powers, powers[0], rtol=1e-3, atol=1e-3)  # one power per draw
    assert abs(powers[0] - 1) > 1e-3
