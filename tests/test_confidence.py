"""Per-object confidence: its cues on made-up maps, its ordering on real held-back data."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cellseg.analysis.confidence import confidence_column, object_confidence
from napari_cellseg.analysis.measure import measure_table


def disc(shape, centre, radius) -> np.ndarray:
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def maps_of(labels: np.ndarray, level: float = 0.95):
    """Maps a good network would give for ``labels``: core ``level``, a 2-pixel rim of
    boundary around each object."""
    from scipy import ndimage as ndi

    rim = np.zeros(labels.shape, bool)
    for value in np.unique(labels[labels > 0]):
        own = labels == value
        rim |= own & ~ndi.binary_erosion(own, iterations=2)
    objects = np.where((labels > 0) & ~rim, level, 0.0)
    return objects, np.where(rim, level, 0.0)


def test_each_cue_marks_its_kind_of_mistake():
    shape = (40, 160)
    labels = np.zeros(shape, np.int32)
    labels[disc(shape, (20, 20), 9)] = 2  # a clean nucleus
    labels[disc(shape, (20, 50), 9) | disc(shape, (20, 64), 9)] = 3  # two taken as one
    whole = disc(shape, (20, 100), 9)
    labels[whole] = 4
    labels[whole & (np.arange(shape[1]) >= 100)] = 5  # one nucleus cut in two
    labels[disc(shape, (20, 140), 9)] = 6  # faint debris
    truth = labels.copy()
    truth[truth == 5] = 4
    truth[disc(shape, (20, 64), 9) & ~disc(shape, (20, 50), 9)] = 7
    objects, boundaries = maps_of(truth)  # the network saw two nuclei and one whole
    objects[:, 56:59], boundaries[:, 56:59] = 0.1, 0.05  # little foreground between the two
    objects[labels == 6] *= 0.3
    boundaries[labels == 6] *= 0.3
    scores = object_confidence(labels, objects, boundaries)
    assert scores["label"].tolist() == [2, 3, 4, 5, 6]
    clean, merged, cut, _other_half, debris = range(5)
    assert scores["unity"][merged] < 0.3 and scores["unity"][clean] > 0.9
    assert scores["convexity"][merged] < 0.9 < scores["convexity"][clean]
    assert scores["separation"][cut] < 0.3 and scores["separation"][clean] == 1.0
    assert scores["presence"][debris] < 0.5 * scores["presence"][clean]
    assert scores["confidence"].argmax() == clean
    assert (scores["confidence"][[merged, cut, debris]] < 0.5 * scores["confidence"][clean]).all()
    empty = object_confidence(np.zeros((4, 4), int), np.zeros((4, 4)), np.zeros((4, 4)))
    assert empty["label"].size == empty["confidence"].size == 0


def test_the_measurements_carry_the_confidence_of_each_row():
    labels = np.zeros((2, 30, 30), np.int32)
    labels[0, 2:12, 2:12], labels[1, 2:12, 2:12], labels[1, 15:25, 15:25] = 2, 2, 3
    objects, boundaries = maps_of(labels[0])
    maps = (np.stack([objects, objects * 0.5]), np.stack([boundaries, boundaries * 0.5]))
    maps[0][1, 15:25, 15:25], maps[1][1, 15:25, 15:25] = maps_of(labels[1])[0][15:25, 15:25], 0
    image = np.ones(labels.shape)
    pages = measure_table(labels, image, maps=maps)  # each object on each page
    assert pages["page"].tolist() == [0, 1, 1] and pages["label"].tolist() == [2, 2, 3]
    first, second = object_confidence(labels[0], maps[0][0], maps[1][0]), None
    assert pages["confidence"][0] == pytest.approx(first["confidence"][0])
    assert pages["confidence"][1] < pages["confidence"][0]  # fainter on page 1
    volumes = measure_table(labels, image, volumes=True, maps=maps)  # 2 is one 3D object
    assert volumes["label"].tolist() == [2, 3]
    second = object_confidence(labels[1], maps[0][1], maps[1][1])
    mean = (first["confidence"][0] + second["confidence"][0]) / 2  # equal areas
    assert volumes["confidence"][0] == pytest.approx(mean)
    flat = {"label": np.array([2])}
    assert confidence_column(flat, labels[0], maps[0][0], maps[1][0])[0] == pytest.approx(
        first["confidence"][0]
    )
    assert "confidence" not in measure_table(labels[0], image[0])


def test_confidence_ranks_the_objects_that_match_the_truth_on_held_back_images(shared_data):
    from napari_cellseg.analysis.matching import iou_matrix
    from napari_cellseg.data.io import list_folder
    from napari_cellseg.inference.predictor import load_model

    predictor = load_model("nuclei")
    confidence, matched = [], []
    for file in list_folder(shared_data / "val", labels=True)[:12]:
        stack = file.read()
        maps = predictor.predict(stack.image[0])
        labels = predictor.instances(*maps)
        scores = object_confidence(labels, *maps)
        iou, _, values = iou_matrix(stack.labels[0], labels)
        best = dict(zip(values.tolist(), iou.max(0, initial=0).tolist(), strict=True))
        for value, score in zip(scores["label"].tolist(), scores["confidence"], strict=True):
            if value in best:  # not mostly in an annotated blob
                confidence.append(score)
                matched.append(best[value] >= 0.5)
    confidence, matched = np.array(confidence), np.array(matched)
    order = np.argsort(confidence)
    bins = [matched[part].mean() for part in np.array_split(order, 3)]  # thirds
    assert len(confidence) > 300 and (~matched).sum() >= 10
    assert bins[0] + 0.05 < bins[1] <= bins[2] + 0.01, bins  # the top third saturates
    ranks = np.argsort(order)  # the rank of each object's confidence
    auroc = (ranks[matched].mean() - (matched.sum() - 1) / 2) / (~matched).sum()
    assert auroc > 0.75


def test_with_test_time_augmentation_the_objects_agreement_counts():
    from napari_cellseg.analysis.confidence import agreement

    labels = np.zeros((30, 60), np.int32)
    labels[disc(labels.shape, (15, 15), 8)], labels[disc(labels.shape, (15, 45), 8)] = 2, 3
    missing = np.where(labels == 3, 0, labels)  # some orientations miss object 3
    assert agreement(labels, [labels, labels, missing, missing]).tolist() == [1.0, 0.5]
    objects, boundaries = maps_of(labels)
    plain = object_confidence(labels, objects, boundaries)
    augmented = object_confidence(labels, objects, boundaries, [labels, missing])
    assert "agreement" not in plain and augmented["agreement"].tolist() == [1.0, 0.5]
    assert augmented["confidence"] == pytest.approx(plain["confidence"] * [1.0, 0.5])


def test_the_cli_measures_the_agreement_of_a_test_time_augmented_prediction(tmp_path):
    import tifffile

    from napari_cellseg.analysis.confidence import augmented_instances
    from napari_cellseg.cli import main as cellseg
    from napari_cellseg.data.io import read_image
    from napari_cellseg.inference.predictor import load_model
    from napari_cellseg.sharing.networks import SAMPLE_IMAGE

    image = read_image(SAMPLE_IMAGE)[0][:160, :200]
    found = augmented_instances(load_model("nuclei"), image, diameter=24)
    assert len(found) == 8 and all(labels.shape == image.shape for labels in found)
    tifffile.imwrite(tmp_path / "crop.tif", image)
    flags = ["predict", "--config", "nuclei", "--test_data", str(tmp_path / "crop.tif")]
    tables = {}
    for name, extra in (("plain", []), ("tta", ["--tta"])):
        out = tmp_path / name
        assert cellseg([*flags, "--diameter", "24", "--measure", "--output", str(out), *extra]) == 0
        rows = (out / "crop_measurements.csv").read_text().splitlines()
        column = rows[0].split(",").index("confidence")
        tables[name] = [float(row.split(",")[column]) for row in rows[1:]]
    assert len(tables["tta"]) > 10 and all(0 <= c <= 1 for c in tables["tta"])
    assert tables["tta"] != tables["plain"]
    # the column is the four cues times the agreement of the written objects
    written = [
        tifffile.imread(tmp_path / "tta" / f"crop_{k}.tif")
        for k in ("labels", "objects", "boundaries")
    ]
    augmented = augmented_instances(load_model("nuclei", tta=True), image, diameter=24)
    expected = object_confidence(*written, augmented)
    assert "agreement" in expected and expected["agreement"].min() < 1
    assert tables["tta"] == pytest.approx(expected["confidence"].tolist(), abs=1e-5)
