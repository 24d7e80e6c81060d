"""A light live line plot drawn with QPainter: training curves without a plotting library.

Panels are stacked vertically, each with its own y axis (optionally logarithmic) and a
shared x axis (epochs).  Adding a point only schedules a repaint, so the plot costs the
GUI thread one cheap paint per frame however fast the points arrive; long series are
thinned to about one point per pixel column when drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget

__all__ = ["Series", "LivePlot"]

_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM, _GAP = 44, 10, 8, 22, 16


@dataclass
class Series:
    """One curve: its panel, look, and points."""

    panel: str
    color: str
    dashed: bool = False
    width: float = 1.6
    points: list[tuple[float, float]] = field(default_factory=list)


def nice_ticks(lo: float, hi: float, count: int = 4) -> list[float]:
    """About ``count`` round tick values (1, 2 or 5 times a power of ten) within [lo, hi]."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _label(value: float) -> str:
    return f"{value:.3g}"


class LivePlot(QWidget):
    """Curves of ``series`` (name -> :class:`Series`) in the ``panels`` (name -> log scale)."""

    def __init__(self, panels: dict[str, bool], series: dict[str, Series], parent=None) -> None:
        super().__init__(parent)
        self._panels = panels
        self._series = series
        self.setMinimumHeight(260)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def add_point(self, name: str, x: float, y: float) -> None:
        """Append a point to series ``name`` (NaN or non-finite values are skipped)."""
        if math.isfinite(y):
            self._series[name].points.append((x, y))
            self.update()

    def points(self, name: str) -> list[tuple[float, float]]:
        """The points of series ``name`` so far."""
        return list(self._series[name].points)

    def clear(self) -> None:
        """Remove every point."""
        for s in self._series.values():
            s.points.clear()
        self.update()

    # --- drawing ---------------------------------------------------------------------------

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        text = self.palette().color(self.foregroundRole())
        x_max = max((p[0] for s in self._series.values() for p in s.points), default=1.0)
        x_max = max(x_max, 1.0)
        height = (self.height() - _MARGIN_TOP - _MARGIN_BOTTOM) / len(self._panels)
        for i, (panel, log) in enumerate(self._panels.items()):
            rect = QRectF(
                _MARGIN_LEFT,
                _MARGIN_TOP + i * height,
                self.width() - _MARGIN_LEFT - _MARGIN_RIGHT,
                height - _GAP,
            )
            self._draw_panel(painter, rect, panel, log, x_max, text)
        painter.setPen(text)
        painter.drawText(
            QRectF(0, self.height() - 16, self.width(), 16),
            int(Qt.AlignmentFlag.AlignHCenter),
            "epoch",
        )
        painter.end()

    def _draw_panel(self, painter, rect, panel, log, x_max, text) -> None:
        series = {n: s for n, s in self._series.items() if s.panel == panel}
        ys = [p[1] for s in series.values() for p in s.points if not log or p[1] > 0]
        lo, hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
        if log:
            lo, hi = math.log10(lo) if ys else -1.0, math.log10(hi) if ys else 0.0
        pad = (hi - lo) * 0.05 or 0.5
        lo, hi = lo - pad, hi + pad

        def to_px(x: float, y: float) -> QPointF:
            y = math.log10(y) if log else y
            return QPointF(
                rect.left() + x / x_max * rect.width(),
                rect.bottom() - (y - lo) / (hi - lo) * rect.height(),
            )

        grid = QColor(text)
        grid.setAlpha(40)
        painter.setPen(QPen(grid, 1))
        for t in nice_ticks(lo, hi):
            y_px = to_px(0, 10**t if log else t).y()
            painter.drawLine(QPointF(rect.left(), y_px), QPointF(rect.right(), y_px))
            painter.setPen(text)
            painter.drawText(
                QRectF(0, y_px - 8, _MARGIN_LEFT - 4, 16),
                int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                _label(10**t if log else t),
            )
            painter.setPen(QPen(grid, 1))
        for t in nice_ticks(0, x_max):
            x_px = to_px(t, 10**lo if log else lo).x()
            painter.setPen(text)
            painter.drawText(
                QRectF(x_px - 20, rect.bottom() + 1, 40, 14),
                int(Qt.AlignmentFlag.AlignHCenter),
                _label(t),
            )
        painter.setPen(QPen(text, 1))
        painter.drawRect(rect)
        painter.drawText(rect.adjusted(6, 2, 0, 0), int(Qt.AlignmentFlag.AlignLeft), panel)

        painter.save()
        painter.setClipRect(rect)
        for legend_row, (name, s) in enumerate(series.items()):
            pen = QPen(QColor(s.color), s.width)
            if s.dashed:
                pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            stride = max(1, int(len(s.points) / rect.width()))
            pts = [to_px(x, y) for x, y in s.points[::stride] if not log or y > 0]
            if len(pts) == 1:
                painter.drawEllipse(pts[0], 2.5, 2.5)
            painter.drawPolyline(QPolygonF(pts))
            y_leg = rect.top() + 20 + 13 * legend_row
            painter.drawLine(QPointF(rect.right() - 128, y_leg), QPointF(rect.right() - 108, y_leg))
            painter.setPen(text)
            painter.drawText(QPointF(rect.right() - 104, y_leg + 4), name)
        painter.restore()
