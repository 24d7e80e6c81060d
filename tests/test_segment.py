"""Seeded watershed: touching objects split along the boundary map, small ones removed."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cellseg.errors import DataError
from napari_cellseg.segmentation.instances import instances, merge_shallow

YY, XX = np.mgrid[:60, :80]
LEFT = (YY - 30) ** 2 + (XX - 25) ** 2 < 15**2
RIGHT = (YY - 30) ** 2 + (XX - 53) ** 2 < 15**2  # centres 28 apart: the disks overlap by 2 columns


def two_touching_disks():
    """Probability maps as a network trained on make_targets gives: cores and a boundary ridge."""
    ridge = np.zeros(LEFT.shape, bool)
    ridge[:, 38:41] = (LEFT | RIGHT)[:, 38:41]  # where the disks touch
    objects = np.where((LEFT | RIGHT) & ~ridge, 0.9, 0.05).astype(np.float32)
    boundaries = np.where(ridge, 0.9, 0.05).astype(np.float32)
    return objects, boundaries


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_touching_disks_with_boundary_give_two_objects():
    objects, boundaries = two_touching_disks()
    labels = instances(objects, boundaries, obj_threshold=0.5, bnd_threshold=0.5, min_size=10)
    assert labels.dtype == np.int32 and labels.shape == objects.shape
    assert set(np.unique(labels)) == {0, 1, 2}
    left, right = labels[30, 25], labels[30, 53]
    assert {left, right} == {1, 2}
    # the ridge is split between the two: each object is its disk minus at most the shared columns
    assert iou(labels == left, LEFT) > 0.95
    assert iou(labels == right, RIGHT) > 0.95
    assert ((labels > 0) == (LEFT | RIGHT)).all()


def test_without_boundary_touching_disks_merge():
    objects, boundaries = two_touching_disks()
    labels = instances(
        objects + boundaries,
        np.zeros_like(objects),
        obj_threshold=0.5,
        bnd_threshold=0.5,
        min_size=10,
    )
    assert labels.max() == 1


def test_bnd_threshold_decides_whether_a_weak_ridge_splits():
    objects, boundaries = two_touching_disks()
    ridge = boundaries > 0.5
    objects[ridge], boundaries[ridge] = 0.6, 0.4  # confident object, uncertain boundary
    kw = {"obj_threshold": 0.5, "min_size": 10}
    assert instances(objects, boundaries, bnd_threshold=0.3, **kw).max() == 2
    assert instances(objects, boundaries, bnd_threshold=0.5, **kw).max() == 1


def test_small_objects_removed_and_labels_sequential():
    objects, boundaries = two_touching_disks()
    objects[2:5, 2:5] = 0.9  # 9 pixels
    objects[50:54, 2:6] = 0.9  # 16 pixels
    labels = instances(objects, boundaries, obj_threshold=0.5, bnd_threshold=0.5, min_size=10)
    assert (labels[2:5, 2:5] == 0).all()
    assert (labels[50:54, 2:6] > 0).all()
    assert sorted(np.unique(labels)) == [0, 1, 2, 3]
    labels = instances(objects, boundaries, obj_threshold=0.5, bnd_threshold=0.5, min_size=9)
    assert labels.max() == 4


def test_small_objects_the_network_is_sure_of_stay():
    objects, boundaries = two_touching_disks()
    objects[2:5, 2:5] = 0.97  # 9 pixels, sure: a small nucleus
    objects[50:53, 2:5] = 0.6  # 9 pixels, unsure: a speck
    objects[51, 3] = 0.8
    kw = dict(obj_threshold=0.5, bnd_threshold=0.5, min_size=10)
    labels = instances(objects, boundaries, **kw, small_object_prob=0.9)
    assert (labels[2:5, 2:5] == 1).all() and (labels[50:53, 2:5] == 0).all()
    assert sorted(np.unique(labels)) == [0, 1, 2, 3]
    # the peak, not the mean, decides; 1 (the default) keeps no small object
    assert (instances(objects, boundaries, **kw, small_object_prob=0.75)[50:53, 2:5] > 0).all()
    default = instances(objects, boundaries, **kw)
    assert np.array_equal(instances(objects, boundaries, **kw, small_object_prob=1.0), default)
    assert default.max() == 2


@pytest.mark.parametrize(
    ("skip", "values"),
    [(1, [[2, 3], [4, 5]]), (2, [[1, 3], [4, 5]]), (3, [[1, 2], [4, 5]]), (4, [[1, 2], [3, 5]])],
)
def test_a_skipped_label_is_taken_by_no_object_in_any_slice(skip, values):
    objects, boundaries = two_touching_disks()
    stack = np.stack([objects, objects]), np.stack([boundaries, boundaries])
    kw = dict(obj_threshold=0.5, bnd_threshold=0.5, min_size=10)
    plain = instances(*stack, **kw)
    labels = instances(*stack, **kw, skip_label=skip)
    assert [sorted(set(np.unique(page)) - {0}) for page in labels] == values
    assert np.array_equal(labels > 0, plain > 0)
    single = instances(objects, boundaries, **kw, skip_label=1)
    assert np.array_equal(single, plain[0] + (plain[0] > 0))


def test_object_covered_by_boundary_is_kept():
    objects = np.zeros((20, 20), np.float32)
    objects[5:9, 5:9] = 0.8
    boundaries = np.where(objects > 0, 0.9, 0.0).astype(np.float32)  # no seed inside
    labels = instances(objects, boundaries, obj_threshold=0.5, bnd_threshold=0.5, min_size=1)
    assert labels.max() == 1 and (labels > 0).sum() == 16


def test_obj_threshold_above_every_pixel_gives_no_objects():
    objects, boundaries = two_touching_disks()
    labels = instances(objects, boundaries, obj_threshold=0.96, bnd_threshold=0.5, min_size=1)
    assert labels.max() == 0


def test_stack_segmented_per_slice_with_unique_labels():
    objects, boundaries = two_touching_disks()
    stack_obj = np.stack([objects, np.zeros_like(objects), objects])
    stack_bnd = np.stack([boundaries, np.zeros_like(objects), boundaries])
    labels = instances(stack_obj, stack_bnd, obj_threshold=0.5, bnd_threshold=0.5, min_size=10)
    assert labels.shape == (3, 60, 80) and labels.dtype == np.int32
    assert sorted(np.unique(labels[0])) == [0, 1, 2]
    assert labels[1].max() == 0
    assert sorted(np.unique(labels[2])) == [0, 3, 4]


def test_split_depth_rejoins_a_nucleus_cut_by_a_shallow_dip():
    objects, boundaries = two_touching_disks()  # the ridge dips 1.7 in objects - boundaries
    line = LEFT & (XX == 25)
    objects[line], boundaries[line] = 0.6, 0.45  # dips 0.7 below the core's 0.85
    kw = {"obj_threshold": 0.5, "bnd_threshold": 0.4, "min_size": 10}
    assert instances(objects, boundaries, split_depth=0.0, **kw).max() == 3
    assert instances(objects, boundaries, split_depth=0.5, **kw).max() == 3
    labels = instances(objects, boundaries, split_depth=1.0, **kw)
    assert labels.max() == 2
    assert iou(labels == labels[30, 25], LEFT) > 0.95
    assert iou(labels == labels[30, 53], RIGHT) > 0.95


def reference_survivors(labels, height, depth):
    """Regions whose peak rises at least ``depth`` above the best pass to any higher peak.

    The best pass (the highest lowest point over paths through touching regions) is
    found by a brute-force widest-path search from every region.
    """
    n = labels.max()
    peak = [height[labels == r].max() if r else -np.inf for r in range(n + 1)]
    passes = {}
    for a, b, ha, hb in (
        (labels[:-1], labels[1:], height[:-1], height[1:]),
        (labels[:, :-1], labels[:, 1:], height[:, :-1], height[:, 1:]),
    ):
        touch = (a != b) & (a > 0) & (b > 0)
        for x, y, level in zip(a[touch], b[touch], np.minimum(ha, hb)[touch], strict=True):
            key = (min(x, y), max(x, y))
            passes[key] = max(passes.get(key, -np.inf), level)
    survivors = set()
    for r in range(1, n + 1):
        best = {r: np.inf}  # widest path: relax until nothing improves
        changed = True
        while changed:
            changed = False
            for (x, y), level in passes.items():
                for u, v in ((x, y), (y, x)):
                    if u in best and min(best[u], level) > best.get(v, -np.inf):
                        best[v], changed = min(best[u], level), True
        higher = [best[v] for v in best if v != r and peak[v] > peak[r]]
        if not higher or peak[r] - max(higher) >= depth:
            survivors.add(r)
    return survivors, peak


def bumpy_regions(seed):
    """A smooth random height and the watershed regions of all its peaks (many shallow)."""
    from scipy import ndimage as ndi
    from skimage.morphology import local_maxima
    from skimage.segmentation import watershed

    rng = np.random.default_rng(seed)
    height = ndi.gaussian_filter(rng.normal(size=(60, 80)), 3)
    height /= np.abs(height).max()
    markers = ndi.label(local_maxima(height))[0]
    return watershed(-height, markers, mask=height > -0.3).astype(np.int32), height


@pytest.mark.parametrize("depth", [0.0, 0.1, 0.3, 0.6])
def test_merge_shallow_keeps_exactly_the_deep_peaks(depth):
    labels, height = bumpy_regions(5)  # 31 regions; 16, 5 and 3 peaks 0.1, 0.3, 0.6 deep
    merged = merge_shallow(labels, height, depth)
    survivors, peak = reference_survivors(labels, height, depth)
    assert set(np.unique(merged)) - {0} == survivors
    assert ((merged > 0) == (labels > 0)).all()
    for r in set(np.unique(labels)) - {0} - survivors:  # joined a region with a higher peak
        assert peak[merged[labels == r][0]] > peak[r]
    if depth == 0.0:
        np.testing.assert_array_equal(merged, labels)


def test_shape_mismatch():
    with pytest.raises(DataError, match=r"objects \(4, 4\) and boundaries \(4, 5\) must be the"):
        instances(
            np.zeros((4, 4)), np.zeros((4, 5)), obj_threshold=0.5, bnd_threshold=0.5, min_size=1
        )


def reference_instances(objects, boundaries, *, obj_threshold, bnd_threshold, min_size):
    """The plain algorithm: one watershed over the whole slice, then relabel_sequential."""
    from scipy import ndimage as ndi
    from skimage.segmentation import relabel_sequential, watershed

    if objects.ndim == 3:
        out, offset = np.zeros(objects.shape, np.int32), 0
        for z in range(len(objects)):
            page = reference_instances(
                objects[z],
                boundaries[z],
                obj_threshold=obj_threshold,
                bnd_threshold=bnd_threshold,
                min_size=min_size,
            )
            out[z] = np.where(page > 0, page + offset, 0)
            offset = int(out[z].max(initial=offset))
        return out
    foreground = objects + boundaries > obj_threshold
    markers, n_seeds = ndi.label((objects > obj_threshold) & (boundaries < bnd_threshold))
    components, n_components = ndi.label(foreground)
    seeded = np.zeros(n_components + 1, bool)
    seeded[components[markers > 0]] = True
    unseeded = ~seeded[components] & foreground
    markers[unseeded] = components[unseeded] + n_seeds
    labels = watershed(boundaries - objects, markers, mask=foreground)
    sizes = np.bincount(labels.ravel())
    small = sizes < min_size
    small[0] = True
    return relabel_sequential(np.where(small[labels], 0, labels))[0].astype(np.int32)


def random_maps(seed, shape=(120, 160)):
    """Softmax-like maps of random disks, many touching: cores, 2-pixel rims, blur and noise."""
    from scipy import ndimage as ndi
    from skimage.segmentation import find_boundaries

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.int32)
    for k in range(1, 40):
        cy, cx, r = rng.uniform(0, shape[0]), rng.uniform(0, shape[1]), rng.uniform(4, 12)
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 < r**2] = k
    rim = ndi.binary_dilation(find_boundaries(labels, mode="inner")) & (labels > 0)
    logits = 4 * np.stack([labels == 0, (labels > 0) & ~rim, rim]).astype(np.float32)
    logits += rng.normal(0, 1.5, logits.shape)
    logits = ndi.gaussian_filter(logits, (0, 1.5, 1.5))
    p = np.exp(logits) / np.exp(logits).sum(0)
    return p[1].astype(np.float32), p[2].astype(np.float32)


PARAMS = [(0.5, 0.5, 20), (0.3, 0.2, 1), (0.6, 0.4, 0), (0.5, 0.3, 60)]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("obj", "bnd", "min_size"), PARAMS)
def test_same_labels_as_whole_slice_watershed(seed, obj, bnd, min_size):
    objects, boundaries = random_maps(seed)
    kw = {"obj_threshold": obj, "bnd_threshold": bnd, "min_size": min_size}
    expected = reference_instances(objects, boundaries, **kw)
    assert expected.max() > 10
    np.testing.assert_array_equal(instances(objects, boundaries, **kw), expected)


def without_ties(maps, seed=0):
    """``maps`` plus noise of 1e-4: exact ties in height are broken by skimage's heap layout,
    which the grouping of components changes."""
    rng = np.random.default_rng(seed)
    return [(m + rng.uniform(0, 1e-4, m.shape)).astype(np.float32) for m in maps]


@pytest.mark.parametrize(
    "maps",
    [
        without_ties(two_touching_disks()),
        (np.zeros((30, 40), np.float32), np.zeros((30, 40), np.float32)),  # empty
        (np.full((30, 40), 0.9, np.float32), np.zeros((30, 40), np.float32)),  # all foreground
        [np.stack([m, np.zeros_like(m), m[::-1]]) for m in random_maps(7, (60, 80))],  # stack
    ],
    ids=["touching-disks", "empty", "all-foreground", "stack"],
)
def test_same_labels_as_whole_slice_watershed_special_maps(maps):
    objects, boundaries = (np.asarray(m, np.float32) for m in maps)
    for obj, bnd, min_size in PARAMS:
        kw = {"obj_threshold": obj, "bnd_threshold": bnd, "min_size": min_size}
        expected = reference_instances(objects, boundaries, **kw)
        np.testing.assert_array_equal(instances(objects, boundaries, **kw), expected)


def test_labels_do_not_depend_on_the_watershed_threads_and_groups(monkeypatch):
    from napari_cellseg.segmentation import instances as segment

    objects, boundaries = (np.tile(m, (3, 3)) for m in random_maps(1))
    kw = {"obj_threshold": 0.5, "bnd_threshold": 0.3, "min_size": 5, "split_depth": 0.2}
    results = []
    for threads, group in ((1, 1), (4, 1), (2, 5), (4, 1000)):
        monkeypatch.setattr(segment, "WATERSHED_THREADS", threads)
        monkeypatch.setattr(segment, "WATERSHED_GROUP", group)
        results.append(instances(objects, boundaries, **kw))
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])
    assert results[0].max() > 200


@pytest.mark.parametrize("depth", [0.2, 0.5, 1.0])
def test_merging_per_component_group_equals_merging_the_whole_slice(depth):
    from scipy import ndimage as ndi

    from napari_cellseg.segmentation.instances import remove_small, watershed_labels

    objects, boundaries = (np.tile(m, (2, 2)) for m in random_maps(2))
    noise = ndi.gaussian_filter(np.random.default_rng(0).normal(0, 0.5, objects.shape), 1)
    objects = np.clip(objects + noise.astype(np.float32), 0, 1 - boundaries)  # broken seeds
    unmerged = watershed_labels(objects, boundaries, 0.4, 0.5)
    expected = remove_small(merge_shallow(unmerged, objects - boundaries, depth), 5)
    kw = {"obj_threshold": 0.4, "bnd_threshold": 0.5, "min_size": 5, "split_depth": depth}
    result = instances(objects, boundaries, **kw)
    np.testing.assert_array_equal(result, expected)
    assert result.max() < remove_small(unmerged, 5).max() - 4  # regions were merged


def test_plain_lists_work_as_arrays():
    from napari_cellseg.analysis.matching import matching
    from napari_cellseg.analysis.measure import measure_table
    from napari_cellseg.segmentation.stitching import stitch_slices

    labels = instances([[0.9, 0.9, 0.1]], [[0.0, 0.0, 0.0]], obj_threshold=0.5,
                       bnd_threshold=0.5, min_size=0)  # fmt: skip
    assert labels.tolist() == [[1, 1, 0]]
    assert matching([[0, 2]], [[0, 3]]).thresholds[0.5].tp == 1
    assert measure_table([[[0, 2]], [[0, 2]]], [[[1, 2]], [[1, 4]]], volumes=True)["volume"] == 2
    assert stitch_slices([[[2]], [[5]]], 0.5).tolist() == [[[1]], [[1]]]
