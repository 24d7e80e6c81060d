"""The predict, evaluate and tune-postprocess commands end to end with a tiny trained model."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml
from scipy.ndimage import binary_fill_holes

from napari_cellseg.analysis.matching import METRICS, THRESHOLDS
from napari_cellseg.cli import evaluate, predict
from napari_cellseg.config import TrainConfig
from napari_cellseg.data.io import read_image, write_tiff
from napari_cellseg.data.synthetic import make_nuclei_stack, write_dataset
from napari_cellseg.inference.predictor import load_model
from napari_cellseg.pipeline import ImageStarted, predict_folder
from napari_cellseg.segmentation.settings import SEGMENT_KEYS, SegmentationSettings
from napari_cellseg.segmentation.stitching import stitch_slices
from napari_cellseg.training.loop import run_training


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_settings):
    """A U-Net trained for 2 epochs on synthetic nuclei, and a test folder (PNGs + a stack)."""
    root = tmp_path_factory.mktemp("cli")
    train_dir = write_dataset(root / "train", 4, shape=(64, 64), blobs=1, seed=0)
    test_png = write_dataset(root / "test", 2, shape=(75, 101), blobs=1, seed=5)
    test_stack = write_dataset(root / "stack", 3, shape=(40, 48), seed=6, multipage=True)
    val = write_dataset(root / "val", 3, shape=(224, 224), seed=100)  # 119 objects to tune on
    cfg = TrainConfig(
        **tiny_settings,
        epochs=2,
        augments=1,
        trim_method="reflect",
        train_data=str(train_dir),
        model=str(root / "model" / "nuclei.pt"),
    )
    run_training(cfg)
    return {
        "yaml": root / "model" / "nuclei.yaml",
        "test": f"{test_png}+{test_stack}",
        "png": test_png,
        "stack": test_stack,
        "val": val,
        "root": root,
    }


def test_predict_writes_every_output_and_prints_scores(trained, tmp_path, capsys):
    out = tmp_path / "out"
    code = predict.main(
        [
            "--config",
            str(trained["yaml"]),
            "--test_data",
            trained["test"],
            "--output",
            str(out),
            "--plot",
            "--architecture",
            "dcan",
            "--tile_overlap",
            "8",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "--architecture is ignored" in captured.err
    assert "scores of the 5 labelled images" in captured.out
    assert "mean AP (IoU 0.5..0.95)" in captured.out
    for name in ("synthetic_000", "synthetic_001"):
        objects = tifffile.imread(out / f"{name}_objects.tif")
        boundaries = tifffile.imread(out / f"{name}_boundaries.tif")
        labels = tifffile.imread(out / f"{name}_labels.tif")
        assert objects.shape == boundaries.shape == labels.shape == (75, 101)
        assert objects.dtype == boundaries.dtype == np.float32 and labels.dtype == np.int32
        assert 0 <= objects.min() and objects.max() <= 1 and 0 <= boundaries.min() <= 1
        assert (out / f"{name}.png").stat().st_size > 1000
    stack_labels = tifffile.imread(out / "synthetic_labels.tif")
    assert stack_labels.shape == (3, 40, 48) and stack_labels.dtype == np.int32
    assert tifffile.imread(out / "synthetic_objects.tif").shape == (3, 40, 48)
    assert sorted(p.name for p in out.glob("synthetic_p*.png")) == [
        "synthetic_p000.png",
        "synthetic_p001.png",
        "synthetic_p002.png",
    ]
    assert len(list(out.iterdir())) == 3 * 3 + 2 + 3  # tiffs, 2 PNG-image figures, 3 pages


def test_evaluate_json_shape_and_both_modes_agree(trained, tmp_path):
    out = tmp_path / "pred"
    assert (
        predict.main(
            [
                "--config",
                str(trained["yaml"]),
                "--test_data",
                str(trained["png"]),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    from_files = tmp_path / "files.json"
    assert (
        evaluate.main(["--gt", str(trained["png"]), "--pred", str(out), "--json", str(from_files)])
        == 0
    )
    result = json.loads(from_files.read_text())
    keys = [f"{t:g}" for t in THRESHOLDS]
    assert list(result) == ["thresholds", "mean_ap", "images"]
    assert list(result["thresholds"]) == keys
    assert all(list(v) == list(METRICS) for v in result["thresholds"].values())
    assert [im["name"] for im in result["images"]] == ["synthetic_000", "synthetic_001"]
    assert all(list(im) == ["name", "thresholds"] for im in result["images"])
    assert result["mean_ap"] == pytest.approx(
        np.mean([v["ap"] for v in result["thresholds"].values()])
    )
    pooled = result["thresholds"]["0.5"]
    per_image = [im["thresholds"]["0.5"] for im in result["images"]]
    assert pooled["tp"] == sum(s["tp"] for s in per_image)
    n_pred = sum(int(read_image(out / f"synthetic_00{i}_labels.tif").max()) for i in range(2))
    assert pooled["tp"] + pooled["fp"] <= n_pred  # predictions inside blobs are not counted

    predicted = tmp_path / "predicted.json"
    assert (
        evaluate.main(
            [
                "--config",
                str(trained["yaml"]),
                "--test_data",
                str(trained["png"]),
                "--json",
                str(predicted),
            ]
        )
        == 0
    )
    assert json.loads(predicted.read_text()) == result


def test_evaluate_a_perfect_prediction(trained, tmp_path, capsys):
    # the ground truth scored against itself: every object matched at every threshold
    gt = trained["stack"] / "labels"
    assert (
        evaluate.main(["--gt", str(trained["stack"]), "--pred", str(gt), "--blob_label", "none"])
        == 0
    )
    table = capsys.readouterr().out
    assert table.splitlines()[-1] == "mean AP (IoU 0.5..0.95): 1.000"


def test_evaluate_volumes_scores_a_z_stack_in_3d(trained, tmp_path, capsys):
    _, truth = make_nuclei_stack((10, 64, 64), seed=3)
    pieces = np.zeros(truth.shape, np.int32)  # each slice's objects apart, as predicted
    for z, page in enumerate(truth):
        pieces[z] = np.where(page > 0, page.astype(np.int32) + 1000 * z, 0)
    for name, labels in (
        ("gt", truth),
        ("pieces", pieces),
        ("stitched", stitch_slices(pieces, 0.5)),
    ):
        write_tiff(tmp_path / name / "cells.tif", labels)
    flags = ["--blob_label", "none", "--json", str(tmp_path / "s.json")]

    def mean_ap(pred: str, *more: str) -> float:
        argv = ["--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / pred), *flags, *more]
        assert evaluate.main(argv) == 0
        return json.loads((tmp_path / "s.json").read_text())["mean_ap"]

    assert mean_ap("pieces") == mean_ap("stitched") == 1.0  # page by page: all the same
    assert mean_ap("stitched", "--volumes") == 1.0  # the nuclei in 3D
    assert mean_ap("pieces", "--volumes") < 0.2  # pieces of nuclei are not nuclei
    argv = ["--config", str(trained["yaml"]), "--test_data", trained["test"], "--volumes"]
    assert evaluate.main(argv) == 2
    assert "add --stitch_threshold" in capsys.readouterr().err


def copy_model(trained, folder: Path) -> Path:
    """A copy of the trained model (weights and yaml) in ``folder``; returns its yaml."""
    folder.mkdir()
    for suffix in (".pt", ".yaml"):
        (folder / f"nuclei{suffix}").write_bytes(trained["yaml"].with_suffix(suffix).read_bytes())
    return folder / "nuclei.yaml"


def test_tune_postprocess_updates_only_the_thresholds(trained, tmp_path, capsys):
    yaml_path = copy_model(trained, tmp_path / "model")
    before = yaml.safe_load(yaml_path.read_text())
    code = evaluate.tune_postprocess_main(
        ["--config", str(yaml_path), "--val_data", str(trained["val"])]
    )
    assert code == 0
    after = yaml.safe_load(yaml_path.read_text())
    assert {k: v for k, v in after.items() if k not in (*SEGMENT_KEYS, "record")} == {
        k: v for k, v in before.items() if k not in (*SEGMENT_KEYS, "record")
    }
    record = after["record"]
    assert {k: v for k, v in record.items() if k != "postprocess"} == before["record"]
    assert record["postprocess"]["data"] == str(trained["val"])
    lines = capsys.readouterr().out.splitlines()
    old, new = (float(line.split(": ")[1].split()[0]) for line in lines[:2])
    assert new == pytest.approx(record["postprocess"]["mean_ap"], abs=5e-4)
    assert new >= old


def test_tune_postprocess_tta_tunes_the_settings_tta_predictions_use(trained, tmp_path, capsys):
    yaml_path = copy_model(trained, tmp_path / "model")
    before = yaml.safe_load(yaml_path.read_text())
    argv = ["--config", str(yaml_path), "--val_data", str(trained["val"]), "--tta"]
    assert evaluate.tune_postprocess_main(argv) == 0
    after = yaml.safe_load(yaml_path.read_text())
    assert SegmentationSettings.of(after) == SegmentationSettings.of(before)
    tuned = after["tta_segmentation"]
    assert list(tuned) == list(SEGMENT_KEYS)
    assert after["record"]["postprocess_tta"]["data"] == str(trained["val"])
    assert "postprocess" not in after["record"]
    assert "mean AP(0.5:0.95) of test-time augmented maps" in capsys.readouterr().out
    assert load_model(yaml_path, tta=True).segmentation() == SegmentationSettings.of(tuned)
    assert load_model(yaml_path).segmentation() == SegmentationSettings.of(before)


def test_predict_with_tta_segments_with_the_settings_tuned_for_it(trained, tmp_path, capsys):
    yaml_path = copy_model(trained, tmp_path / "model")
    argv = ["--config", str(yaml_path), "--test_data", str(trained["png"]), "--tta"]
    assert predict.main([*argv, "--output", str(tmp_path / "plain")]) == 0
    assert "no segmentation settings tuned for test-time augmentation" in capsys.readouterr().err
    content = yaml.safe_load(yaml_path.read_text())
    yaml_path.write_text(yaml.safe_dump({**content, "tta_segmentation": {"min_size": 10**6}}))
    assert predict.main([*argv, "--output", str(tmp_path / "tta")]) == 0
    assert "no segmentation settings" not in capsys.readouterr().err
    files = sorted((tmp_path / "plain").glob("*_labels.tif"))
    assert len(files) == 2
    for file in files:
        assert tifffile.imread(file).max() > 0
        assert tifffile.imread(tmp_path / "tta" / file.name).max() == 0  # none that large


def test_predict_takes_a_folder_of_images_or_one_image(trained, tmp_path):
    images = trained["png"] / "images"
    one = sorted(images.iterdir())[0]
    for out, data in (("a", trained["png"]), ("b", images), ("c", one)):
        argv = ["--config", str(trained["yaml"]), "--test_data", str(data)]
        assert predict.main([*argv, "--output", str(tmp_path / out)]) == 0
    expected = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(expected) == 6 and sorted(p.name for p in (tmp_path / "b").iterdir()) == expected
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [
        f"{one.stem}_{kind}.tif" for kind in ("boundaries", "labels", "objects")
    ]
    for name in expected:
        assert np.array_equal(read_image(tmp_path / "a" / name), read_image(tmp_path / "b" / name))


def test_predict_reads_one_file_at_a_time(trained, tmp_path):
    import shutil

    from napari_cellseg.config import PredictConfig
    from napari_cellseg.errors import DataError

    folder = tmp_path / "images"
    shutil.copytree(trained["png"] / "images", folder)
    last = sorted(folder.iterdir())[-1]
    last.write_bytes(b"not an image")  # read only when its turn comes
    results = predict_folder(PredictConfig(config=str(trained["yaml"]), test_data=str(folder)))
    assert next(results).labels.shape == (1, 75, 101)
    with pytest.raises(DataError, match=f"Cannot read '.*{last.name}'"):
        next(results)


def test_pipeline_reports_files_and_tiles_and_stops_when_cancelled(trained):
    import threading

    from napari_cellseg.config import PredictConfig
    from napari_cellseg.inference.predictor import PredictProgress

    settings = PredictConfig(config=str(trained["yaml"]), test_data=str(trained["png"]))
    records = []
    results = list(predict_folder(settings, progress=records.append))
    started = [r for r in records if isinstance(r, ImageStarted)]
    assert [(r.index, r.total) for r in started] == [(0, 2), (1, 2)]
    assert [r.name for r in started] == [r.stack.name for r in results]
    tiles = [r for r in records if isinstance(r, PredictProgress)]
    assert tiles and all(r.done <= r.total for r in tiles)

    cancel = threading.Event()

    def cancel_at_first_tile(record) -> None:
        if isinstance(record, PredictProgress):
            cancel.set()

    stopped = predict_folder(settings, progress=cancel_at_first_tile, cancel=cancel)
    assert list(stopped) == []  # stopped inside the first image: nothing half-done comes out


def test_pipeline_segments_with_the_settings_it_is_given(trained):
    from napari_cellseg.config import PredictConfig
    from napari_cellseg.model_file import read_model

    settings = PredictConfig(config=str(trained["yaml"]), test_data=str(trained["png"]))
    model_settings = read_model(trained["yaml"]).segmentation()
    plain = list(predict_folder(settings))
    nothing = model_settings.replace(min_size=10**6)  # every object is too small
    assert all(r.labels.max() > 0 for r in plain)
    assert all(r.labels.max() == 0 for r in predict_folder(settings, segmentation=nothing))


def test_predict_refuses_to_write_among_its_images(trained, capsys):
    images = str(trained["png"] / "images")
    argv = ["--config", str(trained["yaml"]), "--test_data", images, "--output", images]
    assert predict.main(argv) != 0
    assert "is the folder the images are read from" in capsys.readouterr().err
    assert not list((trained["png"] / "images").glob("*_labels.tif"))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--test_data", "x"], "Setting 'config' is empty"),
        (["--config", "nowhere.yaml", "--test_data", "x"], "'nowhere.yaml' does not exist"),
    ],
)
def test_predict_user_errors_exit_cleanly(argv, message, capsys):
    assert predict.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("flag", ["--plot", "--measure", "--rois"])
def test_plot_and_measure_need_output(trained, capsys, flag):
    assert (
        predict.main(["--config", str(trained["yaml"]), "--test_data", trained["test"], flag]) == 2
    )
    assert "--output" in capsys.readouterr().err


def test_measure_writes_one_row_per_object(trained, tmp_path):
    out = tmp_path / "out"
    argv = ["--config", str(trained["yaml"]), "--test_data", trained["test"], "--output", str(out)]
    assert predict.main([*argv, "--measure"]) == 0
    image = read_image(next((trained["png"] / "images").glob("synthetic_000.*")))[0].astype(float)
    labels = tifffile.imread(out / "synthetic_000_labels.tif")
    table = np.genfromtxt(out / "synthetic_000_measurements.csv", delimiter=",", names=True)
    assert table.dtype.names[:5] == ("label", "area", "centroid_y", "centroid_x", "mean_intensity")
    assert "area_um2" not in table.dtype.names  # PNGs hold no pixel size
    assert table["label"].tolist() == sorted(set(np.unique(labels)) - {0})
    for row in table:
        mask = labels == row["label"]
        assert row["area"] == mask.sum()
        assert row["centroid_y"] == pytest.approx(np.nonzero(mask)[0].mean(), rel=1e-5)
        assert row["mean_intensity"] == pytest.approx(image[mask].mean(), rel=1e-5)
    stack = np.genfromtxt(out / "synthetic_measurements.csv", delimiter=",", names=True)
    stack_labels = tifffile.imread(out / "synthetic_labels.tif")
    assert stack.dtype.names[:2] == ("label", "page")
    assert [(page == stack["page"]).sum() for page in range(3)] == [
        len(set(np.unique(p)) - {0}) for p in stack_labels
    ]
    with open(out / "summary.csv", newline="") as file:
        summary = list(csv.DictReader(file))
    pngs = [f"synthetic_{i:03d}" for i in range(2)]
    expected = [(name, "", tifffile.imread(out / f"{name}_labels.tif")) for name in pngs]
    expected += [("synthetic", str(z), page) for z, page in enumerate(stack_labels)]
    assert [(row["image"], row["page"]) for row in summary] == [e[:2] for e in expected]
    for row, (_, _, labels) in zip(summary, expected, strict=True):
        values = set(np.unique(labels)) - {0}
        areas = [np.sum(labels == v) for v in values]
        assert int(row["objects"]) == len(values) > 0
        assert float(row["median_area"]) == pytest.approx(np.median(areas), rel=1e-5)
        border = np.ones(labels.shape, bool)
        border[1:-1, 1:-1] = False
        assert int(row["touching_edge"]) == len(set(np.unique(labels[border])) - {0})


def test_a_fiji_hyperstack_is_predicted_on_its_channel_and_measured_in_all(
    trained, tmp_path, capsys
):
    image = read_image(next((trained["png"] / "images").glob("synthetic_000.*")))[0]
    reporter = (255 - image).astype(np.uint8)
    folder = tmp_path / "hyper"
    folder.mkdir()
    channels = np.stack([reporter, image])[None]  # the nuclei in channel 2
    tifffile.imwrite(folder / "two.tif", channels, imagej=True, metadata={"axes": "ZCYX"})
    argv = ["--config", str(trained["yaml"]), "--test_data", str(folder), "--measure"]
    assert predict.main([*argv, "--output", str(tmp_path / "x")]) == 2
    assert "has 2 channels" in capsys.readouterr().err
    assert predict.main([*argv, "--output", str(tmp_path / "c2"), "--channel", "2"]) == 0
    alone = trained["png"] / "images" / "synthetic_000.png"
    assert predict.main([*argv[:3], str(alone), "--output", str(tmp_path / "png")]) == 0
    labels = tifffile.imread(tmp_path / "c2" / "two_labels.tif")
    alone_labels = tifffile.imread(tmp_path / "png" / "synthetic_000_labels.tif")
    np.testing.assert_array_equal(labels, alone_labels)  # channel 2 is the image itself
    table = np.genfromtxt(tmp_path / "c2" / "two_measurements.csv", delimiter=",", names=True)
    assert "mean_intensity_c2" not in table.dtype.names and len(table) > 0
    for row in table:
        mask = labels == row["label"]
        assert row["mean_intensity"] == pytest.approx(image[mask].mean(), rel=1e-5)
        assert row["mean_intensity_c1"] == pytest.approx(reporter[mask].mean(), rel=1e-5)


def test_rois_outline_every_object_on_its_page(trained, tmp_path):
    from roifile import roiread

    out = tmp_path / "out"
    argv = ["--config", str(trained["yaml"]), "--test_data", trained["test"], "--output", str(out)]
    assert predict.main([*argv, "--rois"]) == 0
    for name in ("synthetic_000", "synthetic"):  # an image, and a stack of 3 pages
        labels = tifffile.imread(out / f"{name}_labels.tif")
        stack = labels.ndim == 3
        pages = labels.reshape(-1, *labels.shape[-2:])
        areas = Counter()  # of the outlines, per (page, label): the pieces' add up
        for roi in roiread(out / f"{name}_rois.zip"):
            parts = roi.name.split("-")  # "<label>" or "<slice>-<label>", "-<piece>" after
            page, value = (roi.position - 1, int(parts[1])) if stack else (0, int(parts[0]))
            x, y = roi.coordinates().T
            areas[page, value] += 0.5 * (np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
        pixels = {  # an outline holds its object's holes (the tiny model's objects have some)
            # but for those open to the outside at a corner
            (z, v): int(binary_fill_holes(page == v, np.ones((3, 3))).sum())
            for z, page in enumerate(pages)
            for v in set(np.unique(page)) - {0}
        }
        assert dict(areas) == pixels and len(pixels) > 0


def test_measurements_in_micrometres_from_the_flag_or_the_tiff_calibration(trained, tmp_path):
    image = read_image(next((trained["png"] / "images").glob("synthetic_000.*")))[0]
    folder = tmp_path / "calibrated"
    folder.mkdir()
    tifffile.imwrite(  # as Fiji saves a calibrated image: 0.25 x 0.5 micrometre pixels
        folder / "fiji.tif", image, imagej=True, resolution=(2.0, 4.0), metadata={"unit": "micron"}
    )
    argv = ["--config", str(trained["yaml"]), "--test_data", str(folder), "--measure"]
    tables = {}
    for name, flags in {"file": [], "flag": ["--pixel_size", "0.4"]}.items():
        out = tmp_path / name
        assert predict.main([*argv, "--output", str(out), *flags]) == 0
        tables[name] = np.genfromtxt(out / "fiji_measurements.csv", delimiter=",", names=True)
    for name, pixel_area in (("file", 0.25 * 0.5), ("flag", 0.4 * 0.4)):
        table = tables[name]
        assert len(table) > 0
        np.testing.assert_allclose(table["area_um2"], table["area"] * pixel_area, rtol=1e-5)
        np.testing.assert_allclose(
            table["equivalent_diameter_um"], np.sqrt(4 * table["area_um2"] / np.pi), rtol=1e-5
        )
    assert tables["flag"]["major_axis_length_um"] == pytest.approx(
        tables["flag"]["major_axis_length"] * 0.4, rel=1e-5
    )


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--pixel_size", "-1"], "Setting 'pixel_size' is -1"),
        (["--z_spacing", "-2"], "Setting 'z_spacing' is -2"),
        (["--stitch_threshold", "1.5"], "Setting 'stitch_threshold' is 1.5"),
    ],
)
def test_bad_calibration_or_stitching_is_refused(trained, tmp_path, capsys, flags, message):
    argv = ["--config", str(trained["yaml"]), "--test_data", trained["test"]]
    assert predict.main([*argv, "--output", str(tmp_path), *flags]) == 2
    assert message in capsys.readouterr().err


def test_a_stitched_z_stack_has_3d_objects_measured_in_cubic_micrometres(trained, tmp_path):
    image, _ = make_nuclei_stack((6, 48, 56), seed=2)
    folder = tmp_path / "zstack"
    folder.mkdir()
    tifffile.imwrite(  # a Fiji z-stack: 0.5 x 0.5 micrometre pixels, slices 2 micrometres apart
        folder / "cells.tif",
        image,
        imagej=True,
        resolution=(2.0, 2.0),
        metadata={"axes": "ZYX", "unit": "micron", "spacing": 2.0},
    )
    argv = ["--config", str(trained["yaml"]), "--test_data", str(folder), "--measure"]
    assert predict.main([*argv, "--output", str(tmp_path / "2d")]) == 0
    assert predict.main([*argv, "--output", str(tmp_path / "3d"), "--stitch_threshold", "0.5"]) == 0
    pieces = tifffile.imread(tmp_path / "2d" / "cells_labels.tif")
    stitched = tifffile.imread(tmp_path / "3d" / "cells_labels.tif")
    blob = load_model(trained["yaml"]).config.blob_label
    np.testing.assert_array_equal(stitched, stitch_slices(pieces, 0.5, blob))
    table = np.genfromtxt(tmp_path / "3d" / "cells_measurements.csv", delimiter=",", names=True)
    values = sorted(set(np.unique(stitched)) - {0})
    assert len(values) < len(set(np.unique(pieces)) - {0})  # pieces were linked
    assert np.atleast_1d(table["label"]).tolist() == values
    for row in np.atleast_1d(table):
        mask = stitched == row["label"]
        pages = np.flatnonzero(mask.any(axis=(1, 2)))
        assert (row["volume"], row["first_page"], row["last_page"]) == (
            mask.sum(),
            pages[0],
            pages[-1],
        )
        assert row["volume_um3"] == pytest.approx(row["volume"] * 2.0 * 0.5 * 0.5, rel=1e-5)
    with open(tmp_path / "3d" / "summary.csv", newline="") as file:
        summary = list(csv.DictReader(file))
    assert [(row["image"], int(row["objects"])) for row in summary] == [("cells", len(values))]
    assert float(summary[0]["median_volume_um3"]) == pytest.approx(
        np.median(table["volume_um3"]), rel=1e-5
    )


def test_evaluate_user_errors(trained, tmp_path, capsys):
    assert evaluate.main(["--gt", str(trained["png"])]) == 2
    assert "Give --gt and --pred" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "other_labels.tif").write_bytes(b"")
    assert evaluate.main(["--gt", str(trained["png"]), "--pred", str(empty)]) == 2
    assert "No prediction for" in capsys.readouterr().err


def test_evaluate_refuses_two_predictions_of_one_name(trained, tmp_path, capsys):
    import shutil

    pred = tmp_path / "pred"
    pred.mkdir()
    for file in sorted((trained["png"] / "labels").glob("*.png")):
        shutil.copy(file, pred / f"{file.stem}_labels.png")
        shutil.copy(file, pred / f"{file.stem}_labels.tif")  # which one is the prediction?
    assert evaluate.main(["--gt", str(trained["png"]), "--pred", str(pred)]) == 2
    assert "have the same name" in capsys.readouterr().err


def test_tune_postprocess_refuses_too_few_objects_and_keeps_the_settings(trained, tmp_path, capsys):
    yaml_path = copy_model(trained, tmp_path / "model")
    before = yaml_path.read_text()
    argv = ["--config", str(yaml_path), "--val_data", str(trained["png"])]  # 2 small images
    assert evaluate.tune_postprocess_main(argv) == 2
    err = capsys.readouterr().err
    assert "objects: settings tuned on fewer than 100 fit those objects' noise" in err
    assert yaml_path.read_text() == before


def test_an_unreadable_image_is_skipped_and_reported_at_the_end(trained, tmp_path, capsys):
    import shutil

    folder = tmp_path / "images"
    shutil.copytree(trained["png"] / "images", folder)
    first, second = sorted(folder.iterdir())
    first.write_bytes(b"not an image")
    argv = [
        "--config",
        str(trained["yaml"]),
        "--test_data",
        str(folder),
        "--output",
        str(tmp_path / "out"),
    ]
    assert predict.main(argv) == 2
    err = capsys.readouterr().err
    assert f"1 of 2 images were skipped (the others are done):\n- Cannot read '{first}'" in err
    assert (tmp_path / "out" / f"{second.stem}_labels.tif").is_file()  # the run went on


def test_an_image_one_may_not_read_says_so(tmp_path, monkeypatch):
    import imageio.v3 as iio

    from napari_cellseg.data.io import read_image
    from napari_cellseg.errors import DataError

    path = tmp_path / "locked.png"
    path.write_bytes(b"")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(iio, "imread", refuse)
    with pytest.raises(DataError, match="you have no permission to read it"):
        read_image(path)


def test_one_nan_pixel_does_not_empty_a_prediction_and_says_so(trained, tmp_path, capsys):
    import tifffile

    from napari_cellseg.data.io import read_image

    image = read_image(sorted((trained["png"] / "images").iterdir())[0])[0].astype(np.float32)
    (tmp_path / "images").mkdir()
    tifffile.imwrite(tmp_path / "images" / "clean.tif", image)
    image[0, 0] = np.nan
    tifffile.imwrite(tmp_path / "images" / "nan.tif", image)
    out = tmp_path / "out"
    assert (
        predict.main(["--config", "nuclei", "--test_data", str(tmp_path), "--output", str(out)])
        == 0
    )
    assert (
        "note: 1 of the image's 7575 pixels are not numbers (NaN or infinite)"
        in capsys.readouterr().err
    )
    clean, nan = (tifffile.imread(out / f"{name}_labels.tif") for name in ("clean", "nan"))
    assert clean.max() > 1 and np.array_equal(clean, nan)


def test_earlier_results_are_kept_unless_overwrite_is_given(trained, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--config", str(trained["yaml"]), "--test_data", str(trained["png"]), "--output",
            str(out), "--measure"]  # fmt: skip
    assert predict.main(argv) == 0
    labels = sorted(out.glob("*_labels.tif"))[0]
    labels.write_bytes(b"corrected by hand")
    capsys.readouterr()
    assert predict.main(argv) == 2
    assert "holds results of an earlier run" in capsys.readouterr().err
    assert labels.read_bytes() == b"corrected by hand"
    assert predict.main([*argv, "--overwrite"]) == 0
    assert labels.read_bytes() != b"corrected by hand"


def test_evaluate_json_naming_a_folder_says_so(trained, tmp_path, capsys):
    argv = ["--gt", str(trained["png"]), "--pred", str(trained["png"] / "labels"), "--json",
            str(tmp_path)]  # fmt: skip
    assert evaluate.main(argv) == 2
    assert (
        f"Cannot write '{tmp_path}': it is a folder; give a file name." in capsys.readouterr().err
    )


def test_evaluate_says_which_predictions_have_no_ground_truth(trained, tmp_path, capsys):
    import shutil

    pred = tmp_path / "pred"
    shutil.copytree(trained["png"] / "labels", pred)
    shutil.copy(sorted(pred.iterdir())[0], pred / "stray_labels.png")
    assert evaluate.main(["--gt", str(trained["png"]), "--pred", str(pred)]) == 0
    err = capsys.readouterr().err
    assert "note: 1 label files of" in err and "not scored: stray_labels.png." in err
