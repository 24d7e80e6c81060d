"""What makes the plugin's docks fit a laptop screen: scrolling content and shared tabs.

All three docks open at 1366x768: each one's content scrolls (so a dock needs little height
whatever it holds), and a dock of this plugin opens as a tab beside the plugin's docks
already open on that side of the window, where it gets the whole height.  Drag a tab out
to see two docks side by side.
"""

from __future__ import annotations

from qtpy.QtCore import QEvent, Qt
from qtpy.QtWidgets import QDockWidget, QFrame, QMainWindow, QScrollArea, QVBoxLayout, QWidget

__all__ = [
    "DOCK_NAME",
    "TabsOnFirstShow",
    "scrolling_layout",
    "tab_with_siblings",
    "vertical_scroll",
]

DOCK_NAME = "napari-cellseg dock"  # the objectName that marks the plugin's dock widgets


def vertical_scroll(content: QWidget) -> QScrollArea:
    """A scroll area that shows ``content`` at the dock's width and scrolls it up and down."""
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(content)
    return scroll


def scrolling_layout(owner: QWidget) -> QVBoxLayout:
    """Fill ``owner`` with a :func:`vertical_scroll`; the layout of the content inside it."""
    owner.setObjectName(DOCK_NAME)
    content = QWidget()
    outer = QVBoxLayout(owner)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(vertical_scroll(content))
    return QVBoxLayout(content)


def tab_with_siblings(widget: QWidget) -> None:
    """Tab the dock that holds ``widget`` with the first other dock of this plugin on the
    same side of the main window, and show it.  Nothing happens outside a main window."""
    dock = _dock_of(widget)
    window = dock.parent() if dock is not None else None
    if not isinstance(window, QMainWindow) or dock.isFloating():
        return
    area = window.dockWidgetArea(dock)
    for other in window.findChildren(QDockWidget):
        if (
            other is not dock
            and other.isVisible()
            and not other.isFloating()
            and window.dockWidgetArea(other) == area
            and other.findChild(QWidget, DOCK_NAME) is not None
        ):
            window.tabifyDockWidget(other, dock)
            dock.show()
            dock.raise_()
            return


def _dock_of(widget: QWidget) -> QDockWidget | None:
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parentWidget()
    return parent


class TabsOnFirstShow:
    """Mixin for a dock widget: on its first show it joins the plugin's open docks as a tab."""

    _tabbed = False

    def event(self, event: QEvent) -> bool:  # noqa: D102 (Qt's)
        if event.type() == QEvent.Type.Show and not self._tabbed:
            self._tabbed = True
            tab_with_siblings(self)
        return super().event(event)
