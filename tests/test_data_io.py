"""Reading data set folders and napari layers; every user error names the file and the fix."""

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from napari_cellseg.data.io import (
    DataFile,
    read_channels,
    read_folder,
    read_image,
    write_pair,
    write_tiff,
)
from napari_cellseg.data.stacks import drop_unlabelled_slices, split_stacks, stacks_from_arrays
from napari_cellseg.data.synthetic import make_nuclei
from napari_cellseg.errors import DataError


def _dataset(root: Path, pairs: dict[str, tuple[np.ndarray, np.ndarray]], ext=".png") -> Path:
    """Write ``{name: (image, labels)}`` as a data set folder (TIFF for 3D arrays)."""
    for kind in ("images", "labels"):
        (root / kind).mkdir(parents=True, exist_ok=True)
    for name, (image, labels) in pairs.items():
        for kind, array in (("images", image), ("labels", labels)):
            path = root / kind / f"{name}{ext}"
            if ext == ".png":
                iio.imwrite(path, array)
            else:
                tifffile.imwrite(path, array, photometric="minisblack")
    return root


def _pair(shape=(24, 30), seed=0):
    return make_nuclei(shape, seed=seed)


def test_reads_png_pairs_and_multipage_tiff_joined_with_plus(synthetic_dir):
    stacks = read_folder(f"{synthetic_dir}+{synthetic_dir.parent / 'multipage'}")
    assert [s.name for s in stacks] == [f"synthetic_00{i}" for i in range(4)] + ["synthetic"]
    assert [s.image.shape for s in stacks] == [(1, 96, 96)] * 4 + [(3, 64, 64)]
    image, labels = make_nuclei((96, 96), blobs=1, seed=(0, 2))
    np.testing.assert_array_equal(stacks[2].image[0], image)
    np.testing.assert_array_equal(stacks[2].labels[0], labels)
    assert stacks[2].labels.dtype == np.uint16
    image, labels = make_nuclei((64, 64), seed=(1, 1))  # page 1 pairs with page 1
    np.testing.assert_array_equal(stacks[4].image[1], image)
    np.testing.assert_array_equal(stacks[4].labels[1], labels)


def test_pairs_by_name_across_extensions(tmp_path):
    image, labels = _pair()
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    iio.imwrite(tmp_path / "images" / "a.png", image)
    tifffile.imwrite(tmp_path / "labels" / "a.tiff", labels)
    (tmp_path / "images" / ".DS_Store").write_text("ignored")
    (stack,) = read_folder(tmp_path)
    np.testing.assert_array_equal(stack.labels[0], labels)


def test_rgb_and_rgba_png_become_luminance(tmp_path):
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 100, 200, 50
    iio.imwrite(tmp_path / "rgb.png", rgb)
    iio.imwrite(tmp_path / "rgba.png", np.concatenate([rgb, np.full((4, 5, 1), 9, np.uint8)], -1))
    # 0.2125 * 100 + 0.7154 * 200 + 0.0721 * 50 = 167.935
    for name in ("rgb.png", "rgba.png"):
        gray = read_image(tmp_path / name)
        assert gray.shape == (1, 4, 5) and gray.dtype == np.uint8
        assert (gray == 168).all()


def test_prediction_folder_without_labels(tmp_path):
    image, _ = _pair()
    (tmp_path / "images").mkdir()
    iio.imwrite(tmp_path / "images" / "a.png", image)
    (stack,) = read_folder(tmp_path, labels=False)
    assert stack.labels is None and stack.image.shape == (1, 24, 30)
    with pytest.raises(DataError, match="no 'labels' folder"):
        read_folder(tmp_path)


def test_gray_label_saved_as_rgb_is_accepted_colour_label_is_not(tmp_path):
    image, labels = _pair()
    gray_rgb = np.repeat((labels % 200).astype(np.uint8)[..., None], 3, -1)
    root = _dataset(tmp_path, {"a": (image, gray_rgb)})
    assert read_folder(root)[0].labels.shape == (1, 24, 30)
    gray_rgb[0, 0] = (1, 2, 3)
    iio.imwrite(root / "labels" / "a.png", gray_rgb)
    with pytest.raises(DataError, match=r"'.*labels/a\.png' is a colour image.*single-channel"):
        read_folder(root)


def _bad_labels_cases():
    image, labels = _pair()
    stack_image = np.stack([image, image])
    return {
        "missing_partner": ({"a": (image, labels)}, "b_only_image", r"images/b\.png' has no label"),
        "float": ({"a": (image, labels.astype(np.float32))}, None, "dtype float32; convert"),
        "negative": ({"a": (image, labels.astype(np.int16) - 5)}, None, "negative values"),
        "shape": ({"a": (image, labels[:20])}, None, "24x30 but the labels are 20x30"),
        "pages": ({"a": (stack_image, labels[None])}, None, "2 pages but the labels have 1"),
    }


