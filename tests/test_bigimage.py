"""Large images block by block: lazy TIFF and OME-Zarr in, seamless labels in an OME-Zarr out."""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import pytest
import tifffile
import zarr

from napari_cellseg.analysis.matching import matching
from napari_cellseg.bigimage import zarr_output
from napari_cellseg.bigimage.blockwise import BlockGrid, segment_blockwise
from napari_cellseg.bigimage.sources import open_lazy
from napari_cellseg.bigimage.zarr_output import read_output
from napari_cellseg.cli import main as cellseg
from napari_cellseg.data.io import read_image
from napari_cellseg.errors import DataError
from napari_cellseg.inference.predictor import load_model
from napari_cellseg.sharing.networks import SAMPLE_IMAGE

BLOCK = 128  # 3 x 3 blocks over the crop: their faces cut many nuclei


@pytest.fixture(scope="module")
def predictor():
    return load_model("nuclei")


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A 300 x 360 crop of the real DSB2018 sample (about 50 nuclei)."""
    return read_image(SAMPLE_IMAGE)[0][100:400, 200:560]


@pytest.fixture
def tiff(tmp_path, image):
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, image, tile=(64, 64))
    return path


def labels_of(path) -> np.ndarray:
    return np.asarray(zarr.open_group(str(path), mode="r")["labels/instances/0"])


def test_blockwise_instances_equal_the_in_memory_ones(tmp_path, predictor):
    image = read_image(SAMPLE_IMAGE)[0]  # 520 x 696, 147 nuclei, 12 blocks
    tiff = tmp_path / "sample.tif"
    tifffile.imwrite(tiff, image, tile=(64, 64))
    before = hashlib.sha256(tiff.read_bytes()).hexdigest()
    result = segment_blockwise(
        open_lazy(tiff), predictor, tmp_path / "out.zarr", block=192, diameter=24
    )
    assert result.blocks == 12 and hashlib.sha256(tiff.read_bytes()).hexdigest() == before
    found = labels_of(result.path)
    whole = predictor.instances(*predictor.predict(image, diameter=24))
    scores = matching(whole, found, ignore_label=None)
    assert scores.thresholds[0.5].ap >= 0.99 and len(np.unique(whole)) > 140
    values = np.unique(found[found > 0])
    assert values.tolist() == list(range(2, 2 + result.objects))  # one label each, none reused
    root = zarr.open_group(str(result.path), mode="r")
    assert root.attrs["napari-cellseg"]["complete"] and "provisional" not in root
    assert root["0"].shape == (2, *image.shape)


def test_the_output_is_ome_zarr_with_labels_and_a_pyramid(tmp_path, tiff, predictor, monkeypatch):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Multiscales, Reader

    monkeypatch.setattr(zarr_output, "PYRAMID_SIDE", 100)  # 300 x 360: 150 x 180, 75 x 90
    segment_blockwise(open_lazy(tiff), predictor, tmp_path / "out.zarr", block=BLOCK, diameter=24)
    nodes = list(Reader(parse_url(str(tmp_path / "out.zarr")))())
    kinds = [type(spec) for node in nodes for spec in node.specs]
    assert Multiscales in kinds and Label in kinds
    assert [len(node.data) for node in nodes if node.data] == [3, 3]  # maps, labels
    levels = read_output(tmp_path / "out.zarr")
    assert [level.shape for level in levels["labels"]] == [(300, 360), (150, 180), (75, 90)]
    assert [level.shape for level in levels["objects"]] == [(300, 360), (150, 180), (75, 90)]
    full = levels["labels"][0].compute()
    assert np.array_equal(levels["labels"][2].compute(), full[::4, ::4])
    assert np.array_equal(levels["boundaries"][1], levels["boundaries"][0][::2, ::2])
    with pytest.raises(DataError, match="not a finished"):
        read_output(tiff.parent)


def test_an_interrupted_run_resumes_without_redoing_blocks(tmp_path, tiff, predictor):
    stop, seen = threading.Event(), []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done == 4:
            stop.set()

    output = tmp_path / "out.zarr"
    with pytest.raises(DataError, match="run the same command again"):
        segment_blockwise(
            open_lazy(tiff), predictor, output, block=BLOCK, diameter=24,
            progress=progress, cancel=stop,
        )  # fmt: skip
    resumed = []
    segment_blockwise(
        open_lazy(tiff), predictor, output, block=BLOCK, diameter=24,
        progress=lambda done, total: resumed.append(done),
    )  # fmt: skip
    assert resumed[:2] == [4, 5]  # the 4 finished blocks were not predicted again
    straight = segment_blockwise(
        open_lazy(tiff), predictor, tmp_path / "straight.zarr", block=BLOCK, diameter=24
    )
    assert np.array_equal(labels_of(output), labels_of(straight.path))
    with pytest.raises(DataError, match="finished results already"):
        segment_blockwise(open_lazy(tiff), predictor, output, block=BLOCK, diameter=24)


def test_an_ome_zarr_channel_is_read_lazily(tmp_path, image):
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_image

    group = zarr.open_group(str(tmp_path / "in.zarr"), mode="w", zarr_format=2)
    two = np.stack([np.zeros_like(image), image])
    write_image(two, group, axes="cyx", fmt=FormatV04(), storage_options={"chunks": (1, 64, 64)})
    lazy = open_lazy(tmp_path / "in.zarr", channel=1)
    assert lazy.axes == "cyx" and lazy.shape == image.shape
    assert np.array_equal(np.asarray(lazy.data), image)
    with pytest.raises(DataError, match="2 channels: choose one with --channel"):
        open_lazy(tmp_path / "in.zarr")


@pytest.fixture(scope="module")
def cluster():
    """A dask.distributed cluster of 2 workers over TCP (threads of this process)."""
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://",
        dashboard_address=None,
    )  # fmt: skip
    with cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        yield cluster.scheduler_address


def test_a_dask_cluster_over_tcp_predicts_the_same_labels(
    tmp_path, tiff, predictor, cluster, monkeypatch
):
    from napari_cellseg.bigimage import tasks

    local = segment_blockwise(
        open_lazy(tiff), predictor, tmp_path / "here.zarr", block=BLOCK, diameter=24
    )
    spread = segment_blockwise(
        open_lazy(tiff), predictor, tmp_path / "there.zarr", block=BLOCK, diameter=24,
        scheduler=cluster,
    )  # fmt: skip
    assert np.array_equal(labels_of(spread.path), labels_of(local.path))
    monkeypatch.setattr(tasks, "CONNECT_TIMEOUT", "1s")
    with pytest.raises(DataError, match="Cannot reach the dask scheduler"):
        segment_blockwise(
            open_lazy(tiff), predictor, tmp_path / "none.zarr", block=BLOCK, diameter=24,
            scheduler="tcp://127.0.0.1:9",
        )  # fmt: skip


def test_a_folder_is_one_task_per_image_on_the_cluster(tmp_path, image, cluster, capsys):
    images = tmp_path / "data" / "images"
    images.mkdir(parents=True)
    for name, crop in (("a", image[:150]), ("b", image[150:]), ("c", image[:, :180])):
        tifffile.imwrite(images / f"{name}.tif", crop)
    (images / "broken.tif").write_bytes(b"not a tiff")
    flags = ["predict", "--config", "nuclei", "--test_data", str(tmp_path / "data"), "--measure"]
    assert cellseg([*flags, "--output", str(tmp_path / "here"), "--diameter", "24"]) == 2
    assert cellseg(
        [*flags, "--output", str(tmp_path / "there"), "--diameter", "24", "--scheduler", cluster]
    ) == 2  # fmt: skip
    assert capsys.readouterr().err.count("1 of 4 images were skipped") == 2  # the broken one
    for name in ("a", "b", "c"):
        here = tifffile.imread(tmp_path / "here" / f"{name}_labels.tif")
        assert here.max() > 10
        assert np.array_equal(here, tifffile.imread(tmp_path / "there" / f"{name}_labels.tif"))
    summary = (tmp_path / "there" / "summary.csv").read_text()
    assert summary == (tmp_path / "here" / "summary.csv").read_text()
    assert [row.split(",")[0] for row in summary.splitlines()[1:]] == ["a", "b", "c"]


def test_bad_inputs_name_the_path_and_the_fix(tmp_path, image):
    plain = zarr.open_group(str(tmp_path / "plain.zarr"), mode="w", zarr_format=2)
    plain.create_array("0", shape=(8, 8), dtype="uint8")
    with pytest.raises(DataError, match="no OME-Zarr metadata"):
        open_lazy(tmp_path / "plain.zarr")
    series = tmp_path / "series.tif"
    tifffile.imwrite(series, np.stack([image] * 3), metadata={"axes": "TYX"})
    with pytest.raises(DataError, match="3 planes along 't'"):
        open_lazy(series)
    rows = tmp_path / "rows.tif"
    tifffile.imwrite(rows, image, rowsperstrip=1)
    with pytest.raises(DataError, match="chunks of 1 x 360 pixels"):
        open_lazy(rows)
    with pytest.raises(DataError, match="does not exist"):
        open_lazy(tmp_path / "missing.tif")


def test_the_cli_predicts_block_by_block_into_a_zarr(tmp_path, tiff, capsys):
    flags = ["predict", "--config", "nuclei", "--test_data", str(tiff), "--diameter", "24"]
    output = tmp_path / "out.zarr"
    assert cellseg([*flags, "--output", str(output), "--block_size", "128", "--measure"]) == 0
    out = capsys.readouterr().out  # blocks of 128 rounded to the model's tile step, 224
    assert "objects in 4 blocks of 'big.tif' (300 x 360)" in out
    assert labels_of(output).max() > 40
    rows = (tmp_path / "out_measurements.csv").read_text().splitlines()
    assert rows[0].startswith("label,area,centroid_y") and len(rows) == labels_of(output).max()


def test_measurements_block_by_block_equal_those_of_the_whole_labels(
    tmp_path, tiff, image, predictor
):
    from napari_cellseg.analysis.measure import measure_objects
    from napari_cellseg.bigimage.blockwise import measure_result

    result = segment_blockwise(
        open_lazy(tiff), predictor, tmp_path / "o.zarr", block=BLOCK, diameter=24
    )
    table = measure_result(result, open_lazy(tiff), BLOCK)
    whole = measure_objects(labels_of(result.path), image)
    assert table.keys() == whole.keys() and len(table["label"]) == result.objects
    for key in whole:
        np.testing.assert_allclose(table[key], whole[key], rtol=1e-6, atol=1e-6, err_msg=key)


def test_the_block_grid_covers_the_image_once():
    grid = BlockGrid((300, 360), 128, 20, 30)
    covered = np.zeros((300, 360), int)
    for index in range(len(grid)):
        covered[grid.core(index)] += 1
    assert len(grid) == 9 and (covered == 1).all()
    assert grid.window(4) == (slice(108, 286), slice(108, 286))


def test_blocks_are_aligned_on_the_whole_images_tiles(predictor):
    from napari_cellseg.bigimage.blockwise import aligned_grid
    from napari_cellseg.inference.tiling import tile_starts

    grid = aligned_grid((4096, 4096), 2048, 72, predictor, 24, 24)
    whole = set(tile_starts(4096, 256, predictor.overlap, predictor.align))
    for index in range(len(grid)):
        rows = grid.window(index)[0]
        starts = tile_starts(rows.stop - rows.start, 256, predictor.overlap, predictor.align)
        core = grid.core(index)[0]
        covering = [
            rows.start + s for s in starts if core.start < rows.start + s + 256 and
            rows.start + s < core.stop
        ]  # fmt: skip
        assert set(covering) <= whole  # every tile over the block is one of the image's
        assert len(covering) == len(starts)  # and no tile covers only the halo
    assert (grid.block, grid.before, grid.after) == (2240, 224, 32)  # 2 blocks a side


def _limit_file_size() -> None:
    """In the child: files cannot grow past 40 kB, as on a full disk (EFBIG, not a signal)."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))


