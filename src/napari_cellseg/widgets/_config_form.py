"""A form built from a settings dataclass: one magicgui widget per field, nothing written twice.

Each field's default, ``help`` (tooltip), ``choices`` (combo box) and ``advanced`` flag
(collapsible "Advanced" section) come from the dataclass in ``config.py``.  Values are
read back through :func:`napari_cellseg.config_io.from_dict`, so the form checks and
converts them exactly as a settings file would.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    LineEdit,
    PushButton,
    SpinBox,
    Widget,
)
from napari.utils.notifications import show_error
from qtpy.QtWidgets import QFileDialog
from superqt import QCollapsible

from napari_cellseg.config_io import from_dict, load_yaml, save_yaml
from napari_cellseg.errors import CellsegError

__all__ = ["ConfigForm"]

_INT_MAX = 2**31 - 1


def _base_type(hint: Any) -> tuple[type, bool]:
    """``int | None`` -> (int, True); ``float`` -> (float, False)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        return next(a for a in args if a is not type(None)), type(None) in args
    return hint, False


def _make_widget(
    f: dataclasses.Field, hint: Any, path_mode: tuple[str, str | None] | None
) -> Widget:
    base, nullable = _base_type(hint)
    common = {"name": f.name, "tooltip": f.metadata["help"]}
    if f.metadata.get("choices"):
        return ComboBox(choices=f.metadata["choices"], value=f.default, **common)
    if base is bool:
        return CheckBox(value=f.default, **common)
    if base is int and not nullable:
        return SpinBox(value=f.default, min=min(0, f.default), max=_INT_MAX, **common)
    if path_mode:
        mode, filter_ = path_mode
        return FileEdit(mode=mode, filter=filter_, value=f.default, nullable=True, **common)
    # floats keep their exact text (1e-4 stays 1e-4); None is written 'none'
    return LineEdit(value=_text(f.default), **common)


def _text(value: Any) -> str:
    return "none" if value is None else str(value)


class ConfigForm:
    """Widgets for the fields of the dataclass ``cls``.

    Parameters
    ----------
    cls : type
        A settings dataclass from :mod:`napari_cellseg.config`.
    skip : tuple of str
        Fields without a widget; their values come from the last :meth:`set_config`.
    paths : dict
        Field name -> (magicgui file mode 'r', 'w' or 'd', name filter) for path fields.

    Attributes
    ----------
    basic, advanced : magicgui Container
        The common fields and those marked ``advanced``.
    collapsible : superqt.QCollapsible
        "Advanced", holding ``advanced``; collapsed at first.
    """

    def __init__(self, cls: type, *, skip: tuple[str, ...] = (), paths: dict | None = None):
        self._cls = cls
        self._base = dataclasses.asdict(cls())
        self.widgets: dict[str, Widget] = {}
        self.basic, self.advanced = Container(), Container()
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in skip:
                continue
            widget = _make_widget(f, hints[f.name], (paths or {}).get(f.name))
            self.widgets[f.name] = widget
            (self.advanced if f.metadata.get("advanced") else self.basic).append(widget)
        self.collapsible = QCollapsible("Advanced")
        self.collapsible.addWidget(self.advanced.native)

    def take(self, name: str) -> Widget:
        """Remove field ``name``'s widget from its section (to place it elsewhere)."""
        widget = self.widgets[name]
        for section in (self.basic, self.advanced):
            if widget in section:
                section.remove(widget)
        return widget

    def values(self) -> dict[str, Any]:
        """Every field: the widgets' values over those of the last :meth:`set_config`."""
        values = dict(self._base)
        for name, widget in self.widgets.items():
            values[name] = widget.line_edit.value if isinstance(widget, FileEdit) else widget.value
        return values

    def config(self, **overrides: Any) -> Any:
        """The settings object of the current values (``overrides`` replace fields).

        Raises
        ------
        ConfigError
            A value cannot be converted or is not allowed; the message names the setting.
        """
        return from_dict(self._cls, {**self.values(), **overrides}, source="the settings panel")

    def set_config(self, cfg: Any) -> None:
        """Show the values of the settings object ``cfg``."""
        self._base = dataclasses.asdict(cfg)
        for name, widget in self.widgets.items():
            value = getattr(cfg, name)
            if isinstance(widget, FileEdit):
                widget.line_edit.value = value
            elif isinstance(widget, LineEdit):
                widget.value = _text(value)
            else:
                widget.value = value

    def file_buttons(self, parent) -> Container:
        """*Load settings…* and *Save settings…*: the form from and to a yaml file (a
        model's yaml too) chosen in a file dialog over ``parent``."""
        load, save = PushButton(text="Load settings…"), PushButton(text="Save settings…")
        load.changed.connect(lambda: self.load(_ask_path(parent, "Load settings", "r")))
        save.changed.connect(lambda: self.save(_ask_path(parent, "Save settings", "w")))
        return Container(widgets=[load, save], layout="horizontal")

    def load(self, path: str) -> None:
        """Show the settings of the yaml file ``path`` ('': nothing); errors: notifications."""
        if path:
            try:
                self.set_config(load_yaml(path, self._cls))
            except CellsegError as exc:
                show_error(str(exc))

    def save(self, path: str) -> None:
        """Write the settings shown to the yaml file ``path`` ('': nothing)."""
        if path:
            try:
                save_yaml(self.config(), path)
            except CellsegError as exc:
                show_error(str(exc))


def _ask_path(parent, title: str, mode: str) -> str:
    """A yaml file name from a file dialog ('' when cancelled)."""
    if mode == "r":
        path, _ = QFileDialog.getOpenFileName(parent, title, "", "Model settings (*.yaml *.yml)")
    else:
        path, _ = QFileDialog.getSaveFileName(parent, title, "", "Model settings (*.yaml)")
    return path