@pytest.mark.parametrize("case", list(_bad_labels_cases()))
def test_label_errors_name_the_file_and_the_fix(tmp_path, case):
    pairs, extra, message = _bad_labels_cases()[case]
    root = _dataset(tmp_path, pairs, ext=".tif")
    if extra:
        iio.imwrite(root / "images" / "b.png", pairs["a"][0])
    with pytest.raises(DataError, match=message) as error:
        read_folder(root)
    assert str(root) in str(error.value)


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match=r"'.*nowhere' does not exist"):
        read_folder(tmp_path / "nowhere")
    with pytest.raises(DataError, match="has no 'images' folder"):
        read_folder(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=r"images' holds no PNG or TIFF"):
        read_folder(tmp_path)
    with pytest.raises(DataError, match="No data folder given"):
        read_folder(" + ")
    with pytest.raises(DataError, match="is a file; give a data folder"):
        read_folder(tmp_path / "images" / "notes.txt")
    with pytest.raises(DataError, match=r"'.*nowhere' does not exist"):
        read_folder(tmp_path / "nowhere", labels=False)
    with pytest.raises(DataError, match="no 'images' folder and no PNG or TIFF images"):
        read_folder(tmp_path / "labels", labels=False)


def test_unreadable_and_duplicate_files_are_named(tmp_path):
    root = _dataset(tmp_path, {"a": _pair()})
    (root / "images" / "broken.png").write_bytes(b"not a png")
    iio.imwrite(root / "labels" / "broken.png", _pair()[1])
    with pytest.raises(DataError, match=r"Cannot read '.*images/broken\.png'.*valid PNG or TIFF"):
        read_folder(root)
    (root / "images" / "broken.png").unlink()
    tifffile.imwrite(root / "images" / "a.tif", _pair()[0])
    with pytest.raises(DataError, match=r"a\.png' and '.*a\.tif' have the same name"):
        read_folder(root)


HYPERSTACK = np.arange(3 * 2 * 4 * 5, dtype=np.uint16).reshape(3, 2, 4, 5)  # Z, C, Y, X


@pytest.mark.parametrize(
    "name, options",
    [("fiji.tif", {"imagej": True}), ("stack.ome.tif", {"ome": True})],
)
def test_multichannel_tiffs_are_read_one_channel_at_a_time(tmp_path, name, options):
    path = tmp_path / name
    tifffile.imwrite(path, HYPERSTACK, metadata={"axes": "ZCYX"}, **options)
    np.testing.assert_array_equal(read_channels(path), HYPERSTACK)
    with pytest.raises(DataError, match=r"has 2 channels .*--channel 1-2.*Split Channels"):
        read_image(path)
    file = DataFile("x", path, None)
    np.testing.assert_array_equal(file.read(channel=2).image, HYPERSTACK[:, 1])
    with pytest.raises(DataError, match="has 2 channel.*choose --channel from 1 to 2, not 3"):
        file.read(channel=3)


def test_single_channel_images_are_their_one_channel(tmp_path):
    tifffile.imwrite(tmp_path / "plain.tif", HYPERSTACK[:, 0], photometric="minisblack")
    iio.imwrite(tmp_path / "gray.png", HYPERSTACK[0, 0].astype(np.uint8))
    assert read_channels(tmp_path / "plain.tif").shape == (3, 1, 4, 5)
    assert read_channels(tmp_path / "gray.png").shape == (1, 1, 4, 5)
    plain = DataFile("plain", tmp_path / "plain.tif", None)
    np.testing.assert_array_equal(plain.read(channel=1).image, plain.read().image)
    tifffile.imwrite(tmp_path / "t.tif", np.zeros((2, 3, 2, 4, 5), np.uint8), imagej=True,
                     metadata={"axes": "TZCYX"})  # fmt: skip
    assert read_channels(tmp_path / "t.tif").shape == (6, 2, 4, 5)  # time points x slices


def test_stacks_from_arrays_2d_and_3d():
    image, labels = _pair()
    stacks = stacks_from_arrays(
        [image, np.stack([image, image, image])],
        [labels, np.stack([labels] * 3)],
        names=["flat", "volume"],
    )
    assert [(s.name, s.image.shape, s.labels.shape) for s in stacks] == [
        ("flat", (1, 24, 30), (1, 24, 30)),
        ("volume", (3, 24, 30), (3, 24, 30)),
    ]
    (unlabelled,) = stacks_from_arrays(image)
    assert unlabelled.name == "image 0" and unlabelled.labels is None