def test_a_full_disk_stops_with_a_message_and_nothing_that_looks_complete(tmp_path, tiff):
    import subprocess
    import sys

    output = tmp_path / "out.zarr"
    command = [
        sys.executable, "-m", "napari_cellseg.predict", "--config", "nuclei", "--test_data",
        str(tiff), "--diameter", "24", "--block_size", "128", "--output", str(output),
    ]  # fmt: skip
    failed = subprocess.run(
        command, capture_output=True, text=True, preexec_fn=_limit_file_size, timeout=300
    )
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert f"Cannot write to '{output}'" in failed.stderr and "free disk space" in failed.stderr
    state = dict(zarr.open_group(str(output), mode="r").attrs)["napari-cellseg"]
    assert not state["complete"]
    assert subprocess.run(command, capture_output=True, timeout=300).returncode == 0  # goes on
    assert labels_of(output).max() > 40


def test_the_diameter_is_estimated_where_the_objects_are(image, monkeypatch):
    import dask.array as da

    from napari_cellseg.bigimage import statistics

    monkeypatch.setattr(statistics, "SAMPLE_PIXELS", 250_000)  # every 4th row and column
    slide = np.zeros((2000, 2000), image.dtype)  # nuclei in a corner, the centre empty
    slide[1500:1800, 100:460] = image
    sample = statistics.strided_sample(da.from_array(slide, chunks=500))
    assert sample.stride == 4 and sample.high > sample.low
    rows, cols = statistics.diameter_region(sample, slide.shape)
    assert rows.stop - rows.start == cols.stop - cols.start == 1024
    assert rows.start <= 1500 and 1800 <= rows.stop and cols.start == 0  # the whole crop
    plain = statistics.strided_sample(da.from_array(np.ones((3000, 3000)), chunks=500))
    assert statistics.diameter_region(plain, (3000, 3000)) == (slice(988, 2012),) * 2


