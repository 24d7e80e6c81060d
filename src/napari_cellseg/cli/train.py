"""``python -m napari_cellseg.train``: the seed tool's training command, same flags.

Example::

    python -m napari_cellseg.train --architecture unet --epochs 100 --batch 4 \\
        --augments 2 --trim_method resize --train_data data/train --val_data data/val \\
        --model models/nuclei.pt

The same flags train one model on several GPUs or machines under torchrun, e.g.
``torchrun --nproc_per_node 4 -m napari_cellseg.train ...``; only rank 0 prints.
"""

from __future__ import annotations

import argparse
import sys
import threading

from napari_cellseg.cli.common import build_parser, report_errors, stop_on_signals
from napari_cellseg.config import TrainConfig
from napari_cellseg.config_io import config_from_args


def make_parser(prog: str = "python -m napari_cellseg.train") -> argparse.ArgumentParser:
    return build_parser(
        prog,
        TrainConfig,
        "Train a DCAN or U-Net segmentation network on images/ + labels/ folders. "
        "Settings not given come from --args_load_path, else the defaults below. "
        "Under torchrun, --batch is the batch of each process.",
    )


@report_errors
def main(argv: list[str] | None = None) -> int:
    """Parse the flags, train, print one line per epoch (rank 0 only); return the exit code."""
    from napari_cellseg.training.console import print_training
    from napari_cellseg.training.distributed import is_main_process
    from napari_cellseg.training.loop import run_training, train

    cfg = config_from_args(TrainConfig, make_parser().parse_args(argv))
    stop = threading.Event()
    with stop_on_signals(stop):
        if is_main_process():
            finished = print_training(train(cfg, stop=stop))
        else:
            finished = run_training(cfg, stop=stop)
    if finished.reason != "stopped":
        return 0
    if is_main_process():
        print(
            f"stopped after the batch: a checkpoint is saved at {cfg.model}; give the same "
            "command with --resume to continue.",
            file=sys.stderr,
        )
    return 130


if __name__ == "__main__":
    sys.exit(main())
