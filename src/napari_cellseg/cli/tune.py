"""``python -m napari_cellseg.hypertune``: the seed tool's tuning commands, with Optuna.

Examples::

    python -m napari_cellseg.hypertune tune_lr --architecture unet --batch 4 \\
        --train_data data/train --val_data data/val
    python -m napari_cellseg.hypertune tune_batch --architecture dcan --epochs 20 \\
        --train_data data/train --val_data data/val

Run the same command again to resume an interrupted study.  Start it in several
processes or on several machines with one ``--storage`` to share the trials.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from napari_cellseg.cli.common import build_parser, report_errors
from napari_cellseg.config import TrainConfig, TuneConfig
from napari_cellseg.config_io import add_config_arguments, config_from_args

if TYPE_CHECKING:
    from napari_cellseg.training.tuning import TrialResult

DESCRIPTION = """\
Search the learning rate (tune_lr), the batch size (tune_batch) or both together with
dropout and loss weights (tune_all).  Each trial trains a network with the training
settings below, scored by its val loss (tune_all: mean val IoU); trials falling behind
the median are stopped early.  The study is stored in --storage (default: OUTPUT/study.db):
running the same command again resumes it, and several workers may share it.  OUTPUT
receives trials.csv, trials.png, best.yaml (for train --args_load_path) and the best
trial's model under trials/.
"""

VAL_SHOWN = ("loss", "objects_iou", "boundaries_iou")


def make_parser(prog: str = "python -m napari_cellseg.hypertune") -> argparse.ArgumentParser:
    parser = build_parser(prog, TuneConfig, DESCRIPTION, skip=("mode",))
    mode = TuneConfig.__dataclass_fields__["mode"]
    parser.add_argument("mode", choices=mode.metadata["choices"], help=mode.metadata["help"])
    training = parser.add_argument_group("training settings, held fixed in every trial")
    add_config_arguments(training, TrainConfig)
    return parser


@report_errors
def main(argv: list[str] | None = None) -> int:
    """Parse the flags, run the study, print one line per trial; return the exit code."""
    args = make_parser().parse_args(argv)
    tune_cfg = config_from_args(TuneConfig, args)
    cfg = config_from_args(TrainConfig, args)
    import optuna

    from napari_cellseg.training.tuning import tune

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # each trial is printed below
    print(f"{tune_cfg.mode}: study '{tune_cfg.study or tune_cfg.mode}', output {tune_cfg.output}")
    try:
        result = tune(tune_cfg, cfg, on_trial=lambda trial: print(format_trial(trial)))
    except KeyboardInterrupt:
        print("Run the same command again to resume the study.", file=sys.stderr)
        raise
    print(f"trials: {result.csv}\nplot: {result.plot}")
    if result.best is None:
        print("no trial completed: see the reasons in the trials file")
        return 1
    print(f"best: {format_trial(result.best)}")
    print(
        f"settings: {result.best_yaml}  (train with: python -m napari_cellseg.train "
        f"--args_load_path {result.best_yaml})"
    )
    return 0


def format_trial(trial: TrialResult) -> str:
    """``trial 3  lr 0.00213  complete  val_loss 0.4123 ...  12 epochs  41s  completed``."""
    parts = [f"trial {trial.number}"]
    parts += [
        f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in trial.settings.items()
    ]
    parts.append(trial.state)
    parts += [f"val_{k} {trial.val[k]:.4g}" for k in VAL_SHOWN if k in trial.val]
    parts.append(f"{trial.epochs} epochs")
    if trial.seconds is not None:
        parts.append(f"{trial.seconds:.0f}s")
    if trial.reason:
        parts.append(trial.reason)
    return "  ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