def test_a_z_stack_is_segmented_plane_by_plane_with_labels_unique_across_planes(
    tmp_path, image, predictor, capsys
):
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_image

    planes = np.stack([image, image[:, ::-1], image[::-1]])  # three different planes
    group = zarr.open_group(str(tmp_path / "stack.zarr"), mode="w", zarr_format=2)
    write_image(planes, group, axes="zyx", fmt=FormatV04(), storage_options={"chunks": (1, 64, 64)})
    lazy = open_lazy(tmp_path / "stack.zarr")
    assert lazy.planes == 3 and lazy.shape == image.shape
    result = segment_blockwise(lazy, predictor, tmp_path / "out.zarr", block=BLOCK, diameter=24)
    found = labels_of(result.path)
    assert found.shape == planes.shape and result.blocks == 3 * 4
    values = np.unique(found[found > 0])
    assert values.tolist() == list(range(2, 2 + result.objects))
    for z in range(3):  # each plane as the in-memory path segments it
        whole = predictor.instances(*predictor.predict(planes[z], diameter=24))
        assert matching(whole, found[z], ignore_label=None).thresholds[0.5].ap >= 0.99
        if z:
            assert not set(np.unique(found[z])) & set(np.unique(found[z - 1])) - {0}
    flags = ["predict", "--config", "nuclei", "--test_data", str(tmp_path / "stack.zarr")]
    flags += ["--diameter", "24", "--block_size", "128", "--measure"]
    assert cellseg([*flags, "--output", str(tmp_path / "cli.zarr")]) == 0
    rows = (tmp_path / "cli_measurements.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert header[:3] == ["page", "label", "area"]  # as the in-memory tables of a stack
    assert {row.split(",")[0] for row in rows[1:]} == {"0", "1", "2"}
