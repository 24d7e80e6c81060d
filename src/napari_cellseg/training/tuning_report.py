"""What a hyper-parameter study reports: its trials, ``trials.csv``, ``best.yaml``, ``trials.png``.

Plain files from plain results (:class:`TrialResult`): nothing here knows Optuna.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from dataclasses import dataclass, field
from pathlib import Path

from napari_cellseg.config import TrainConfig
from napari_cellseg.config_io import save_yaml
from napari_cellseg.io_utils import atomic_write, atomic_write_text

__all__ = ["Reports", "TrialResult", "TuneResult", "plot_trials", "trial_dir"]


@dataclass(frozen=True)
class TrialResult:
    """One trial of a study, as ``trials.csv`` lists it.

    Attributes
    ----------
    number
        Optuna's trial number (0-based, over all workers).
    state
        ``complete``, ``pruned``, ``diverged``, ``infeasible`` (out of memory),
        ``interrupted``, ``error`` or ``running``.
    settings
        The searched training settings, e.g. ``{"lr": 0.003}``.
    value
        Best val score over the trial's epochs (val loss, or mean IoU in ``tune_all``);
        None when no epoch finished.
    val
        Val metrics of that epoch (``loss``, ``objects_iou``, ``boundaries_iou``, ...).
    epochs
        Epochs run.
    seconds
        Duration, None while running.
    reason
        Why the trial ended, in words.
    model
        The weights file of the trial's best val loss ('' when none was written).
    """

    number: int
    state: str
    settings: dict
    value: float | None = None
    val: dict = field(default_factory=dict)
    epochs: int = 0
    seconds: float | None = None
    reason: str = ""
    model: str = ""


@dataclass(frozen=True)
class TuneResult:
    """What a study produced: its trials, the best one and the files written."""

    trials: list[TrialResult]
    best: TrialResult | None
    csv: Path
    plot: Path
    best_yaml: Path | None


def trial_dir(output: str | Path, number: int) -> Path:
    """Folder of trial ``number``'s model files and logs."""
    return Path(output) / "trials" / f"trial-{number}"


class Reports:
    """trials.csv, best.yaml, trials.png, and deleting the weights of all but the best trial.

    Parameters
    ----------
    cfg
        The study's fixed training settings (``best.yaml`` adds the best trial's).
    output
        The study's output folder.
    params
        The searched settings (columns of ``trials.csv``, panels of ``trials.png``).
    metric
        The val metric trials are scored by (``loss`` or ``mean_iou``).
    maximize
        Whether a larger score is better.
    keep_all
        Keep the weights of every trial, not only of the best.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        output: Path,
        *,
        params: list[str],
        metric: str,
        maximize: bool,
        keep_all: bool,
    ) -> None:
        self.cfg, self.output, self.params, self.metric = cfg, output, params, metric
        self.maximize, self.keep_all = maximize, keep_all

    def write(self, results: list[TrialResult], *, plot: bool) -> TuneResult:
        """Write the reports of ``results`` (every trial of the study so far)."""
        best = None
        for r in results:
            if r.state == "complete" and (best is None or self._better(r.value, best.value)):
                best = r
        if not self.keep_all:
            self._delete_models(results, best)
        csv_path = self._write_csv(results)
        best_yaml = self._write_best(best) if best else None
        plot_path = self.output / "trials.png"
        if plot:
            plot_trials(plot_path, results, best, self.params, self.metric)
        return TuneResult(results, best, csv_path, plot_path, best_yaml)

    def _better(self, a: float, b: float) -> bool:
        return a > b if self.maximize else a < b

    def _delete_models(self, results: list[TrialResult], best: TrialResult | None) -> None:
        for r in results:
            if r.state != "running" and r is not best:
                for weights in trial_dir(self.output, r.number).glob("*.pt"):
                    weights.unlink(missing_ok=True)

    def _write_csv(self, results: list[TrialResult]) -> Path:
        scores = list(dict.fromkeys([self.metric, "loss", "objects_iou", "boundaries_iou"]))
        columns = ["number", "state", *self.params, *(f"val_{m}" for m in scores)]
        buffer = io.StringIO()
        writer = csv.DictWriter(
            buffer, [*columns, "epochs", "seconds", "reason"], extrasaction="ignore"
        )
        writer.writeheader()
        for r in results:
            val = {self.metric: r.value, **r.val}
            writer.writerow({
                "number": r.number, "state": r.state, **r.settings,
                **{f"val_{m}": _text(val.get(m)) for m in scores},
                "epochs": r.epochs, "seconds": _text(r.seconds), "reason": r.reason,
            })  # fmt: skip
        return atomic_write_text(self.output / "trials.csv", buffer.getvalue())

    def _write_best(self, best: TrialResult) -> Path:
        cfg = dataclasses.replace(
            self.cfg,
            **best.settings,
            model=self.cfg.model or str(self.output / "model.pt"),
            resume=False,
            args_load_path="",
        )
        record = {
            "tuning": {
                "trial": best.number,
                f"val_{self.metric}": best.value,
                "val": best.val,
                "epochs": best.epochs,
                "trial_model": best.model,
            }
        }
        return save_yaml(cfg, self.output / "best.yaml", record)


def _text(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def plot_trials(
    path: Path,
    results: list[TrialResult],
    best: TrialResult | None,
    params: list[str],
    metric: str,
) -> Path:
    """Val score against each searched setting; pruned, diverged and infeasible trials marked."""
    from matplotlib.figure import Figure  # the Agg canvas; no pyplot, no GUI backend
    from matplotlib.ticker import ScalarFormatter

    params = [p for p in params if p != "obj_weight"]
    fig = Figure(figsize=(4.5 * len(params), 4), layout="constrained")
    axes = fig.subplots(1, len(params), squeeze=False)[0]
    styles = {
        "complete": dict(marker="o", color="tab:blue"),
        "pruned": dict(marker="x", color="tab:orange"),
        "interrupted": dict(marker="+", color="tab:gray"),
    }
    failed = {
        "diverged": dict(marker="v", color="tab:red"),
        "infeasible": dict(marker="s", color="black"),
    }
    for ax, param in zip(axes, params, strict=True):
        for state, style in styles.items():
            points = [
                (r.settings[param], r.value)
                for r in results
                if r.state == state and r.value is not None
            ]
            if points:
                ax.scatter(*zip(*points, strict=True), label=state, **style)
        for state, style in failed.items():  # no score: drawn along the top edge
            xs = [r.settings[param] for r in results if r.state == state and param in r.settings]
            if xs:  # a line (not a scatter) so that its x values widen the axis
                ax.plot(xs, [0.97] * len(xs), linestyle="none", label=state,
                        transform=ax.get_xaxis_transform(), **style)  # fmt: skip
        if best is not None:
            ax.scatter(
                [best.settings[param]],
                [best.value],
                marker="*",
                s=250,
                facecolor="none",
                edgecolor="tab:green",
                label="best",
            )
        if param == "lr":
            ax.set_xscale("log")
        elif param == "batch":
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_formatter(ScalarFormatter())
        if metric == "loss" and any(r.value for r in results):
            ax.set_yscale("log")  # a too-large learning rate gives losses of 1e6 and more
        ax.set_xlabel(param)
        ax.set_ylabel(f"val {metric.replace('_', ' ')}")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    fig.suptitle(f"{len(results)} trials")
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    return path
