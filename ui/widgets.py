"""Small widget factories shared by the panels."""

from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox, QWidget


def spin_box(parent: QWidget, name: str, low: float, high: float, value: float, *, suffix: str = " mm",
             decimals: int | None = None) -> QDoubleSpinBox:
    """A number field named ``name`` (object name, for tests and settings) with a range, a value and a unit."""
    box = QDoubleSpinBox(parent, objectName=name)
    box.setRange(low, high)
    if decimals is not None:
        box.setDecimals(decimals)
    box.setValue(value)
    box.setSuffix(suffix)
    return box
