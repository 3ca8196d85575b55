"""A tracked tool drawn in the twin's views: a line over each slice view and a line actor in the 3D view.

Shared by the live panel (the tool at its live pose) and the replay panel (the tool at a recorded pose):
both hand a tip and a shaft end (image LPS mm) and an alarm flag to a :class:`ToolDisplay`, which keeps one
transparent :class:`ToolOverlay` per slice view and one named line actor in the 3D view's plotter (when
the 3D view has one; headless platforms have none).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from PySide6.QtCore import QEvent, QObject, QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QWidget

TOOL_COLOR = QColor(0, 255, 0)
ALARM_COLOR = QColor(255, 0, 0)
SHOWN_SHAFT_MM = 60.0  # length of tool drawn behind the tip when it has not entered yet


def shown_tail(tip: ArrayLike, axis: ArrayLike, tail: ArrayLike) -> NDArray[np.float64]:
    """The drawn shaft end (3,): ``tail`` (the end of the inserted shaft), or, when the tool has not entered
    yet (shaft shorter than 1 mm), a point :data:`SHOWN_SHAFT_MM` behind the tip along the unit ``axis``."""
    tip_, tail_ = np.asarray(tip, dtype=float), np.asarray(tail, dtype=float)
    if np.linalg.norm(tail_ - tip_) < 1.0:
        return tip_ - SHOWN_SHAFT_MM * np.asarray(axis, dtype=float)
    return tail_


def inserted_tail(tip: ArrayLike, axis: ArrayLike, entry_lps: ArrayLike, target_lps: ArrayLike) -> NDArray[np.float64]:
    """End (3,) of the inserted shaft for a tool with tip ``tip`` and unit ``axis`` against a planned line:
    from the tip back along the axis to the plane through the planned entry, perpendicular to the plan (the
    default checked shaft of :meth:`workstation.live.live_twin.LiveTwin.shaft_tail`). All image LPS mm."""
    tip_, axis_ = np.asarray(tip, dtype=float), np.asarray(axis, dtype=float)
    entry = np.asarray(entry_lps, dtype=float)
    direction = np.asarray(target_lps, dtype=float) - entry
    direction = direction / np.linalg.norm(direction)
    depth = float((tip_ - entry) @ direction)
    return tip_ - max(depth, 0.0) / max(float(axis_ @ direction), 0.2) * axis_


class ToolOverlay(QWidget):
    """A transparent child of a slice view drawing a tool (tip dot and shaft line) projected on it."""

    def __init__(self, view: Any, color: QColor = TOOL_COLOR) -> None:
        super().__init__(view)
        self.view = view
        self.color = QColor(color)
        self.tip: NDArray[np.float64] | None = None
        self.tail: NDArray[np.float64] | None = None
        self.alarm = False
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, True)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground, True)
        self.setGeometry(view.rect())
        view.installEventFilter(self)
        self.show()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        if watched is self.view and event.type() == QEvent.Type.Resize:
            self.setGeometry(self.view.rect())
        return False

    def set_tool(self, tip: NDArray[np.float64] | None, tail: NDArray[np.float64] | None, alarm: bool) -> None:
        self.tip, self.tail, self.alarm = tip, tail, alarm
        self.raise_()
        self.update()

    def paintEvent(self, event: object) -> None:  # noqa: N802 (Qt API)
        if self.tip is None or self.tail is None:
            return
        tip, tail = self.view.widget_pos_of(self.tip), self.view.widget_pos_of(self.tail)
        if tip is None or tail is None:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        color = ALARM_COLOR if self.alarm else self.color
        painter.setPen(QPen(color, 3))
        painter.drawLine(tail, tip)
        painter.setBrush(color)
        painter.drawEllipse(QPointF(tip), 5, 5)
        painter.end()


class ToolDisplay:
    """One tool shown in every slice view (overlays) and in the 3D view (a line actor named ``actor_name``).

    ``color`` is the tool's colour without alarm; with the alarm on it is drawn in :data:`ALARM_COLOR`.
    """

    def __init__(self, views: Iterable[QWidget], view3d: Any, *, actor_name: str,
                 color: QColor = TOOL_COLOR) -> None:
        self.view3d = view3d
        self.actor_name = actor_name
        self.color = QColor(color)
        self.overlays = [ToolOverlay(view, self.color) for view in views]
        self._line: Any = None

    def show(self, tip: NDArray[np.float64] | None, tail: NDArray[np.float64] | None, alarm: bool) -> None:
        """Draw the tool from ``tail`` to ``tip`` (image LPS mm); ``None`` hides it."""
        for overlay in self.overlays:
            overlay.set_tool(tip, tail, alarm)
        self._show_3d(tip, tail, alarm)

    def clear(self) -> None:
        self.show(None, None, False)

    def _show_3d(self, tip: NDArray[np.float64] | None, tail: NDArray[np.float64] | None, alarm: bool) -> None:
        plotter = getattr(self.view3d, "plotter", None)
        if plotter is None:
            return
        if tip is None or tail is None:
            if self._line is not None:
                plotter.remove_actor(self.actor_name, render=True)
                self._line = None
            return
        import pyvista as pv

        color = ALARM_COLOR if alarm else self.color
        rgb = (color.redF(), color.greenF(), color.blueF())
        actor = plotter.actors.get(self.actor_name)
        if self._line is None or actor is None:  # first pose, or the 3D view rebuilt its scene meanwhile
            self._line = pv.Line(tail, tip)
            plotter.add_mesh(self._line, color=rgb, line_width=6, render_lines_as_tubes=True, name=self.actor_name,
                             render=False)
        else:
            self._line.points = np.vstack([tail, tip])
            actor.GetProperty().SetColor(rgb)
        plotter.render()
