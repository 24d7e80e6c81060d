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
from qtpy.QtGui import QColor, QPainter, QPalette, QPen, QPolygonF
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
        lo, hi = (min(ys), max(ys)) if ys else ((0.1, 1.0) if log else (0.0, 1.0))
        ticks = _log_ticks(lo, hi) if log else nice_ticks(lo, hi)
        axis = math.log10 if log else float
        lo, hi = axis(min(lo, *ticks)), axis(max(hi, *ticks))
        pad = (hi - lo) * 0.05 or 0.5
        lo, hi = lo - pad, hi + pad

        def to_px(x: float, y: float) -> QPointF:
            return QPointF(
                rect.left() + x / x_max * rect.width(),
                rect.bottom() - (axis(y) - lo) / (hi - lo) * rect.height(),
            )

        grid = QColor(text)
        grid.setAlpha(40)
        right = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        for t in ticks:
            y_px = to_px(0, t).y()
            painter.setPen(QPen(grid, 1))
            painter.drawLine(QPointF(rect.left(), y_px), QPointF(rect.right(), y_px))
            painter.setPen(text)
            painter.drawText(QRectF(0, y_px - 8, _MARGIN_LEFT - 4, 16), right, _label(t))
        for t in nice_ticks(0, x_max):
            x_px = rect.left() + t / x_max * rect.width()
            painter.drawText(
                QRectF(x_px - 20, rect.bottom() + 1, 40, 14),
                int(Qt.AlignmentFlag.AlignHCenter),
                _label(t),
            )
        painter.drawRect(rect)
        painter.drawText(rect.adjusted(6, 2, 0, 0), int(Qt.AlignmentFlag.AlignLeft), panel)

        painter.save()
        painter.setClipRect(rect)
        for s in series.values():
            painter.setPen(_pen(s))
            stride = max(1, int(len(s.points) / rect.width()))
            pts = [to_px(x, y) for x, y in s.points[::stride] if not log or y > 0]
            if len(pts) == 1:
                painter.drawEllipse(pts[0], 2.5, 2.5)
            painter.drawPolyline(QPolygonF(pts))
        painter.restore()
        self._draw_legend(painter, rect, series, text)

    @staticmethod
    def _draw_legend(painter, rect, series: dict[str, Series], text) -> None:
        """A boxed legend in the panel's top-right corner."""
        metrics = painter.fontMetrics()
        row = metrics.height()
        width = max(metrics.horizontalAdvance(name) for name in series) + 34
        box = QRectF(rect.right() - width - 4, rect.top() + 4, width, row * len(series) + 6)
        background = QColor(painter.device().palette().color(QPalette.ColorRole.Window))
        background.setAlpha(210)
        painter.fillRect(box, background)
        for i, (name, s) in enumerate(series.items()):
            y = box.top() + 3 + row * (i + 0.5)
            painter.setPen(_pen(s))
            painter.drawLine(QPointF(box.left() + 6, y), QPointF(box.left() + 26, y))
            painter.setPen(text)
            painter.drawText(QPointF(box.left() + 30, y + metrics.ascent() / 2 - 1), name)


def _pen(s: Series) -> QPen:
    pen = QPen(QColor(s.color), s.width)
    if s.dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten within [lo, hi]; round linear ticks when the range spans less than two."""
    decades = [10.0**k for k in range(math.ceil(math.log10(lo)), math.floor(math.log10(hi)) + 1)]
    return decades if len(decades) >= 2 else [t for t in nice_ticks(lo, hi) if t > 0] or [lo]
