"""Live training curves in a Qt dock, drawn with pyqtgraph.

Panels are stacked vertically with a shared (linked) epoch axis, each with its own y axis
(the loss on a log scale).  pyqtgraph gives mouse zoom and pan (right-click → *View All*
returns), the legend sits below the panels where it covers no point, and hovering shows
the values of every curve at the nearest epoch.  Adding a point only marks the plot stale;
a timer redraws at most five times a second however fast the points arrive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

__all__ = ["Series", "LivePlot"]

_REDRAW_MS = 200


@dataclass
class Series:
    """One curve: its panel, look, and points."""

    panel: str
    color: str
    dashed: bool = False
    width: float = 1.6
    markers: bool = True  # a dot on each point while there are few
    points: list[tuple[float, float]] = field(default_factory=list)


class _LogAxis(pg.AxisItem):
    """A log axis that labels 1, 2 and 5 times a power of ten only (the others crowd)."""

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph's name)
        labels = super().logTickStrings(values, scale, spacing)
        keep = [_one_two_five(10**v) for v in values]
        return [label if k else "" for k, label in zip(keep, labels, strict=True)]


def _pen(s: Series):
    pen = pg.mkPen(s.color, width=s.width)
    if s.dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


def _one_two_five(value: float) -> bool:
    mantissa = value / 10 ** math.floor(math.log10(value))
    return any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 5, 10))


class LivePlot(QWidget):
    """Curves of ``series`` (name -> :class:`Series`) in the ``panels`` (name -> log scale).

    ``legend`` (meaning -> :class:`Series` showing its look) keeps the legend short in a
    narrow dock ("train" for every blue curve); by default each series has its entry.
    """

    def __init__(
        self,
        panels: dict[str, bool],
        series: dict[str, Series],
        legend: dict[str, Series] | None = None,
        parent=None,
    ) -> None:
        super().__init__(parent)
        self._panels = panels
        self._series = series
        text = self.palette().color(self.foregroundRole())
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setBackground(None)  # the dock's own colour, light or dark theme
        self._items: dict[str, pg.PlotItem] = {}
        for row, (panel, log) in enumerate(panels.items()):
            axes = {"left": _LogAxis("left")} if log else None
            item = self.canvas.addPlot(row=row, col=0, axisItems=axes)
            item.setLogMode(y=log)
            item.showGrid(x=True, y=True, alpha=0.2)
            item.setLabel("left", panel)
            item.setMenuEnabled(True)
            for axis in ("left", "bottom"):
                item.getAxis(axis).setTextPen(text)
                item.getAxis(axis).setPen(text)
                item.getAxis(axis).enableAutoSIPrefix(False)
            if self._items:
                item.setXLink(next(iter(self._items.values())))
            self._items[panel] = item
        item.setLabel("bottom", "epoch")
        self.legend = pg.LegendItem(colCount=2, labelTextColor=text)
        self.canvas.addItem(self.legend, row=len(panels), col=0)
        self._curves = {name: self._add_curve(name, s) for name, s in series.items()}
        for name, look in (legend or series).items():
            self.legend.addItem(pg.PlotDataItem(pen=_pen(look)), name)
        self.readout = QLabel("")
        self.canvas.setToolTip(
            "Hover to read the values; drag to pan, wheel to zoom, "
            "right-click for View All and log axes."
        )
        self.readout.setWordWrap(True)
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas, stretch=1)
        layout.addWidget(self.readout)
        self.setMinimumHeight(220)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._timer = QTimer(self, singleShot=True, interval=_REDRAW_MS)
        self._timer.timeout.connect(self.redraw)
        self.canvas.scene().sigMouseMoved.connect(self._hover)

    def _add_curve(self, name: str, s: Series) -> pg.PlotDataItem:
        curve = self._items[s.panel].plot(pen=_pen(s), symbolSize=5, symbolPen=None)
        curve.setDownsampling(auto=True, method="peak")
        curve.setClipToView(True)
        return curve

    def add_point(self, name: str, x: float, y: float) -> None:
        """Append a point to series ``name`` (NaN or non-finite values are skipped)."""
        if math.isfinite(y):
            self._series[name].points.append((x, y))
            if not self._timer.isActive():
                self._timer.start()

    def points(self, name: str) -> list[tuple[float, float]]:
        """The points of series ``name`` so far."""
        return list(self._series[name].points)

    def clear(self) -> None:
        """Remove every point."""
        for s in self._series.values():
            s.points.clear()
        self.redraw()

    def redraw(self) -> None:
        """Hand every series' points to its curve."""
        for name, s in self._series.items():
            xy = np.array(s.points, dtype=float).reshape(-1, 2)
            if self._panels[s.panel]:
                xy = xy[xy[:, 1] > 0]  # a log axis shows positive values only
            dots = s.markers and len(xy) <= 30
            self._curves[name].setData(xy[:, 0], xy[:, 1], symbol="o" if dots else None)
            self._curves[name].setSymbolBrush(s.color)

    def values_at(self, epoch: float) -> str:
        """The value of every curve at the point nearest ``epoch``, as one line of text."""
        parts = []
        for name, s in self._series.items():
            if s.points:
                x, y = min(s.points, key=lambda p: abs(p[0] - epoch))
                if abs(x - epoch) <= 0.5:
                    parts.append(f"{name} {y:.4g}")
        return f"epoch {epoch:g}: " + ", ".join(parts) if parts else ""

    def _hover(self, position) -> None:
        for item in self._items.values():
            if item.sceneBoundingRect().contains(position):
                epoch = round(item.vb.mapSceneToView(position).x())
                self.readout.setText(self.values_at(epoch) or self.readout.text())
                return
