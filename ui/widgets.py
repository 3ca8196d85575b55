"""Small widget factories shared by the panels."""

from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox, QTableWidget, QWidget


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


def selected_text(table: QTableWidget, column: int) -> str | None:
    """Text in ``column`` of the first selected row of ``table``, None when nothing is selected."""
    rows = {index.row() for index in table.selectionModel().selectedRows()}
    item = table.item(min(rows), column) if rows else None
    return item.text() if item is not None else None


def select_row_with(table: QTableWidget, column: int, text: str) -> None:
    """Select the row of ``table`` whose ``column`` shows ``text`` (nothing happens when none does)."""
    for row in range(table.rowCount()):
        item = table.item(row, column)
        if item is not None and item.text() == text:
            table.selectRow(row)