def test_stacks_from_arrays_errors_name_the_layer():
    image, labels = _pair()
    with pytest.raises(DataError, match="Layer 'cells' and its labels.*24x30 but the labels are"):
        stacks_from_arrays([image], [labels[:, :10]], names=["cells"])
    with pytest.raises(DataError, match="Layer 'cells' and its labels: .*dtype float64"):
        stacks_from_arrays([image], [labels.astype(float)], names=["cells"])
    with pytest.raises(DataError, match="Layer 'rgb' has shape"):
        stacks_from_arrays([np.zeros((2, 3, 4, 3))], names=["rgb"])
    with pytest.raises(DataError, match="2 images, 1 label layers"):
        stacks_from_arrays([image, image], [labels])


def test_split_stacks_by_slice_is_seeded_and_disjoint():
    image, labels = _pair()
    volume = np.stack([image + i for i in range(8)])  # slice i is marked by +i
    stacks = stacks_from_arrays([volume, image + 100], [np.stack([labels] * 8), labels])
    train, val = split_stacks(stacks, 0.25, seed=3)
    firsts = sorted(
        int(s.image[z, 0, 0] - image[0, 0]) for s in train + val for z in range(len(s.image))
    )
    assert firsts == [*range(8), 100]
    assert sum(len(s.image) for s in val) == round(0.25 * 9) == 2
    again = split_stacks(stacks, 0.25, seed=3)[1]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(val, again, strict=True))
    assert split_stacks(stacks, 0.0, seed=3) == (stacks, [])


def test_unlabelled_slices_of_a_partly_annotated_stack_are_left_out():
    image, labels = _pair()
    volume = np.stack([image + i for i in range(5)])  # slice i is marked by +i
    partly = np.stack([labels if i in (1, 3) else 0 * labels for i in range(5)])
    stacks = stacks_from_arrays(
        [volume, volume, image],
        [partly, np.stack([labels] * 5), 0 * labels],
        names=["partly", "whole", "empty"],
    )
    kept, notes = drop_unlabelled_slices(stacks)
    assert (kept[0].image[:, 0, 0] - image[0, 0]).tolist() == [1, 3]
    assert np.array_equal(kept[0].labels, partly[[1, 3]]) and kept[0].name == "partly"
    assert kept[1:] == stacks[1:]  # every slice labelled, or none: kept whole
    assert notes == ["'partly': 2 of 5 slices hold labels; the others are left out."]


def test_a_single_image_is_split_in_space_along_its_longer_side():
    image = np.arange(10 * 40, dtype=np.uint16).reshape(10, 40)
    labels = (image % 7).astype(np.uint16)
    train, val = split_stacks(stacks_from_arrays([image], [labels]), 0.25, seed=0)
    assert train[0].image.shape == (1, 10, 30) and val[0].image.shape == (1, 10, 10)
    np.testing.assert_array_equal(np.concatenate([train[0].image, val[0].image], -1)[0], image)
    np.testing.assert_array_equal(val[0].labels[0], labels[:, 30:])


def test_write_tiff_round_trip_keeps_three_pages_gray(tmp_path):
    array = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    path = write_tiff(tmp_path / "sub" / "out.tif", array)
    np.testing.assert_array_equal(read_image(path), array)


def test_reads_the_real_validation_data(shared_data):
    stacks = {s.name: s for s in read_folder(shared_data / "val")}
    assert len(stacks) == 26
    stack = stacks["stack256"]
    assert stack.image.shape == stack.labels.shape == (35, 256, 256)
    assert stack.image.dtype == np.uint8 and stack.labels.dtype == np.uint16
    assert all(page.max() >= 2 for page in stack.labels)  # every page labelled
    png = stacks["0402a81e75262469925ea893b6706183832e85324f7b1e08e634129f5d522cdd"]
    assert png.image.shape == png.labels.shape == (1, 260, 347)
    assert png.labels.max() >= 2 and not (png.labels == 1).any()  # val/ has no blobs


def test_a_pair_added_to_a_data_set_never_replaces_another_image(tmp_path):
    image, labels = _pair()
    first = write_pair(tmp_path, "cells/1 (copy)", image, labels)
    assert first == tmp_path / "labels" / "cells_1_copy.tif"
    assert write_pair(tmp_path, "cells/1 (copy)", image, labels + 1) == first  # same image
    other = write_pair(tmp_path, "cells/1 (copy)", image + 1, labels)
    assert other == tmp_path / "labels" / "cells_1_copy-2.tif"
    stacks = {stack.name: stack for stack in read_folder(tmp_path)}
    assert np.array_equal(stacks["cells_1_copy"].labels[0], labels + 1)
    assert np.array_equal(stacks["cells_1_copy-2"].image[0], image + 1)
