"""Training throughput: the full training step against the bare model step, on the CPU.

- full: the training engine itself (:func:`napari_cellseg.engine.train.train`) on
  synthetic nuclei (:func:`napari_cellseg.data.synthetic.make_nuclei`, 200x200 like the
  seed's data, resized to ``im_dim``) held in memory: SegmentationDataset with
  augmentation, a DataLoader with the worker count the engine chooses
  (``engine.device.default_num_workers``: 1 on 2 cores), the step, the loss read-out,
  the epoch metrics and the event per batch.  Timed from the end of batch ``warmup`` to
  the end of batch ``warmup + steps``.
- bare: forward, loss, backward and Adam step of the same network on one batch of
  pre-made tensors already on the device.

``overhead_ratio`` = bare / full images per second: 1.0 means the data pipeline and the
bookkeeping cost nothing.  ``--memory_format`` overrides the choice of
:func:`napari_cellseg.models.registry.prepare_model` (``auto``) for both, to re-measure
whether channels-last is faster.  The last line printed is one JSON object.

Example: ``python benchmarks/train_throughput.py --architecture unet --start_filters 16``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

from napari_cellseg.config import TrainConfig
from napari_cellseg.data.io import stacks_from_arrays
from napari_cellseg.data.synthetic import make_nuclei
from napari_cellseg.engine.device import default_num_workers
from napari_cellseg.engine.events import BatchEnded
from napari_cellseg.engine.train import TrainData, train
from napari_cellseg.models import registry

SEED_IMAGE_SHAPE = (200, 200)
MEMORY_FORMATS = {
    "auto": registry.CHANNELS_LAST_DEVICES,
    "channels_last": frozenset({"cpu"}),
    "contiguous": frozenset(),
}


def full_step_rate(cfg: TrainConfig, warmup: int, steps: int) -> float:
    """Images per second of the training engine's batches ``warmup + 1 .. warmup + steps``."""
    batches = warmup + steps
    n_images = -(-(batches + 1) * cfg.batch // (1 + cfg.augments))  # one epoch holds them all
    pairs = [make_nuclei(SEED_IMAGE_SHAPE, seed=i) for i in range(n_images)]
    stacks = stacks_from_arrays([p[0] for p in pairs], [p[1] for p in pairs])
    with tempfile.TemporaryDirectory() as folder:
        run_cfg = dataclasses.replace(cfg, model=str(Path(folder) / "bench.pt"))
        started = None
        events = train(run_cfg, data=TrainData(train=stacks, val=[]))
        for event in events:
            if isinstance(event, BatchEnded):
                if event.batch + 1 == warmup:
                    started = time.perf_counter()
                if event.batch + 1 == batches:
                    seconds = time.perf_counter() - started
                    break
        events.close()
    return steps * cfg.batch / seconds


def bare_step_rate(cfg: TrainConfig, warmup: int, steps: int) -> float:
    """Images per second of forward + loss + backward + optimizer step on ready tensors."""
    import torch

    from napari_cellseg.engine.losses import compute_loss

    torch.manual_seed(cfg.seed)
    device = torch.device("cpu")
    model = registry.prepare_model(registry.build_model(cfg), device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    shape = (cfg.batch, 1, cfg.im_dim, cfg.im_dim)
    objects = (torch.rand(shape) > 0.6).float()
    boundaries = (torch.rand(shape) > 0.9).float()
    batch = {
        "image": registry.prepare_batch(torch.rand(cfg.batch, cfg.channels, *shape[2:]), device),
        "objects": objects,
        "boundaries": boundaries,
        "ignore": torch.zeros(shape),
        "classes": torch.where(boundaries[:, 0] > 0, 2, objects[:, 0].long()),
    }
    for step in range(warmup + steps):
        if step == warmup:
            started = time.perf_counter()
        loss, _ = compute_loss(cfg, model(batch["image"]), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return steps * cfg.batch / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> dict:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    defaults = TrainConfig()
    parser.add_argument("--architecture", default=defaults.architecture, choices=("dcan", "unet"))
    parser.add_argument("--batch", type=int, default=defaults.batch)
    parser.add_argument("--im_dim", type=int, default=defaults.im_dim)
    parser.add_argument("--start_filters", type=int, default=defaults.start_filters)
    parser.add_argument("--steps", type=int, default=8, help="timed steps of each kind")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (>= 1)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--memory_format", default="auto", choices=sorted(MEMORY_FORMATS))
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be at least 1 (the first batch starts the loader)")

    torch.set_num_threads(args.threads)
    registry.CHANNELS_LAST_DEVICES = MEMORY_FORMATS[args.memory_format]
    cfg = TrainConfig(
        architecture=args.architecture,
        batch=args.batch,
        im_dim=args.im_dim,
        start_filters=args.start_filters,
        epochs=1,
        device="cpu",
        tune_postprocess=False,
    )
    workers = default_num_workers(cfg.num_workers)
    print(
        f"{cfg.architecture} start_filters={cfg.start_filters} im_dim={cfg.im_dim} "
        f"batch={cfg.batch} threads={args.threads} loader workers={workers} "
        f"memory_format={args.memory_format} "
        f"(channels_last on cpu: {'cpu' in registry.CHANNELS_LAST_DEVICES})",
        flush=True,
    )
    bare = bare_step_rate(cfg, args.warmup, args.steps)
    print(f"bare model step: {bare:.3f} images/s", flush=True)
    full = full_step_rate(cfg, args.warmup, args.steps)
    print(f"full training step: {full:.3f} images/s", flush=True)
    result = {
        "architecture": cfg.architecture,
        "start_filters": cfg.start_filters,
        "im_dim": cfg.im_dim,
        "batch": cfg.batch,
        "memory_format": args.memory_format,
        "num_workers": workers,
        "images_per_s": round(full, 4),
        "bare_images_per_s": round(bare, 4),
        "overhead_ratio": round(bare / full, 4),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
