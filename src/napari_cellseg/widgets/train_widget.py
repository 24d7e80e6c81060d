"""The training dock: data from layers or folders, all settings, Start/Stop, progress, curves."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from magicgui.widgets import ComboBox, Container, PushButton
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QEvent, Qt
from qtpy.QtWidgets import (
    QGroupBox,
    QLabel,
    QProgressBar,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from napari_cellseg.config import CPU_NETWORK, MODEL_SETTINGS, TrainConfig
from napari_cellseg.config_io import load_yaml
from napari_cellseg.errors import CellsegError
from napari_cellseg.model_file import BUILTIN_MODELS, model_yaml, yaml_beside
from napari_cellseg.segmentation.settings import SEGMENT_KEYS
from napari_cellseg.training import events as ev
from napari_cellseg.training.checkpoints import check_writable
from napari_cellseg.widgets._config_form import ConfigForm
from napari_cellseg.widgets._dock import DOCK_NAME, TabsOnFirstShow, vertical_scroll
from napari_cellseg.widgets._layer_pairs import LayerPairs
from napari_cellseg.widgets._train_status import (
    CURVES,
    RunClock,
    duration,
    finished_text,
    training_curves,
)
from napari_cellseg.widgets._worker import current_model, start_worker, training_events

__all__ = ["TrainWidget"]

LAYERS, FOLDERS, FRACTION = "napari layers", "folders", "held-out fraction"
# the Load/Save buttons replace args_load_path; the torchrun settings mean nothing here
_SKIP = ("args_load_path", "sync_bn", "world_size")
_PATHS = {
    "model": ("w", "*.pt"),
    "init_model": ("r", "*.yaml *.pt"),
    "train_data": ("d", None),
    "val_data": ("d", None),
    "tb_dir": ("d", None),
    "csv_log": ("w", "*.csv"),
}
_TAKEN_OVER = MODEL_SETTINGS + SEGMENT_KEYS  # from a model to fine-tune


class TrainWidget(TabsOnFirstShow, QWidget):
    """Train a DCAN or U-Net on image/labels layers or on folders, in a background thread."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.worker = None
        self._stop = threading.Event()
        self._removed = False  # the dock was closed while training ran
        self._epochs_done = 0  # epochs the current run has completed
        self._compared: ev.ModelsCompared | None = None  # a fine-tuned model and its start
        self._clock = RunClock(total=1)
        self.form = ConfigForm(TrainConfig, skip=_SKIP, paths=_PATHS)
        self.source = ComboBox(choices=(LAYERS, FOLDERS), label="from")
        self.train_pairs = LayerPairs(napari_viewer)
        self.val_source = ComboBox(choices=(FRACTION, LAYERS, FOLDERS), label="from")
        self.val_pairs = LayerPairs(napari_viewer)
        self.start, self.stop = PushButton(text="Start training"), PushButton(text="Stop")
        self.stop.enabled = False
        self.epoch_bar, self.batch_bar = QProgressBar(), QProgressBar()
        for bar, unit in ((self.epoch_bar, "epoch"), (self.batch_bar, "batch")):
            bar.setFormat(f"{unit} %v / %m")
        self.status = QLabel("Choose training data and press Start.")
        self.status.setWordWrap(True)
        self.plot = training_curves()
        self._lay_out()

        self.source.changed.connect(self._show_sources)
        self.val_source.changed.connect(self._show_sources)
        self.start.changed.connect(self.start_training)
        self.stop.changed.connect(self.stop_training)
        self.form.widgets["init_model"].changed.connect(self._take_init_model_settings)
        for event in ("inserted", "removed", "renamed", "reordered"):
            getattr(napari_viewer.layers.events, event).connect(self._refresh_layers)
        self._show_sources()
        self._new_default_model()

    def _new_default_model(self) -> None:
        """Show a new default model path, unless the user chose one of their own."""
        widget = self.form.widgets["model"]
        current = widget.value
        if current is None or str(current) in ("", ".", getattr(self, "_default_model", "")):
            self._default_model = default_model_path()
            widget.value = self._default_model

    def use_cpu_network(self) -> None:
        """Set the network to the small one that trains in minutes on a CPU (``CPU_NETWORK``)."""
        self.form.set_config(self.form.config(**CPU_NETWORK))
        self.status.setText("The small CPU network is set: 16 filters, 4 levels, 128 px inputs.")

    def _lay_out(self) -> None:
        """Data, validation and settings scroll above; buttons, progress and curves below."""
        small, built_in = _preset_buttons(
            self.use_cpu_network,
            lambda: setattr(self.form.widgets["init_model"], "value", BUILTIN_MODELS["nuclei"]),
        )
        sections = {
            "Training data": [
                self.source,
                self.train_pairs,
                *map(self.form.take, ("train_data", "reviewed_only")),
            ],
            "Validation": [
                self.val_source,
                self.form.take("val_fraction"),
                self.val_pairs,
                self.form.take("val_data"),
            ],
            "Settings": [
                self.form.basic,
                small,
                built_in,
                self.form.file_buttons(self),
            ],
        }
        top = QWidget()
        top_layout = QVBoxLayout(top)
        for title, widgets in sections.items():
            group = QGroupBox(title)
            QVBoxLayout(group).addWidget(Container(widgets=widgets).native)
            top_layout.addWidget(group)
        top_layout.addWidget(self.form.collapsible)
        top_layout.addStretch()

        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        buttons = Container(widgets=[self.start, self.stop], layout="horizontal")
        model = Container(widgets=[self.form.take("model")])  # where Start saves, in sight
        for w in (model, buttons, self.epoch_bar, self.batch_bar, self.status, self.plot):
            bottom_layout.addWidget(getattr(w, "native", w))
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(vertical_scroll(top))
        splitter.addWidget(bottom)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        QVBoxLayout(self).addWidget(splitter)
        self.setObjectName(DOCK_NAME)

    # --- data and settings -----------------------------------------------------------------

    def _refresh_layers(self, _event=None) -> None:
        self.train_pairs.reset_choices()
        self.val_pairs.reset_choices()

    def _show_sources(self, _value=None) -> None:
        self.train_pairs.visible = self.source.value == LAYERS
        for name in ("train_data", "reviewed_only"):  # layers: the pairs' own checkbox
            self.form.widgets[name].visible = self.source.value == FOLDERS
        self.val_pairs.visible = self.val_source.value == LAYERS
        self.form.widgets["val_data"].visible = self.val_source.value == FOLDERS
        self.form.widgets["val_fraction"].visible = self.val_source.value == FRACTION

    def config_and_data(self):
        """The settings and the in-memory data (None when training from folders) of a run."""
        from napari_cellseg.training.inputs import TrainData

        from_layers, val_layers = self.source.value == LAYERS, self.val_source.value == LAYERS
        overrides = {}
        if from_layers:
            overrides["train_data"] = ""
            overrides["reviewed_only"] = self.train_pairs.reviewed_only.value
        if self.val_source.value != FOLDERS:
            overrides["val_data"] = ""
        cfg = self.form.config(**overrides)
        if not cfg.model:
            raise CellsegError(
                "Set 'model' (above Start) to the .pt file the trained network goes to."
            )
        check_writable(cfg.model, "model")
        if not from_layers and not cfg.train_data:
            raise CellsegError("Set 'train data' to a folder holding images/ and labels/.")
        if not from_layers and val_layers:
            raise CellsegError("Validation from layers needs training from layers too.")
        if self.val_source.value == FOLDERS and not cfg.val_data:
            raise CellsegError(
                "Set 'val data' to a folder holding images/ and labels/, or validate on a "
                "held-out fraction."
            )
        if not from_layers:
            return cfg, None
        return cfg, TrainData(
            self.train_pairs.stacks(cfg.blob_label),
            self.val_pairs.stacks(cfg.blob_label) if val_layers else None,
        )

    def _take_init_model_settings(self, _value=None) -> None:
        """Show the settings of the model picked to fine-tune: its network (``MODEL_SETTINGS``)
        and its segmentation settings, kept unless the validation data can tune new ones."""
        given = self.form.widgets["init_model"].line_edit.value
        path = model_yaml(given)
        if not given or not path.is_file():
            return  # training names a missing model
        try:
            start = load_yaml(path, TrainConfig)
            self.form.set_config(
                self.form.config(**{key: getattr(start, key) for key in _TAKEN_OVER})
            )
        except CellsegError as exc:
            show_error(str(exc))
            return
        self.status.setText(f"Network settings taken from the model to fine-tune, {path.name}.")

    def start_training(self) -> None:
        """Read data and settings and start training in a worker thread (errors: notifications)."""
        try:
            cfg, data = self.config_and_data()
        except CellsegError as exc:
            self.status.setText("Not started: see the notification.")
            show_error(str(exc))
            return
        self._stop = threading.Event()
        self._removed = False
        self._epochs_done = 0
        self._set_running(True)
        self.plot.clear()
        self.status.setText("Preparing data and network…")
        self.worker = start_worker(
            training_events,
            cfg,
            data,
            self._stop,
            yielded=self.on_event,
            errored=self._failed,
            finished=self._reset,
        )

    def stop_training(self) -> None:
        """Ask the engine to stop after the current batch (it saves, then reports 'stopped')."""
        self._stop.set()
        self.stop.enabled = False
        self.status.setText("Stopping after this batch…")

    def _set_running(self, running: bool) -> None:
        self.start.enabled, self.stop.enabled = not running, running

    def _failed(self, _exc: Exception) -> None:
        self.status.setText("Training failed: see the notification.")

    def _reset(self) -> None:
        self._new_default_model()  # the next run must not replace this one's model
        self._set_running(False)
        self.worker = None

    def on_event(self, event: ev.Event) -> None:
        """Show one training event (progress, curves, status); other events are ignored."""
        handler = {
            ev.TrainStarted: self._started,
            ev.BatchEnded: self._batch_ended,
            ev.EpochEnded: self._epoch_ended,
            ev.ModelsCompared: lambda event: setattr(self, "_compared", event),
            ev.TrainFinished: self._finished,
        }.get(type(event))
        if handler is not None:
            handler(event)

    def _started(self, event: ev.TrainStarted) -> None:
        self._epochs_done = event.start_epoch
        batches = (event.epochs - event.start_epoch) * event.batches_per_epoch
        self._clock = RunClock(total=max(1, batches))
        self.epoch_bar.setRange(0, event.epochs)
        self.epoch_bar.setValue(event.start_epoch)
        self.batch_bar.setRange(0, event.batches_per_epoch)
        self.status.setText(
            f"Training on {event.device}: {event.train_samples} training and "
            f"{event.val_samples} validation images per epoch."
        )
        for note in event.notes:
            show_info(note)

    def _batch_ended(self, event: ev.BatchEnded) -> None:
        smooth = self._clock.batch(event.loss)
        self.batch_bar.setValue(event.batch + 1)
        x = event.epoch + (event.batch + 1) / event.batches
        self.plot.add_point("batch loss (smoothed)", x, smooth)
        self.status.setText(
            f"Epoch {event.epoch + 1}: loss {event.loss:.4f} · "
            f"ETA {duration(self._clock.seconds_left())}"
        )

    def _epoch_ended(self, event: ev.EpochEnded) -> None:
        self._epochs_done = event.epoch + 1
        self.epoch_bar.setValue(event.epoch + 1)
        for split, metrics in (("train", event.train), ("val", event.val)):
            for key, name in CURVES.items():
                if key in metrics:
                    self.plot.add_point(f"{split} {name}", event.epoch + 1, metrics[key])

    def _finished(self, event: ev.TrainFinished) -> None:
        yaml_path, done = yaml_beside(event.model_path), self._epochs_done
        if not done:  # a few batches of random weights: nothing to predict with
            self.status.setText("Stopped before the first epoch ended: no model to predict with.")
            show_info(f"{self.status.text()} Train for an epoch or more.")
            return
        if self._removed:
            show_info(
                f"Training stopped when its dock was closed, after {done} epochs; the model is "
                f"saved at {yaml_path} (train again with resume to continue)."
            )
            return
        compared, self._compared = self._compared, None
        kept = compared is not None and not compared.improved  # the start was better
        current_model.set(compared.init_path if kept else str(yaml_path))
        self.status.setText(finished_text(event, done, yaml_path, compared))
        reason = event.reason.replace("_", " ")
        show_info(
            f"Training {reason}: {compared.describe()}" if compared else
            f"Training {reason}: the model is ready to predict."
        )  # fmt: skip

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        """Closing the widget ends a running training after the batch (it saves)."""
        self._stop_when_removed()
        super().closeEvent(event)

    def event(self, event) -> bool:
        """napari closes a dock by taking the widget out of it (no close event): a running
        training then stops after the batch, as when the widget is closed."""
        if event.type() == QEvent.Type.ParentChange and self.parent() is None:
            self._stop_when_removed()
        return super().event(event)

    def _stop_when_removed(self) -> None:
        if getattr(self, "worker", None) is not None and not self._stop.is_set():
            self._removed = True
            self._stop.set()


def _preset_buttons(small_network: Callable, built_in: Callable) -> list[PushButton]:
    """*Small network for a CPU* and *Fine-tune the built-in model*."""
    small = PushButton(text="Small network for a CPU")
    small.tooltip = (
        "a U-Net of 16 filters, 4 levels, 128 px inputs: trains in minutes on a CPU "
        "(mean AP 0.61 on DSB2018 after 30 CPU minutes); the defaults (64 filters, 256 px) "
        "want a GPU"
    )
    tune = PushButton(text="Fine-tune the built-in model")
    tune.tooltip = "start from the model that comes with the plugin (init_model)"
    small.changed.connect(small_network)
    tune.changed.connect(built_in)
    return [small, tune]


def default_model_path() -> str:
    """A new model file in the user's models folder (``~/napari-cellseg/models``), named by the
    time, so that Start works at once and never replaces a model."""
    folder = Path.home() / "napari-cellseg" / "models"
    return str(folder / f"model-{time.strftime('%Y%m%d-%H%M%S')}.pt")
