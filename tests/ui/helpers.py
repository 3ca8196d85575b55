"""Driving the app like a user: windows with a case, wheel events, drags, grabbing pixels."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from tests.ui.conftest import case_of
from ui.main_window import MainWindow
from workstation.model.volume import Volume


def window_with(qtbot: Any, volume: Volume | None = None, *, resize: bool = True) -> MainWindow:
    from ui.app import application

    application()
    window = MainWindow()
    qtbot.addWidget(window)
    if resize:
        window.resize(1200, 800)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    if volume is not None:
        window.document.set_case(case_of(volume))
    QApplication.processEvents()
    return window


def wait_idle(qtbot: Any, window: MainWindow, timeout_ms: int = 60000) -> None:
    qtbot.waitUntil(lambda: not window.busy, timeout=timeout_ms)
    QApplication.processEvents()


def point(pos: QPointF) -> QPoint:
    return QPoint(int(round(pos.x())), int(round(pos.y())))


def wheel(widget: QWidget, steps: int, *, modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    center = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(center, widget.mapToGlobal(center), QPoint(0, 0), QPoint(0, 120 * steps),
                        Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def drag(widget: QWidget, start: QPoint, end: QPoint, *, button: Qt.MouseButton = Qt.MouseButton.LeftButton,
         steps: int = 6, modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    QTest.mousePress(widget, button, modifiers, start)
    for n in range(1, steps + 1):
        QTest.mouseMove(widget, start + (end - start) * n / steps)
    QTest.mouseRelease(widget, button, modifiers, end)


def pixel_rgb(widget: QWidget, pos: QPoint) -> tuple[int, int, int]:
    """Colour the user sees at ``pos`` of ``widget`` (a grab of the widget)."""
    image = widget.grab().toImage()
    ratio = image.devicePixelRatio()
    color = image.pixelColor(int(pos.x() * ratio), int(pos.y() * ratio))
    return color.red(), color.green(), color.blue()


def grab_rgb(widget: QWidget) -> np.ndarray:
    image = widget.grab().toImage().convertToFormat(widget.grab().toImage().Format.Format_RGB888)
    width, height = image.width(), image.height()
    data = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.bytesPerLine() * height)
    return data.reshape(height, image.bytesPerLine())[:, : width * 3].reshape(height, width, 3).copy()
