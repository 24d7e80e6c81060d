"""Prediction speed on a 2048 x 2048 image, and what the tiling machinery costs.

- full: :meth:`Predictor.predict` (normalisation, tiling, batched forward passes,
  blending, cropping) plus :meth:`Predictor.instances` (the seeded watershed).
- bare: the model's forward passes alone on as many tiles of the same side
  (``--tile_size``, default 256), in batches of the same size, under
  ``torch.inference_mode`` and in the predictor's precision (bfloat16 mixed precision
  where native: ``device.autocast``), in the same run.  Full
  and bare runs alternate ``--repeat`` times and the fastest of each counts (the
  machine may be shared).
- ``overhead_ratio`` = full / bare seconds (target <= 1.25); ``predict_ratio`` the same
  without the watershed; ``overhead_ratio_median`` the median over the repeats of each
  full run's time over the bare run right after it (less sensitive to a machine whose
  speed drifts).
- FLOPs of one forward pass counted with ``torch.utils.flop_counter.FlopCounterMode``;
  ``flops_fraction`` = the model's FLOP/s in the bare run / the FLOP/s of a 2048 x 2048
  float32 matrix multiplication (``torch.mm``) measured here.
- Memory: peak RSS of the process (``resource.getrusage``, includes torch) and the peak
  of numpy/Python allocations during the full run (``tracemalloc``).

The model is ``--config X.yaml`` (a trained model), else an untrained network built from
the TrainConfig flags on top of the quality benchmark's CPU model (speed does not depend
on the weights).  The image is a 512 x 512 synthetic nuclei image tiled 4 x 4, predicted
in one pass at its own scale (for a model trained with ``object_diameter`` its objects
are taken to have that diameter: no diameter estimation).  The last line printed is one
JSON object.

Example: ``python benchmarks/predict_speed.py --tile_batch 4``
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tracemalloc

import numpy as np
from quality import CPU_SETTINGS

from napari_cellseg.config import PredictConfig, TrainConfig
from napari_cellseg.config_io import add_config_arguments, config_from_args
from napari_cellseg.data.synthetic import make_nuclei
from napari_cellseg.device import autocast, precision_name, resolve_device
from napari_cellseg.inference.predictor import Predictor, load_model, tiling_options
from napari_cellseg.model_file import ModelFile
from napari_cellseg.models.registry import build_model, prepare_batch, prepare_model

SIDE = 2048


def make_predictor(argv: list[str] | None) -> tuple[Predictor, int]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="", help="a trained model's yaml")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (the best counts)")
    add_config_arguments(parser, TrainConfig, skip=("device", "overwrite"))
    add_config_arguments(
        parser,
        PredictConfig,
        skip=("config", "test_data", "output", "plot", "architecture", "channels"),
    )
    args = parser.parse_args(argv)
    import torch

    settings = config_from_args(PredictConfig, args)
    tiling = tiling_options(settings)
    if args.config:
        return load_model(args.config, settings.device, **tiling), args.repeat
    cfg = config_from_args(TrainConfig, args, base=CPU_SETTINGS)
    device = resolve_device(settings.device)
    torch.manual_seed(0)
    model = prepare_model(build_model(cfg), device).eval()
    return Predictor(model, ModelFile.unsaved(cfg), device, **tiling), args.repeat


def matmul_flops(n: int = 2048, repeat: int = 5) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best


def main(argv: list[str] | None = None) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    predictor, repeat = make_predictor(argv)
    cfg, batch = predictor.config, predictor.tile_batch
    image = np.tile(make_nuclei((SIDE // 4, SIDE // 4), seed=0)[0], (4, 4))
    tile = predictor.tile_side(image.shape)
    diameter = cfg.object_diameter  # one pass at the image's own scale
    n_tiles = predictor.count_tiles(image.shape, diameter)
    print(
        f"{cfg.architecture} levels {cfg.unet_levels} filters {cfg.start_filters}, tiles of "
        f"{tile} overlapping {predictor.overlap}, batch {batch}: {n_tiles} tiles, "
        f"{torch.get_num_threads()} threads, device {predictor.device}, "
        f"{precision_name(predictor.device, cfg.mixed_precision)}"
    )

    tiles = torch.rand(batch, cfg.channels, tile, tile)
    batches = [min(batch, n_tiles - i) for i in range(0, n_tiles, batch)]

    def full() -> tuple[float, float]:
        started = time.perf_counter()
        maps = predictor.predict(image, diameter=diameter)
        predicted = time.perf_counter()
        predictor.instances(*maps)
        return predicted - started, time.perf_counter() - started

    def bare() -> float:
        started = time.perf_counter()
        with torch.inference_mode(), autocast(predictor.device, cfg.mixed_precision):
            for size in batches:
                predictor.model(prepare_batch(tiles[:size], predictor.device))
        return time.perf_counter() - started

    predictor.predict(image[: 2 * tile, : 2 * tile], diameter=diameter)  # warm-up
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    runs, bare_runs = [], []
    for _ in range(repeat):  # interleaved, so a change of machine load hits both alike
        runs.append(full())
        bare_runs.append(bare())
    predict_s, full_s = min(r[0] for r in runs), min(r[1] for r in runs)
    bare_s = min(bare_runs)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()  # a separate run: tracing slows Python code down
    labels = predictor.instances(*predictor.predict(image, diameter=diameter))
    numpy_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    with (
        FlopCounterMode(display=False) as counter,
        torch.inference_mode(),
        autocast(predictor.device, cfg.mixed_precision),
    ):
        predictor.model(prepare_batch(tiles[:1], predictor.device))
    flops_per_tile = counter.get_total_flops()
    model_flops = flops_per_tile * n_tiles / bare_s
    machine_flops = matmul_flops()

    megapixels = image.size / 1e6
    result = {
        "precision": precision_name(predictor.device, cfg.mixed_precision),
        "seconds": round(full_s, 2),
        "megapixels_per_s": round(megapixels / full_s, 3),
        "predict_seconds": round(predict_s, 2),
        "segment_seconds": round(full_s - predict_s, 2),
        "bare_forward_seconds": round(bare_s, 2),
        "overhead_ratio": round(full_s / bare_s, 3),
        "overhead_ratio_median": round(
            float(np.median([r[1] / b for r, b in zip(runs, bare_runs, strict=True)])), 3
        ),
        "predict_ratio": round(predict_s / bare_s, 3),
        "tiles": n_tiles,
        "gflops_per_tile": round(flops_per_tile / 1e9, 2),
        "model_gflops_per_s": round(model_flops / 1e9, 2),
        "matmul_gflops_per_s": round(machine_flops / 1e9, 2),
        "flops_fraction": round(model_flops / machine_flops, 3),
        "peak_rss_mb": round(rss_mb, 1),
        "rss_before_mb": round(rss_before, 1),
        "peak_numpy_mb": round(numpy_peak / 2**20, 1),
        "objects": int(labels.max()),
    }
    print(
        f"{megapixels:.2f} MP in {full_s:.2f} s ({result['megapixels_per_s']} MP/s): predict "
        f"{predict_s:.2f} s + segment {full_s - predict_s:.2f} s; bare forward {bare_s:.2f} s "
        f"-> overhead x{result['overhead_ratio']} (predict only x{result['predict_ratio']}; "
        f"median of the {repeat} paired runs x{result['overhead_ratio_median']})"
    )
    print(
        f"{result['gflops_per_tile']} GFLOP per tile: model {result['model_gflops_per_s']} "
        f"GFLOP/s = {result['flops_fraction']:.0%} of matmul "
        f"{result['matmul_gflops_per_s']} GFLOP/s"
    )
    print(
        f"peak RSS {result['peak_rss_mb']} MB ({rss_before:.0f} MB before predicting), "
        f"peak numpy/Python allocations while predicting {result['peak_numpy_mb']} MB"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
