"""Time, peak memory and agreement of the blockwise prediction on large OME-Zarr mosaics.

    python benchmarks/big_image.py --data ../shared/data/dsb2018-fluo/train \\
        --sizes 2048 4096 8192 --agreement 4096

For each size an OME-Zarr mosaic of DSB2018 fluorescence images (written block by block,
never whole in memory) is segmented by ``cellseg predict --output OUT.zarr`` in a process
of its own (``--config nuclei --diameter 24 --block_size 2048``), which reports its own
peak RSS when it ends.  For the sizes in ``--agreement`` the same image is also predicted in memory
as one image, and the blockwise instances are scored against those (AP@0.5); the in-memory
run's seconds (network passes alone, and with the segmentation) give the blockwise
overhead: the child's seconds over the in-memory ones, and the same less the seconds of a
child on a 256 x 256 mosaic (starting Python, importing torch, loading the model).  The last
line is one JSON object: per size the seconds, megapixels per second, peak RSS in MB,
objects, and for those sizes the AP@0.5 and the overhead.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_mosaic(folder: Path, size: int, path: Path, chunk: int = 512) -> None:
    """An OME-Zarr of ``size`` x ``size`` made of the images of ``folder`` side by side."""
    import zarr
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_multiscales_metadata

    from napari_cellseg.data.io import read_image

    tiles = [read_image(p)[0] for p in sorted((folder / "images").iterdir())[:200]]
    tiles = [t.astype(np.uint8) if t.max() < 256 else t for t in tiles]
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    array = group.create_array("0", shape=(size, size), chunks=(chunk, chunk), dtype="uint16")
    write_multiscales_metadata(
        group,
        [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1.0, 1.0]}]}],
        fmt=FormatV04(),
        axes=[{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
    )
    index, y = 0, 0
    while y < size:
        row_height, x = 0, 0
        band = np.zeros((max(t.shape[0] for t in tiles), size), np.uint16)
        while x < size:
            tile = tiles[index % len(tiles)]
            index += 1
            width = min(tile.shape[1], size - x)
            band[: tile.shape[0], x : x + width] = tile[:, :width]
            row_height, x = max(row_height, tile.shape[0]), x + width
        height = min(row_height, size - y)
        array[y : y + height] = band[:height]
        y += height


CHILD = """
import resource, runpy, sys
sys.argv = ["napari_cellseg.predict", *sys.argv[1:]]
try:
    runpy.run_module("napari_cellseg.predict", run_name="__main__")
finally:
    print("peak_rss_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""
"""``cellseg predict`` in a child that reports its own peak RSS last."""


def run_one(size: int, data: Path, block: int, agreement: bool, startup: float = 0.0) -> dict:
    """Segment one mosaic in a child process; its seconds, peak RSS and objects."""
    import zarr

    with tempfile.TemporaryDirectory() as folder:
        mosaic, output = Path(folder) / "mosaic.zarr", Path(folder) / "out.zarr"
        write_mosaic(data, size, mosaic)
        flags = [
            "--config", "nuclei", "--test_data", str(mosaic), "--output", str(output),
            "--diameter", "24", "--block_size", str(block),
        ]  # fmt: skip
        start = time.perf_counter()
        child = subprocess.run(
            [sys.executable, "-c", CHILD, *flags], check=True, capture_output=True, text=True
        )
        seconds = time.perf_counter() - start
        peak = int(child.stderr.strip().splitlines()[-1].removeprefix("peak_rss_kb "))
        labels = zarr.open_group(str(output), mode="r")["labels/instances/0"]
        result = {
            "seconds": round(seconds, 1),
            "megapixels_per_second": round(size * size / 1e6 / seconds, 3),
            "peak_rss_mb": round(peak / 1024),
            "objects": int(
                zarr.open_group(str(output), mode="r").attrs["napari-cellseg"]["objects"]
            ),
        }
        if agreement:
            from napari_cellseg.analysis.matching import matching
            from napari_cellseg.inference.predictor import load_model

            predictor = load_model("nuclei")
            image = np.asarray(zarr.open_group(str(mosaic), mode="r")["0"])
            start = time.perf_counter()
            maps = predictor.predict(image, diameter=24)
            network = time.perf_counter() - start
            whole = predictor.instances(*maps)
            in_memory = time.perf_counter() - start
            scores = matching(whole, np.asarray(labels), ignore_label=None)
            result["ap50_vs_one_block"] = round(scores.thresholds[0.5].ap, 4)
            result["in_memory_network_seconds"] = round(network, 1)
            result["in_memory_seconds"] = round(in_memory, 1)
            result["overhead_vs_in_memory"] = round(seconds / in_memory, 2)
            result["overhead_after_startup"] = round((seconds - startup) / in_memory, 2)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/dsb2018-fluo/train"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--agreement", type=int, nargs="*", default=[2048, 4096])
    parser.add_argument("--block_size", type=int, default=2048)
    args = parser.parse_args()
    # a child on a 256 x 256 mosaic: starting Python, importing torch, loading the model
    results = {"startup_seconds": run_one(256, args.data, args.block_size, False)["seconds"]}
    for size in args.sizes:
        results[str(size)] = run_one(
            size, args.data, args.block_size, size in args.agreement, results["startup_seconds"]
        )
        print(size, results[str(size)], file=sys.stderr)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
