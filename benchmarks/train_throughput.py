"""Training throughput: the full training step against the bare model step, on the CPU.

- full: the training engine itself (:func:`napari_cellseg.training.loop.train`) on
  synthetic nuclei (:func:`napari_cellseg.data.synthetic.make_nuclei`, 200x200 like the
  seed's data, resized to ``im_dim``) held in memory: SegmentationDataset with
  augmentation, a DataLoader with the worker count the engine chooses
  (``device.default_num_workers``: 1 on 2 cores), the step, the loss read-out,
  the epoch metrics and the event per batch.  Timed from the end of batch ``warmup`` to
  the end of batch ``warmup + steps``.
- bare: forward, loss, backward and Adam step of the same network on one batch of
  pre-made tensors already on the device.

``overhead_ratio`` = bare / full images per second: 1.0 means the data pipeline and the
bookkeeping cost nothing.  ``--memory_format`` overrides the choice of
:func:`napari_cellseg.models.registry.prepare_model` (``auto``) for both.
``--compare_memory_formats`` instead times only the bare step, contiguous against
channels-last, alternating the two step by step so that both see the same load from
other processes (the evidence behind ``registry.CHANNELS_LAST_DEVICES``).

The last line printed is one JSON object.  Timings on a shared machine are noisy: run
it more than once.

Example: ``python benchmarks/train_throughput.py --architecture unet --start_filters 16``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from napari_cellseg.config import TrainConfig
from napari_cellseg.data.stacks import stacks_from_arrays
from napari_cellseg.data.synthetic import make_nuclei
from napari_cellseg.device import autocast, default_num_workers, precision_name
from napari_cellseg.models import registry
from napari_cellseg.training.events import BatchEnded
from napari_cellseg.training.inputs import TrainData
from napari_cellseg.training.loop import train

SEED_IMAGE_SHAPE = (200, 200)
FORMATS = ("contiguous", "channels_last")


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


def make_bare_step(cfg: TrainConfig, channels_last: bool) -> Callable[[], None]:
    """One forward + loss + backward + Adam step of a new network on a fixed CPU batch."""
    import torch

    from napari_cellseg.training.losses import compute_loss

    torch.manual_seed(cfg.seed)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = registry.build_model(cfg).to(memory_format=memory_format).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    shape = (cfg.batch, 1, cfg.im_dim, cfg.im_dim)
    objects = (torch.rand(shape) > 0.6).float()
    boundaries = (torch.rand(shape) > 0.9).float()
    batch = {
        "image": torch.rand(cfg.batch, cfg.channels, *shape[2:]).to(memory_format=memory_format),
        "objects": objects,
        "boundaries": boundaries,
        "ignore": torch.zeros(shape),
        "classes": torch.where(boundaries[:, 0] > 0, 2, objects[:, 0].long()),
    }

    def step() -> None:
        with autocast("cpu", cfg.mixed_precision):
            logits = model(batch["image"])
        loss, _ = compute_loss(cfg, logits, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def bare_step_rate(cfg: TrainConfig, warmup: int, steps: int) -> float:
    """Images per second of the bare step in the format ``prepare_model`` uses on the CPU."""
    step = make_bare_step(cfg, channels_last="cpu" in registry.CHANNELS_LAST_DEVICES)
    for _ in range(warmup):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * cfg.batch / (time.perf_counter() - started)


def compare_memory_formats(cfg: TrainConfig, warmup: int, steps: int) -> dict[str, float]:
    """Images per second of the bare step, contiguous vs. channels-last, steps interleaved.

    Alternating the two networks step by step exposes both to the same load from other
    processes; the median step time of each is used.
    """
    runs = {name: make_bare_step(cfg, name == "channels_last") for name in FORMATS}
    for step in runs.values():
        for _ in range(warmup):
            step()
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(steps):
        for name, step in runs.items():
            started = time.perf_counter()
            step()
            seconds[name].append(time.perf_counter() - started)
    rates = {f"{name}_images_per_s": cfg.batch / statistics.median(seconds[name]) for name in runs}
    rates["channels_last_speedup"] = (
        rates["channels_last_images_per_s"] / rates["contiguous_images_per_s"]
    )
    return {key: round(value, 4) for key, value in rates.items()}


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
    parser.add_argument(
        "--memory_format",
        default="auto",
        choices=("auto", *FORMATS),
        help="auto: what prepare_model chooses on the CPU",
    )
    parser.add_argument(
        "--no_mixed_precision",
        action="store_true",
        help="compute in float32 even where bfloat16 is native (setting mixed_precision)",
    )
    parser.add_argument(
        "--compare_memory_formats",
        action="store_true",
        help="only time the bare step, contiguous against channels-last",
    )
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be at least 1 (the first batch starts the loader)")

    torch.set_num_threads(args.threads)
    if args.memory_format != "auto":
        cpu = {"cpu"} if args.memory_format == "channels_last" else set()
        registry.CHANNELS_LAST_DEVICES = frozenset(cpu)
    cfg = TrainConfig(
        architecture=args.architecture,
        batch=args.batch,
        im_dim=args.im_dim,
        start_filters=args.start_filters,
        epochs=1,
        device="cpu",
        tune_postprocess=False,
        mixed_precision=not args.no_mixed_precision,
    )
    workers = default_num_workers(cfg.num_workers)
    result = {
        "architecture": cfg.architecture,
        "start_filters": cfg.start_filters,
        "im_dim": cfg.im_dim,
        "batch": cfg.batch,
        "threads": args.threads,
        "precision": precision_name("cpu", cfg.mixed_precision),
    }
    if args.compare_memory_formats:
        result.update(compare_memory_formats(cfg, args.warmup, args.steps))
    else:
        channels_last = "cpu" in registry.CHANNELS_LAST_DEVICES
        print(f"loader workers: {workers}, channels_last: {channels_last}", flush=True)
        bare = bare_step_rate(cfg, args.warmup, args.steps)
        print(f"bare model step: {bare:.3f} images/s", flush=True)
        full = full_step_rate(cfg, args.warmup, args.steps)
        print(f"full training step: {full:.3f} images/s", flush=True)
        result.update(
            num_workers=workers,
            channels_last=channels_last,
            images_per_s=round(full, 4),
            bare_images_per_s=round(bare, 4),
            overhead_ratio=round(bare / full, 4),
        )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
