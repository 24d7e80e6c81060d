"""The review dock: least confident first, one key each, recorded, and trained on."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from napari_cellseg.analysis.review import confirmed, ignore_unreviewed, review_queue
from napari_cellseg.data.io import read_image
from napari_cellseg.sharing.networks import SAMPLE_IMAGE
from napari_cellseg.widgets._layer_pairs import training_labels

TIMEOUT = 120_000  # ms


def test_the_queue_and_the_training_labels_follow_the_record():
    index, confidence = [2, 3, 4, 5], [0.9, 0.2, np.nan, 0.5]
    review = ["", "", "", "accepted"]
    assert review_queue(index, confidence, review, [0, 2, 3, 4, 5]) == [4, 3, 2]
    review = ["", "deleted", "", "accepted"]
    assert review_queue(index, confidence, review, [0, 2, 3, 4, 5]) == [4, 3, 2]  # undone
    assert review_queue(index, confidence, review, [0, 2, 4, 5]) == [4, 2]
    assert confirmed(index, review, [0, 2, 4, 5]) == [5]
    labels = np.zeros((60, 60), np.int32)
    labels[1:4, 1:4], labels[6:10, 6:10] = 2, 5
    ignored = ignore_unreviewed(labels, [5], blob_label=1, margin=1)
    assert (ignored[6:10, 6:10] == 5).all()  # reviewed: trains
    assert (ignored[1:4, 1:4] == 1).all() and ignored[0, 2] == ignored[4, 2] == 1  # and around
    assert ignored[11, 0] == 0 and ignored[20, 20] == 0  # the background near it trains
    assert (ignored[40:, 40:] == 1).all()  # far from every reviewed object: not confirmed
    with pytest.raises(ValueError, match="no object"):
        ignore_unreviewed(labels, [], blob_label=1)


@pytest.fixture
def predicted(qtbot, viewer, open_widget):
    """The DSB2018 sample predicted with the built-in model in the Predict dock."""
    image = viewer.add_image(read_image(SAMPLE_IMAGE)[0][:256, :256], name="nuclei")
    predict = open_widget("Predict")
    predict.image.value = image
    predict.predict()
    qtbot.waitUntil(lambda: predict.worker is None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: "nuclei instances" in viewer.layers, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: predict.segmentation._post_worker is None, timeout=TIMEOUT)
    return viewer.layers["nuclei instances"]


def test_with_test_time_augmentation_the_confidence_counts_the_objects_agreement(
    qtbot, viewer, open_widget
):
    from napari_cellseg.analysis.confidence import object_confidence

    viewer.add_image(read_image(SAMPLE_IMAGE)[0][:128, :128], name="nuclei")
    predict = open_widget("Predict")
    predict.model_panel.tta.value = True
    predict.predict()
    qtbot.waitUntil(lambda: predict.worker is None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: "nuclei instances" in viewer.layers, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: predict.segmentation._post_worker is None, timeout=TIMEOUT)
    maps, layer = predict.state.maps, viewer.layers["nuclei instances"]
    scores = object_confidence(layer.data, maps.objects, maps.boundaries, maps.augmented)
    assert len(scores["label"]) >= 8 and 0.5 < scores["agreement"].mean() < 1
    np.testing.assert_allclose(layer.features["confidence"], scores["confidence"], atol=1e-9)
    plain = object_confidence(layer.data, maps.objects, maps.boundaries)["confidence"]
    assert (scores["confidence"] <= plain + 1e-12).all() and (scores["confidence"] < plain).any()


def test_review_goes_least_confident_first_and_records_each_decision(
    qtbot, viewer, open_widget, predicted
):
    layer = predicted
    review = open_widget("Review objects")
    review.labels.value = layer
    review.start_review()
    features = layer.features
    present = set(np.unique(layer.data).tolist())
    queue = sorted(
        (c, v)
        for v, c in zip(features["index"], features["confidence"], strict=True)
        if v in present
    )
    assert review.current == queue[0][1]  # the least confident
    total = len(queue)
    assert review.count.value == f"0 reviewed, {total} left"
    assert layer.selected_label == review.current

    first = review.current
    review.decide("accepted")
    assert review.current == queue[1][1]
    second = review.current
    review.decide("deleted")
    assert not (layer.data == second).any()
    third = review.current
    review.decide("blob")
    assert (layer.data[np.nonzero(layer.data == 1)] == 1).any() and not (layer.data == third).any()
    record = dict(zip(layer.features["index"], layer.features["review"], strict=True))
    assert (record[first], record[second], record[third]) == ("accepted", "deleted", "blob")
    assert review.count.value == f"3 reviewed, {total - 3} left"

    skipped = review.current
    review.decide("next")
    assert review.current != skipped and record.get(skipped, "") == ""
    joining = review.current
    ys, xs = np.nonzero(layer.data == joining)
    neighbour = next(int(v) for v in np.unique(layer.data) if v not in (0, 1, joining))
    ny, nx = np.argwhere(layer.data == neighbour)[0]
    review.decide("joined")
    layer.mouse_drag_callbacks[-1](layer, SimpleNamespace(position=(float(ny), float(nx))))
    assert not (layer.data == joining).any() and (layer.data[ys, xs] == neighbour).all()
    record = dict(zip(layer.features["index"], layer.features["review"], strict=True))
    assert record[joining] == "joined" and record[neighbour] == "accepted"

    layer.undo()  # the join, then the blob: napari's undo restores the object, back in line
    layer.undo()
    assert (layer.data == third).any() and third in review.queue()
    layer.paint((250, 250), 999)  # an object the user painted: known to be right
    review.start_review()
    record = dict(zip(layer.features["index"], layer.features["review"], strict=True))
    assert record[999] == "added" and 999 not in review.queue()


def test_training_labels_keep_only_what_was_reviewed(qtbot, viewer, open_widget, predicted):
    layer = predicted
    train = open_widget("Train")
    pairs = train.train_pairs
    row = list(pairs._rows)[0]
    row[0].value, row[1].value = viewer.layers["nuclei"], layer
    assert pairs.reviewed_only.native.isHidden()  # no review yet: no such choice
    review = open_widget("Review objects")
    review.start_review(layer)
    assert not pairs.reviewed_only.native.isHidden() and pairs.reviewed_only.value
    with pytest.raises(Exception, match="No object of 'nuclei instances' is reviewed yet"):
        training_labels(layer, True, 1)
    accepted = [review.current]
    review.decide("accepted")
    accepted.append(review.current)
    review.decide("accepted")
    labels = training_labels(layer, True, 1)
    objects = set(np.unique(labels).tolist()) - {0, 1}
    assert objects == set(accepted)
    assert np.array_equal(training_labels(layer, False, 1), layer.data)
    assert train.form.widgets["reviewed_only"].native.isHidden()  # layers: the pairs' box
    pairs.reviewed_only.value = False
    cfg, data = train.config_and_data()  # the run's settings record what it trains on
    assert cfg.reviewed_only is False and np.array_equal(data.train[0].labels[0], layer.data)
    with pytest.raises(Exception, match="set 'blob_label' to 1"):
        training_labels(layer, True, None)


def test_a_saved_review_trains_from_its_folder_as_from_the_layer(
    viewer, open_widget, predicted, notes, tmp_path
):
    from napari_cellseg.analysis.review import read_record, record_path
    from napari_cellseg.config import TrainConfig
    from napari_cellseg.training.inputs import load_stacks

    layer, folder = predicted, tmp_path / "reviewed"
    review = open_widget("Review objects")
    assert review.save_for_training(str(folder)) is None
    assert any("Start a review first" in note for note in notes)
    review.start_review(layer)
    assert review.image.value is viewer.layers["nuclei"]  # the predicted image, by its name
    for state in ("accepted", "deleted", "accepted"):
        review.decide(state)
    saved = review.save_for_training(str(folder))
    assert saved == folder / "labels" / "nuclei.tif"
    index, states = read_record(record_path(saved))
    assert sorted(states) == sorted(layer.features["review"]) and states.count("accepted") == 2
    cfg = TrainConfig(train_data=str(folder), val_fraction=0.0)
    stack = load_stacks(cfg, None)[0][0]
    assert np.array_equal(stack.image[0], viewer.layers["nuclei"].data)
    assert np.array_equal(stack.labels[0], training_labels(layer, True, 1))

    review.decide("accepted")  # saving again updates the pair; another image gets a new name
    assert review.save_for_training(str(folder)) == saved
    assert read_record(record_path(saved))[1].count("accepted") == 3
    review.image.value = viewer.layers["a"]
    assert review.save_for_training(str(folder)) is None
    assert any("Choose the image of 'nuclei instances'" in note for note in notes)


def test_measuring_a_reviewed_layer_keeps_its_review(qtbot, viewer, open_widget, predicted):
    layer = predicted
    review = open_widget("Review objects")
    review.start_review(layer)
    first = review.current
    review.decide("accepted")
    layer.data_setitem((np.array([0, 0]), np.array([0, 1])), 999)  # painted meanwhile
    before = dict(zip(layer.features["index"], layer.features["confidence"], strict=True))
    measure = open_widget("Predict").measurements
    viewer.layers.selection.active = layer
    measure.measure_layer()
    qtbot.waitUntil(lambda: 999 in set(layer.features["index"]), timeout=TIMEOUT)
    record = dict(zip(layer.features["index"], layer.features["review"], strict=True))
    assert record[first] == "accepted" and record[999] == "added"
    assert sum(state == "" for state in record.values()) == len(record) - 2
    after = dict(zip(layer.features["index"], layer.features["confidence"], strict=True))
    assert after[first] == pytest.approx(before[first])
    assert first not in review.queue()


def test_review_refuses_what_it_cannot_review(viewer, open_widget, notes):
    review = open_widget("Review objects")
    review.start_review(viewer.layers["a labels"])  # an annotation: no confidence
    assert any("has no confidence for its objects" in note for note in notes)
    stack = viewer.add_labels(np.zeros((3, 8, 8), np.int32), name="stack")
    review.start_review(stack)
    assert any("review works on 2D labels" in note for note in notes)
    assert review.layer is None and review.current is None
