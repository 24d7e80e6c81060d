"""Predict on the current layer: three output layers, live thresholds, stacks, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from napari_cellseg.data.synthetic import make_nuclei
from napari_cellseg.segmentation.instances import instances
from napari_cellseg.segmentation.settings import SegmentationSettings
from napari_cellseg.segmentation.tuning import GRID, MIN_TUNING_OBJECTS
from napari_cellseg.widgets._worker import current_model

TIMEOUT = 120_000  # ms


@pytest.fixture
def predict_widget(open_widget, model_yaml, viewer):
    current_model.set(model_yaml)
    widget = open_widget("Predict")
    viewer.layers.selection.active = viewer.layers["a"]
    return widget


def run(qtbot, widget) -> None:
    widget.predict()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: widget.segmentation._post_worker is None, timeout=TIMEOUT)


def outputs(viewer, name: str = "a") -> list:
    return [viewer.layers[f"{name} {role}"] for role in ("objects", "boundaries", "instances")]


def test_predict_adds_three_layers_placed_like_the_input(qtbot, predict_widget, viewer):
    viewer.layers["a"].scale, viewer.layers["a"].translate = (2.0, 0.5), (10.0, -4.0)
    viewer.layers["a"].units = ("µm", "µm")
    assert predict_widget.image.value is viewer.layers["a"]  # the active layer
    run(qtbot, predict_widget)
    objects, boundaries, inst = outputs(viewer)
    for layer in (objects, boundaries):
        assert layer.data.shape == (64, 64) and layer.data.dtype == np.float32
        assert 0.0 <= layer.data.min() and layer.data.max() <= 1.0
        assert layer.blending == "additive"
    assert type(inst).__name__ == "Labels" and inst.data.shape == (64, 64)
    assert np.issubdtype(inst.data.dtype, np.integer)
    assert inst.selected_label == max(inst.data.max() + 1, 2)  # the brush paints a new object
    for layer in (objects, boundaries, inst):
        assert tuple(layer.scale) == (2.0, 0.5) and tuple(layer.translate) == (10.0, -4.0)
        assert [str(unit) for unit in layer.units] == ["micrometer", "micrometer"]


def test_rerun_replaces_only_its_own_layers(qtbot, predict_widget, viewer):
    mine = viewer.add_image(np.ones((4, 4)), name="a objects")  # a user's layer of the same name
    predict_widget.image.value = viewer.layers["a"]
    run(qtbot, predict_widget)
    first = list(viewer.layers)
    assert [layer.name for layer in first[5:]] == ["a objects [1]", "a boundaries", "a instances"]
    run(qtbot, predict_widget)
    assert list(viewer.layers) == first
    assert mine.data.shape == (4, 4)


def test_another_model_does_not_resegment_the_last_maps(qtbot, predict_widget, viewer, tmp_path):
    from napari_cellseg.config_io import load_yaml, save_yaml

    run(qtbot, predict_widget)
    viewer.layers.remove("a instances")
    other = load_yaml(current_model.path)
    other.obj_threshold, other.small_object_prob = 0.2, 0.9
    save_yaml(other, tmp_path / "other.yaml")
    current_model.set(tmp_path / "other.yaml")
    assert predict_widget.segmentation.post["obj_threshold"].value == 0.2
    assert predict_widget.segmentation.post["small_object_prob"].value == 0.9
    qtbot.wait(500)  # past the threshold sliders' debounce
    assert "a instances" not in viewer.layers


def test_threshold_change_reruns_post_processing_only(qtbot, predict_widget, viewer, model_yaml):
    calls = []
    hook = current_model.predictor(model_yaml).model.register_forward_hook(
        lambda *a: calls.append(1)
    )
    try:
        run(qtbot, predict_widget)
        network_calls = len(calls)
        assert network_calls > 0
        predict_widget.segmentation.post["obj_threshold"].value = 0.0  # every pixel is foreground
        qtbot.waitUntil(lambda: viewer.layers["a instances"].data.min() > 0, timeout=TIMEOUT)
        assert viewer.layers["a instances"].data.min() == 2  # objects from 2: 1 marks blobs
        predict_widget.segmentation.post["obj_threshold"].value = 1.0  # nothing is
        qtbot.waitUntil(lambda: viewer.layers["a instances"].data.max() == 0, timeout=TIMEOUT)
        assert len(calls) == network_calls
    finally:
        hook.remove()


def test_edited_instances_are_never_overwritten(qtbot, predict_widget, viewer, notes):
    run(qtbot, predict_widget)
    edited = viewer.layers["a instances"]
    edited.paint((5, 5), 7)  # a correction, as with the brush
    corrected = edited.data.copy()
    assert any("holds your edits" in n for n in notes)
    predict_widget.segmentation.post["obj_threshold"].value = 1.0  # nothing is foreground
    qtbot.waitUntil(lambda: "a instances [1]" in viewer.layers, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: predict_widget.segmentation._post_worker is None, timeout=TIMEOUT)
    assert np.array_equal(edited.data, corrected) and edited.data.max() > 0
    assert viewer.layers["a instances [1]"].data.max() == 0
    run(qtbot, predict_widget)  # a new prediction reuses the new layer, not the edited one
    assert np.array_equal(edited.data, corrected)
    assert [layer.name for layer in viewer.layers].count("a instances [1]") == 1


def measured(layer, image: np.ndarray) -> dict:
    """Area and mean intensity of every object of ``layer``, from its masks."""
    values = sorted(set(np.unique(layer.data)) - {0})
    return {v: [(layer.data == v).sum(), image[layer.data == v].mean()] for v in values}


def features_of(layer) -> dict:
    rows = zip(layer.features["area"], layer.features["mean_intensity"], strict=True)
    return {value: list(row) for value, row in zip(layer.features["index"], rows, strict=True)}


def test_instances_carry_their_measurements_until_edited_then_measure_again(
    qtbot, predict_widget, viewer, notes
):
    from napari_cellseg.model_file import BUILTIN_MODELS

    current_model.set(BUILTIN_MODELS["nuclei"])  # finds the nuclei, the tiny model does not
    run(qtbot, predict_widget)
    instances, image = viewer.layers["a instances"], viewer.layers["a"].data
    count = int(predict_widget.status.value.split(": ")[1].split()[0])
    assert len(instances.features) == count > 1
    expected = measured(instances, image)
    assert list(features_of(instances)) == list(expected)
    for value, row in features_of(instances).items():
        assert row == pytest.approx(expected[value])

    confidence = instances.features["confidence"]
    assert ((confidence >= 0) & (confidence <= 1)).all() and confidence.std() > 0
    instances.paint((5, 5), 99)  # a correction: the measurements no longer hold
    assert list(instances.features.columns) == ["index", "confidence"]  # the confidence may
    assert any("Press Measure objects" in n for n in notes)
    predict_widget.measurements.measure_layer()
    qtbot.waitUntil(lambda: "area" in instances.features, timeout=TIMEOUT)
    expected = measured(instances, image)
    assert 99 in features_of(instances) and list(features_of(instances)) == list(expected)
    for value, row in features_of(instances).items():
        assert row == pytest.approx(expected[value])
    assert any("objects measured" in n for n in notes)


@pytest.mark.parametrize(
    "scale, units, pixel", [((1, 1), None, None), ((0.5, 0.25), None, (0.5, 0.25)),
                            ((500, 500), ("nm", "nm"), (0.5, 0.5)), ((2, 2), ("s", "um"), None)],
)  # fmt: skip
def test_a_layers_pixel_size_in_micrometres(scale, units, pixel):
    from napari.layers import Image

    from napari_cellseg.widgets._layers import pixel_size

    layer = Image(np.zeros((4, 4)), scale=scale, **({"units": units} if units else {}))
    assert pixel_size(layer) == (pytest.approx(pixel) if pixel else None)


def test_a_fiji_tiffs_calibration_is_the_pixel_size_of_its_layer(viewer, tmp_path):
    import tifffile

    from napari_cellseg.widgets._layers import pixel_size

    path = tmp_path / "fiji.tif"
    tifffile.imwrite(
        path, np.zeros((20, 30), np.uint16), imagej=True, resolution=(2.0, 4.0),
        metadata={"unit": "micron"},
    )  # fmt: skip
    layer = viewer.open(path)[0]
    assert tuple(layer.scale) == (1, 1)  # napari's reader leaves the calibration out
    assert pixel_size(layer) == pytest.approx((0.25, 0.5))
    layer.scale = (0.1, 0.1)  # a scale the user sets wins
    assert pixel_size(layer) == pytest.approx((0.1, 0.1))


def test_measurements_in_micrometres_on_a_calibrated_image(qtbot, predict_widget, viewer):
    from napari_cellseg.model_file import BUILTIN_MODELS

    current_model.set(BUILTIN_MODELS["nuclei"])
    run(qtbot, predict_widget)
    assert "area_um2" not in viewer.layers["a instances"].features  # scale 1: pixels only
    viewer.layers["a"].scale = (0.2, 0.2)  # micrometres, as microscopy readers set it
    run(qtbot, predict_widget)
    features = viewer.layers["a instances"].features
    assert len(features) > 1
    np.testing.assert_allclose(features["area_um2"], features["area"] * 0.04)
    axes = features["major_axis_length_um"], features["major_axis_length"] * 0.2
    np.testing.assert_allclose(*axes)


def test_other_channels_are_measured_too(qtbot, predict_widget, viewer):
    from napari_cellseg.model_file import BUILTIN_MODELS

    image = viewer.layers["a"].data
    reporter = viewer.add_image(np.sqrt(image) + 1, name="GFP (488)")
    viewer.add_image(np.ones((8, 8)), name="elsewhere")  # another shape: not a channel
    current_model.set(BUILTIN_MODELS["nuclei"])
    predict_widget.image.value = viewer.layers["a"]
    run(qtbot, predict_widget)
    instances = viewer.layers["a instances"]
    features = instances.features
    assert len(features) > 1 and "mean_intensity_elsewhere" not in features
    assert not any("objects" in key or "boundaries" in key for key in features)  # own maps
    for value, mean in zip(features["index"], features["mean_intensity_GFP_488"], strict=True):
        assert mean == pytest.approx(reporter.data[instances.data == value].mean(), rel=1e-5)

    viewer.layers.selection.active = instances  # measured again by the button: the same
    instances.features = {}
    predict_widget.measurements.measure_layer()
    qtbot.waitUntil(lambda: "area" in instances.features, timeout=TIMEOUT)
    assert instances.features["integrated_intensity_GFP_488"].tolist() == pytest.approx(
        features["integrated_intensity_GFP_488"].tolist()
    )


def test_measure_names_what_is_missing(predict_widget, viewer, notes):
    viewer.layers.selection.active = viewer.layers["a"]
    predict_widget.measurements.measure_layer()
    assert any("Select the labels layer" in n for n in notes)
    viewer.add_labels(np.zeros((8, 8), np.int32), name="small")
    viewer.layers.selection.active = viewer.layers["small"]
    predict_widget.image.value = viewer.layers["a"]
    predict_widget.measurements.measure_layer()
    assert any("differ in shape" in n and "'small'" in n for n in notes)


def test_export_a_labels_layer_as_imagej_rois(qtbot, predict_widget, viewer, tmp_path, notes):
    from roifile import roiread

    predict_widget.measurements.export_rois(str(tmp_path / "x.zip"))
    assert any("Select the labels layer to export" in n for n in notes)
    labels = np.zeros((2, 20, 30), np.int32)
    labels[0, 2:6, 3:9] = 2
    labels[1, 10:15, 20:22] = 7
    viewer.add_labels(labels, name="cells")
    viewer.layers.selection.active = viewer.layers["cells"]
    predict_widget.measurements.export_rois(str(tmp_path / "cells"))  # .zip is added
    qtbot.waitUntil(lambda: any("saved as ImageJ ROIs" in n for n in notes), timeout=TIMEOUT)
    rois = roiread(tmp_path / "cells.zip")
    assert [(roi.name, roi.position, roi.left, roi.top) for roi in rois] == [
        ("0001-2", 1, 3, 2), ("0002-7", 2, 20, 10),
    ]  # fmt: skip


def test_tta_box_runs_eight_views_and_eight_for_the_agreement_and_leaves_the_model_plain(
    qtbot, predict_widget, viewer, model_yaml
):
    calls = []
    predictor = current_model.predictor(model_yaml)
    hook = predictor.model.register_forward_hook(lambda *a: calls.append(1))
    try:
        run(qtbot, predict_widget)
        plain = len(calls)
        predict_widget.model_panel.tta.value = True
        run(qtbot, predict_widget)
        assert len(calls) == plain + 8 * plain + 8 * plain  # the 8 symmetries' instances too
    finally:
        hook.remove()
    assert predictor.tta is False and current_model.predictor(model_yaml) is predictor
    maps, layer = predict_widget.state.maps, viewer.layers["a instances"]
    assert len(maps.augmented) == 8 and all(a.shape == layer.data.shape for a in maps.augmented)


def test_tta_box_shows_the_settings_tuned_for_it(qtbot, predict_widget, model_yaml, tmp_path):
    def shown() -> dict:
        post = predict_widget.segmentation.post
        return {name: pytest.approx(widget.value) for name, widget in post.items()}

    content = yaml.safe_load(Path(model_yaml).read_text())
    run(qtbot, predict_widget)
    predict_widget.model_panel.tta.value = True
    assert predict_widget.state.maps is None  # single-prediction maps: not re-segmented
    assert "no settings tuned for test-time augmentation" in predict_widget.status.value
    assert shown() == SegmentationSettings.of(content).as_dict()
    tuned = {"split_depth": 0.3, "min_size": 7}
    tuned_yaml = tmp_path / "tuned.yaml"
    tuned_yaml.write_text(yaml.safe_dump({**content, "tta_segmentation": tuned}))
    current_model.set(str(tuned_yaml))
    assert shown() == {**SegmentationSettings.of(content).as_dict(), **tuned}
    predict_widget.model_panel.tta.value = False
    assert shown() == SegmentationSettings.of(content).as_dict()


REACHABLE = {"bnd_threshold": 0.8, "split_depth": 0.0, "min_size": 0, "small_object_prob": 1.0}
"""Settings on the tuning grid (with one of its object thresholds)."""


def test_tuning_on_labels_finds_settings_that_reproduce_them_and_saving_keeps_them(
    qtbot, predict_widget, viewer, model_yaml, tmp_path, notes
):
    mine = tmp_path / "mine.yaml"
    mine.write_text(Path(model_yaml).read_text())  # names the weights by their full path
    current_model.set(str(mine))
    stack = np.stack([make_nuclei((64, 64), blobs=1, seed=seed)[0] for seed in range(128)])
    viewer.add_image(stack, name="many")  # enough objects to tune on
    predict_widget.image.value = viewer.layers["many"]
    run(qtbot, predict_widget)
    maps = predict_widget.state.maps
    truth = max(
        (
            instances(maps.objects, maps.boundaries, **REACHABLE, obj_threshold=t, skip_label=1)
            for t in GRID["obj_threshold"]
        ),
        key=lambda labels: len(np.unique(labels)),
    )
    objects = len(np.unique(truth[truth > 0]))  # 2, 3, ..., each on one slice
    assert objects >= MIN_TUNING_OBJECTS
    viewer.add_labels(truth, name="truth")  # the selected layer
    predict_widget.segmentation.tune_settings()
    qtbot.waitUntil(lambda: predict_widget.segmentation.tune.enabled, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: predict_widget.segmentation.scored is not None, timeout=TIMEOUT)
    scored = predict_widget.segmentation.scored
    settings = scored.settings.as_dict()
    assert scored.mean_ap == 1.0 and scored.layer == "truth"
    assert f"'truth' ({objects} objects): mean AP" in predict_widget.status.value
    assert predict_widget.status.value.endswith("-> 1.000.")
    assert any("'Save settings to model' keeps them" in n for n in notes)
    qtbot.waitUntil(  # the instances shown are segmented again: the same objects
        lambda: len(np.unique(viewer.layers["many instances"].data)) == len(np.unique(truth)),
        timeout=TIMEOUT,
    )
    predict_widget.segmentation.save_settings()
    content = yaml.safe_load(mine.read_text())
    assert SegmentationSettings.of(content).as_dict() == pytest.approx(settings)
    assert content["record"]["postprocess"] == {"mean_ap": 1.0, "data": "napari layer 'truth'"}
    predict_widget.model_panel.tta.value = True
    predict_widget.segmentation.post["min_size"].value = 3  # by hand: no score
    predict_widget.segmentation.save_settings()
    content = yaml.safe_load(mine.read_text())
    assert content["tta_segmentation"] == pytest.approx({**settings, "min_size": 3})
    assert content["record"]["postprocess_tta"] == {"data": "set in the Predict dock"}
    assert SegmentationSettings.of(content).as_dict() == pytest.approx(settings)  # the others


def test_tuning_on_fewer_than_100_objects_keeps_the_settings_and_says_why(
    qtbot, predict_widget, viewer, notes
):
    run(qtbot, predict_widget)
    before = predict_widget.segmentation.settings()
    maps = predict_widget.state.maps
    truth = instances(maps.objects, maps.boundaries, **REACHABLE, obj_threshold=0.3, skip_label=1)
    viewer.add_labels(truth, name="few")
    predict_widget.segmentation.tune_settings()
    qtbot.waitUntil(lambda: predict_widget.segmentation.tune.enabled, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: "Not tuned on 'few'" in predict_widget.status.value, timeout=TIMEOUT)
    assert predict_widget.segmentation.settings() == before
    assert predict_widget.segmentation.scored is None
    assert any("fewer than 100 objects fit their noise" in n for n in notes)


def test_tuning_and_saving_name_what_is_missing(qtbot, predict_widget, viewer, notes):
    viewer.layers.selection.active = viewer.layers["a labels"]
    predict_widget.segmentation.tune_settings()
    assert any("Predict on the image first" in n for n in notes)
    run(qtbot, predict_widget)
    viewer.layers.selection.active = viewer.layers["a"]
    predict_widget.segmentation.tune_settings()
    assert any("Select the labels layer to tune on" in n for n in notes)
    viewer.add_labels(np.zeros((8, 8), np.int32), name="small")
    predict_widget.segmentation.tune_settings()
    assert any("differ in shape" in n and "'small'" in n for n in notes)
    viewer.add_labels(np.ones_like(viewer.layers["a labels"].data), name="blob only")
    predict_widget.segmentation.tune_settings()
    qtbot.waitUntil(lambda: any("holds no objects" in n for n in notes), timeout=TIMEOUT)
    current_model.set("nuclei")
    predict_widget.segmentation.save_settings()
    assert any("built-in model is shared" in n for n in notes)


def test_saving_into_a_folder_that_refuses_writes_says_what_to_do(
    predict_widget, model_yaml, notes, monkeypatch
):
    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("napari_cellseg.widgets._segmentation_panel.save_segmentation", refuse)
    predict_widget.segmentation.save_settings()
    assert any(
        f"Cannot write the settings into '{model_yaml}' (Permission denied)" in n for n in notes
    )


def test_stacks_are_predicted_slice_by_slice(qtbot, predict_widget, viewer):
    stack = np.stack([viewer.layers["a"].data, viewer.layers["b"].data])
    viewer.add_image(stack, name="stack")
    predict_widget.image.value = viewer.layers["stack"]
    run(qtbot, predict_widget)
    assert [layer.data.shape for layer in outputs(viewer, "stack")] == [(2, 64, 64)] * 3


def test_a_z_stack_is_stitched_into_3d_objects_measured_in_cubic_micrometres(
    qtbot, predict_widget, viewer
):
    from napari_cellseg.analysis.matching import matching
    from napari_cellseg.data.synthetic import make_nuclei_stack
    from napari_cellseg.model_file import BUILTIN_MODELS
    from napari_cellseg.segmentation.stitching import stitch_slices

    current_model.set(BUILTIN_MODELS["nuclei"])
    assert predict_widget.segmentation.stitch.native.isHidden()  # a 2D image: no slices
    image, truth = make_nuclei_stack((8, 96, 112), seed=1)
    viewer.add_image(image, name="z", scale=(2.0, 0.5, 0.5))  # micrometres
    predict_widget.image.value = viewer.layers["z"]
    assert not predict_widget.segmentation.stitch.native.isHidden()
    run(qtbot, predict_widget)
    pieces = viewer.layers["z instances"].data.copy()  # every slice's objects apart
    assert "volume" not in viewer.layers["z instances"].features
    predict_widget.segmentation.stitch.value = 0.5
    qtbot.waitUntil(lambda: "volume" in viewer.layers["z instances"].features, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: predict_widget.segmentation._post_worker is None, timeout=TIMEOUT)
    layer = viewer.layers["z instances"]
    np.testing.assert_array_equal(layer.data, stitch_slices(pieces, 0.5, skip_label=1))
    features = layer.features
    assert features["index"].tolist() == sorted(set(np.unique(layer.data)) - {0})
    np.testing.assert_allclose(features["volume_um3"], features["volume"] * 0.5)
    assert predict_widget.status.value == f"'z': {len(features)} objects."
    scores = {name: matching(truth, labels, ignore_label=None).thresholds[0.5].ap
              for name, labels in (("pieces", pieces), ("stitched", layer.data))}  # fmt: skip
    assert scores["pieces"] < 0.1 < 0.6 < scores["stitched"]  # the nuclei are found in 3D


def test_a_hyperstack_layer_gets_told_how_to_open_its_channels(
    predict_widget, viewer, notes, tmp_path
):
    import tifffile

    path = tmp_path / "fiji.tif"
    stack = np.stack([viewer.layers["a"].data] * 2)  # 2 channels
    tifffile.imwrite(path, np.stack([stack] * 3), imagej=True, metadata={"axes": "ZCYX"})
    (layer,) = viewer.open(path)  # napari's reader: one 4D layer
    predict_widget.image.value = layer
    predict_widget.predict()
    assert predict_widget.worker is None
    assert any("has 4 dimensions" in n and "channel_axis=1" in n for n in notes), notes
    channels = viewer.open(path, channel_axis=1)  # as the message says: one layer a channel
    assert [c.data.shape for c in channels] == [(3, 64, 64)] * 2


def test_rgb_layers_are_predicted_on_their_luminance(qtbot, predict_widget, viewer, notes):
    gray = viewer.layers["a"].data
    viewer.add_image(np.stack([gray] * 3, axis=-1), name="colour", rgb=True)
    predict_widget.image.value = viewer.layers["colour"]
    run(qtbot, predict_widget)
    assert any("'colour' is RGB" in n and "Split RGB" in n for n in notes), notes
    predict_widget.image.value = viewer.layers["a"]
    run(qtbot, predict_widget)
    for mine, gray_output in zip(outputs(viewer, "colour"), outputs(viewer), strict=True):
        assert mine.data.shape == gray.shape
        assert np.allclose(mine.data, gray_output.data, atol=1e-3)  # gray in 3 channels


def test_a_second_press_cancels_the_prediction(qtbot, predict_widget, viewer):
    stack = np.stack([viewer.layers["a"].data] * 40)  # a tile per slice: 40 progress steps
    viewer.add_image(stack, name="long")
    predict_widget.image.value = viewer.layers["long"]
    predict_widget.predict()
    assert predict_widget.run.text == "Cancel prediction"
    qtbot.waitUntil(lambda: predict_widget.progress_bar.value() >= 1, timeout=TIMEOUT)
    predict_widget.predict()
    qtbot.waitUntil(lambda: predict_widget.worker is None, timeout=TIMEOUT)
    assert predict_widget.status.value == "Prediction cancelled."
    assert predict_widget.run.text == "Predict on current layer"
    assert "long objects" not in viewer.layers and predict_widget.progress_bar.value() < 40
    run(qtbot, predict_widget)  # and the next prediction runs
    assert viewer.layers["long instances"].data.shape == stack.shape


def test_predict_a_folder_with_the_docks_settings(qtbot, predict_widget, tmp_path, notes):
    import tifffile

    from napari_cellseg.data.synthetic import write_dataset

    data = write_dataset(tmp_path / "data", 3, shape=(48, 56), seed=4)
    predict_widget.segmentation.post["obj_threshold"].value = 0.0  # every pixel is foreground
    predict_widget.segmentation.post["min_size"].value = 0
    predict_widget.predict_folder(str(data), str(tmp_path / "out"))
    assert predict_widget.run.text == "Cancel prediction" and not predict_widget.run_folder.enabled
    qtbot.waitUntil(lambda: predict_widget.worker is None, timeout=TIMEOUT)
    names = sorted(p.stem for p in (data / "images").iterdir())
    for name in names:
        labels = tifffile.imread(tmp_path / "out" / f"{name}_labels.tif")
        assert labels.shape == (48, 56) and (labels == 2).all()  # one object, numbered 2
        assert (tmp_path / "out" / f"{name}_objects.tif").is_file()
        table = (tmp_path / "out" / f"{name}_measurements.csv").read_text().splitlines()
        assert table[0].startswith("label,area") and table[1].startswith(f"2,{48 * 56},")
    assert all((tmp_path / "out" / f"{name}_rois.zip").is_file() for name in names)
    summary = (tmp_path / "out" / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("image,objects,touching_edge,median_area")
    assert [line.split(",")[:3] for line in summary[1:]] == [[name, "1", "1"] for name in names]
    assert f"3 images segmented into '{tmp_path / 'out'}'." in notes
    assert predict_widget.progress_bar.value() == 3 and predict_widget.run_folder.enabled

    predict_widget.predict_folder(str(data / "images"), str(data / "images"))
    qtbot.waitUntil(lambda: predict_widget.worker is None, timeout=TIMEOUT)
    assert any("is the folder the images are read from" in n for n in notes), notes
    assert predict_widget.status.value == "Prediction failed."


def test_errors_are_notifications(predict_widget, viewer, notes):
    current_model.set("")
    predict_widget.predict()
    assert any("No model" in n for n in notes)
    viewer.layers.clear()
    predict_widget.predict()
    assert any("No image layer" in n for n in notes)
    assert predict_widget.worker is None and predict_widget.run.text == "Predict on current layer"


def test_diameter_field_serves_models_trained_with_object_diameter(predict_widget, model_yaml):
    from pathlib import Path

    import yaml

    assert not predict_widget.model_panel.diameter.enabled  # the test model sees images as they are
    settings = yaml.safe_load(Path(model_yaml).read_text())
    settings.update(object_diameter=20.0, trim_method="reflect")
    sized = Path(model_yaml).with_name("sized.yaml")
    sized.write_text(yaml.safe_dump(settings))
    current_model.set(sized)
    assert predict_widget.model_panel.diameter.enabled


def test_a_nan_pixel_is_reported_and_does_not_empty_the_prediction(
    qtbot, predict_widget, viewer, notes
):
    run(qtbot, predict_widget)
    clean = viewer.layers["a instances"].data.copy()
    image = viewer.layers["a"].data.astype(np.float32)
    image[0, 0] = np.nan
    viewer.add_image(image, name="nan")
    predict_widget.image.value = viewer.layers["nan"]
    run(qtbot, predict_widget)
    assert any("1 of the image's 4096 pixels are not numbers" in n for n in notes)
    np.testing.assert_array_equal(viewer.layers["nan instances"].data, clean)


def test_a_deleted_instances_layer_stays_deleted_when_a_slider_moves(qtbot, predict_widget, viewer):
    run(qtbot, predict_widget)
    viewer.layers.remove("a instances")
    assert predict_widget.state.maps is None
    assert predict_widget.status.value == "The instances of 'a' were deleted."
    predict_widget.segmentation.post["min_size"].value = 3
    qtbot.wait(400)  # past the sliders' debounce
    assert "a instances" not in viewer.layers


def test_an_empty_layer_is_not_exported_and_a_fresh_run_starts_its_bar_at_zero(
    qtbot, predict_widget, viewer, notes, tmp_path
):
    viewer.add_labels(np.zeros((8, 8), np.int32), name="empty")
    predict_widget.measurements.export_rois(str(tmp_path / "e.zip"))
    assert any("'empty' holds no objects to export" in n for n in notes)
    assert not (tmp_path / "e.zip").exists()
    predict_widget.progress_bar.setRange(0, 5)
    predict_widget.progress_bar.setValue(5)  # the last run's
    predict_widget.image.value = viewer.layers["a"]
    predict_widget.predict()
    assert predict_widget.progress_bar.value() < 5
    qtbot.waitUntil(lambda: predict_widget.worker is None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: "a instances" in viewer.layers, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: predict_widget.segmentation._post_worker is None, timeout=TIMEOUT)


def test_a_yaml_that_is_no_model_is_refused_when_picked(predict_widget, tmp_path, notes):
    other = tmp_path / "napari.yaml"
    other.write_text("name: napari-cellseg\ncontributions: {}\n")
    current_model.set(str(other))
    assert any("is not a model's settings" in n for n in notes)


def test_a_long_layer_name_does_not_widen_the_dock(qtbot, predict_widget, viewer):
    name = "5f9d29d6388c700f35a3c29fa1b1ce0c1cba6667d05fdb70bd1e89004dcf71ed"
    viewer.layers["a"].name = name
    predict_widget.image.value = viewer.layers[name]
    run(qtbot, predict_widget)  # the status names the layer
    assert name in predict_widget.status.value.replace("\u200b", "")
    assert predict_widget.status.native.minimumSizeHint().width() < 300  # it wraps


def test_export_model_writes_a_verified_file_and_a_package_is_a_model(
    qtbot, predict_widget, model_yaml, tmp_path, notes, monkeypatch
):
    from napari_cellseg.sharing import bioimageio

    panel = predict_widget.model_panel
    panel.export_model(str(tmp_path / "mine.onnx"))
    qtbot.waitUntil(lambda: panel.export.enabled, timeout=TIMEOUT)
    assert any("wrote" in n and "mine.onnx" in n and "largest difference" in n for n in notes)

    monkeypatch.setattr(bioimageio, "PACKAGES", tmp_path / "cache")
    package = bioimageio.export_package(model_yaml, tmp_path / "mine.zip")
    panel.picker.line_edit.value = str(package)
    assert current_model.path == str(package)
    assert predict_widget.state.model.config.architecture == "unet"
    assert predict_widget.state.model.path.parent.parent == tmp_path / "cache"
