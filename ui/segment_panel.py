"""The segment editor panel: segments, tools (paint, erase, seeds), presets, threshold, grow, surfaces."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QColorDialog,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ui.document import Document
from ui.widgets import select_row_with, selected_text, spin_box

TOOLS = (("navigate", "Navigate", "Esc"), ("paint", "Paint", "B"), ("erase", "Erase", "E"),
         ("seed", "Seed", "G"), ("seed_background", "Background seed", "Shift+G"))


class SegmentPanel(QWidget):
    """Controls of the segment editor; every button calls one :class:`Document` method (or a job)."""

    tool_changed = Signal(str)
    brush_changed = Signal(float)
    segment_selected = Signal(object)  # segment name or None

    def __init__(self, document: Document, run_job: Callable[..., Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("segment-panel")
        self.document, self.run_job = document, run_job
        layout = QVBoxLayout(self)

        self.table = QTableWidget(0, 4, self)
        self.table.setObjectName("segment-table")
        self.table.setHorizontalHeaderLabels(("Show", "Colour", "Name", "Opacity"))
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(False)
        self.table.setMinimumHeight(140)
        self.table.itemSelectionChanged.connect(lambda: self.segment_selected.emit(self.current_segment()))
        self.table.cellDoubleClicked.connect(self._cell_double_clicked)
        layout.addWidget(self.table)
        row = QHBoxLayout()
        self.add_button = QPushButton("Add", self, objectName="add-segment")
        self.add_button.clicked.connect(self.add_segment)
        self.remove_button = QPushButton("Remove", self, objectName="remove-segment")
        self.remove_button.clicked.connect(self.remove_segment)
        self.undo_button = QPushButton("Undo", self, objectName="undo")
        self.undo_button.clicked.connect(document.undo)
        self.redo_button = QPushButton("Redo", self, objectName="redo")
        self.redo_button.clicked.connect(document.redo)
        for button in (self.add_button, self.remove_button, self.undo_button, self.redo_button):
            row.addWidget(button)
        layout.addLayout(row)

        tools = QGroupBox("Tools", self)
        grid = QGridLayout(tools)
        self.tool_group = QButtonGroup(self)
        self.tool_buttons: dict[str, QPushButton] = {}
        for n, (tool, text, key) in enumerate(TOOLS):
            button = QPushButton(text, tools, objectName=f"tool-{tool}")
            button.setCheckable(True)
            button.setToolTip(f"{text} ({key})")
            self.tool_group.addButton(button)
            self.tool_buttons[tool] = button
            button.clicked.connect(lambda _=False, t=tool: self.set_tool(t))
            grid.addWidget(button, n // 3, n % 3)
        self.tool_buttons["navigate"].setChecked(True)
        self.brush = spin_box(tools, "brush-radius", 0.5, 50.0, 5.0)
        self.brush.setSingleStep(0.5)
        self.brush.valueChanged.connect(self.brush_changed.emit)
        form = QFormLayout()
        form.addRow("Brush radius", self.brush)
        grid.addLayout(form, 2, 0, 1, 3)
        layout.addWidget(tools)

        presets = QGroupBox("Preset (CT)", self)
        row = QHBoxLayout(presets)
        self.preset_combo = QComboBox(presets, objectName="preset-combo")
        self.preset_button = QPushButton("Apply", presets, objectName="apply-preset")
        self.preset_button.clicked.connect(self.apply_preset)
        row.addWidget(self.preset_combo, 1)
        row.addWidget(self.preset_button)
        layout.addWidget(presets)

        thresh = QGroupBox("Threshold", self)
        grid = QGridLayout(thresh)
        self.lower = QDoubleSpinBox(thresh, objectName="threshold-lower")
        self.upper = QDoubleSpinBox(thresh, objectName="threshold-upper")
        for box, value in ((self.lower, 200.0), (self.upper, 3000.0)):
            box.setRange(-5000.0, 50000.0)
            box.setDecimals(0)
            box.setSingleStep(10.0)
            box.setValue(value)
            box.valueChanged.connect(self.update_preview)
        self.preview = QCheckBox("Live preview", thresh, objectName="threshold-preview")
        self.preview.toggled.connect(self.update_preview)
        self.threshold_button = QPushButton("Apply to segment", thresh, objectName="apply-threshold")
        self.threshold_button.clicked.connect(self.apply_threshold)
        grid.addWidget(self.lower, 0, 0)
        grid.addWidget(self.upper, 0, 1)
        grid.addWidget(self.preview, 1, 0)
        grid.addWidget(self.threshold_button, 1, 1)
        layout.addWidget(thresh)

        cleanup = QGroupBox("Islands and smoothing", self)
        row = QHBoxLayout(cleanup)
        self.island_button = QPushButton("Keep largest island", cleanup, objectName="keep-largest")
        self.island_button.clicked.connect(lambda: self._on_current(self.document.keep_largest_island))
        self.smooth_radius = spin_box(cleanup, "smooth-radius", 0.5, 20.0, 2.0)
        self.smooth_button = QPushButton("Smooth", cleanup, objectName="smooth")
        self.smooth_button.clicked.connect(
            lambda: self._on_current(lambda name: self.document.smooth_segment(name, self.smooth_radius.value())))
        row.addWidget(self.island_button)
        row.addWidget(self.smooth_radius)
        row.addWidget(self.smooth_button)
        layout.addWidget(cleanup)

        grow = QGroupBox("Grow from seeds", self)
        row = QHBoxLayout(grow)
        self.grow_button = QPushButton("Grow", grow, objectName="grow")
        self.grow_button.setToolTip("Paint strokes with Seed (each segment) and Background seed, then Grow. The seeds "
                                    "stay: add strokes and Grow again to refine (updated in place, not recomputed)")
        self.grow_button.clicked.connect(self.grow)
        self.clear_seeds_button = QPushButton("Clear seeds", grow, objectName="clear-seeds")
        self.clear_seeds_button.clicked.connect(document.clear_seeds)
        row.addWidget(self.grow_button)
        row.addWidget(self.clear_seeds_button)
        layout.addWidget(grow)

        row = QHBoxLayout()
        self.surfaces_button = QPushButton("Build surfaces", self, objectName="build-surfaces")
        self.surfaces_button.clicked.connect(self.build_surfaces)
        self.stats_button = QPushButton("Statistics", self, objectName="statistics")
        self.stats_button.clicked.connect(self.show_statistics)
        row.addWidget(self.surfaces_button)
        row.addWidget(self.stats_button)
        layout.addLayout(row)
        layout.addStretch(1)

        document.case_changed.connect(self.refresh)
        document.labels_changed.connect(self.refresh)
        document.history_changed.connect(self._history_changed)
        self.stats_dialog: QDialog | None = None
        self._signature: object = None
        self.refresh()

    # --- segment list ----------------------------------------------------------------------
    def refresh(self) -> None:
        """Rebuild the list from the document (signals blocked: the document is the state)."""
        doc = self.document
        if doc._stroke is not None:  # a stroke in progress does not change the list
            return
        segments = doc.segments()
        signature = (tuple((s.value, s.name, s.color_rgb) for s in segments), frozenset(doc.hidden), doc.has_volume)
        if signature == self._signature:  # voxels changed, the list did not: keep the widgets
            return
        self._signature = signature
        current = self.current_segment()
        self.table.blockSignals(True)
        for row in range(self.table.rowCount()):  # replaced cell widgets are not deleted by Qt right away
            for col in (0, 1, 3):
                old = self.table.cellWidget(row, col)
                if old is not None:
                    self.table.removeCellWidget(row, col)
                    old.hide()
                    old.deleteLater()
        self.table.setRowCount(len(segments))
        for row, segment in enumerate(segments):
            show = QCheckBox(self.table)
            show.setObjectName(f"show-{segment.name}")
            show.setChecked(segment.value not in doc.hidden)
            show.toggled.connect(lambda on, v=segment.value: doc.set_visible(v, on))
            self.table.setCellWidget(row, 0, show)
            swatch = QLabel(self.table)
            swatch.setObjectName(f"colour-{segment.name}")
            swatch.setStyleSheet(f"background-color: {QColor.fromRgbF(*segment.color_rgb).name()}; margin: 3px;")
            swatch.setToolTip("double-click to change the colour")
            swatch.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            self.table.setCellWidget(row, 1, swatch)
            self.table.setItem(row, 2, QTableWidgetItem(segment.name))
            opacity = QDoubleSpinBox(self.table)
            opacity.setObjectName(f"opacity-{segment.name}")
            opacity.setRange(0.0, 1.0)
            opacity.setSingleStep(0.1)
            opacity.setValue(doc.opacity.get(segment.value, 0.5))
            opacity.valueChanged.connect(lambda x, v=segment.value: doc.set_opacity(v, x))
            self.table.setCellWidget(row, 3, opacity)
        names = [s.name for s in segments]
        if names:
            self.table.selectRow(names.index(current) if current in names else len(names) - 1)
        self.table.resizeColumnsToContents()
        self.table.blockSignals(False)
        self.segment_selected.emit(self.current_segment())
        enabled = doc.has_volume
        if enabled:
            self._fill_presets()
        for widget in (self.add_button, self.preset_button, self.threshold_button, self.grow_button,
                       self.surfaces_button, self.stats_button, self.island_button, self.smooth_button):
            widget.setEnabled(enabled)
        self.remove_button.setEnabled(bool(names))

    def _fill_presets(self) -> None:
        """The CT presets (imported on first use: numba and scipy stay off the start-up path)."""
        if self.preset_combo.count():
            return
        from segmentation.threshold import CT_PRESETS

        for name, preset in CT_PRESETS.items():
            self.preset_combo.addItem(name, name)
            self.preset_combo.setItemData(self.preset_combo.count() - 1, preset.description,
                                          Qt.ItemDataRole.ToolTipRole)

    def current_segment(self) -> str | None:
        return selected_text(self.table, 2)

    def select_segment(self, name: str) -> None:
        select_row_with(self.table, 2, name)

    def _history_changed(self) -> None:
        self.undo_button.setEnabled(self.document.history.can_undo())
        self.redo_button.setEnabled(self.document.history.can_redo())

    def add_segment(self, name: str | None = None) -> None:
        if not name:
            name, ok = QInputDialog.getText(self, "Add segment", "Name (e.g. liver, tumour):")
            if not ok or not name.strip():
                return
        self._guarded(lambda: self.document.add_segment(name.strip()))
        self.select_segment(name.strip())

    def remove_segment(self) -> None:
        name = self.current_segment()
        if name:
            self._guarded(lambda: self.document.remove_segment(name))

    def _on_current(self, action: Callable[[str], Any]) -> None:
        name = self.current_segment()
        if name:
            self._guarded(lambda: action(name))

    def _cell_double_clicked(self, row: int, column: int) -> None:
        if column != 1:
            return
        segment = self.document.segments()[row]
        color = QColorDialog.getColor(QColor.fromRgbF(*segment.color_rgb), self, f"Colour of {segment.name}")
        if color.isValid():
            self.document.recolor_segment(segment.name, (color.redF(), color.greenF(), color.blueF()))

    def _guarded(self, action: Callable[[], Any]) -> Any:
        from ui.jobs import show_error

        try:
            return action()
        except Exception as exc:
            show_error(self, "Segment editor", exc)
            return None

    # --- tools -----------------------------------------------------------------------------
    def set_tool(self, tool: str) -> None:
        if tool in ("paint", "erase", "seed") and not self.current_segment() and self.document.has_volume:
            self.add_segment(f"segment_{len(self.document.segments()) + 1}")
        self.tool_buttons[tool].setChecked(True)
        self.tool_changed.emit(tool)

    def show_tool(self, tool: str) -> None:
        """Check the button of ``tool`` (none for tools of other panels), without emitting."""
        self.tool_group.setExclusive(False)
        for name, button in self.tool_buttons.items():
            button.setChecked(name == tool)
        self.tool_group.setExclusive(True)

    def current_tool(self) -> str:
        return next((t for t, b in self.tool_buttons.items() if b.isChecked()), "other")

    # --- operations (long ones in a worker thread) -------------------------------------------
    def apply_preset(self) -> None:
        preset = self.preset_combo.currentData()
        doc = self.document
        self.run_job(f"Preset {preset}", lambda progress: doc.compute_preset(preset, progress=progress),
                     lambda new: (doc.commit(new, f"preset {preset}"), self.select_segment(preset)))

    def update_preview(self) -> None:
        doc = self.document
        if not doc.has_volume or not self.preview.isChecked():
            if doc.preview_mask is not None:
                doc.set_preview(None)
            return
        if self.lower.value() > self.upper.value():
            doc.set_preview(None)
            return
        doc.set_preview(doc.threshold_mask(self.lower.value(), self.upper.value()))

    def apply_threshold(self) -> None:
        name = self.current_segment()
        if not name:
            self.add_segment("threshold")
            name = self.current_segment()
        if name:
            self._guarded(lambda: self.document.apply_threshold(name, self.lower.value(), self.upper.value()))
            self.preview.setChecked(False)

    def grow(self) -> None:
        doc = self.document
        self.run_job("Grow from seeds", doc.grow, doc.finish_grow)

    def build_surfaces(self) -> None:
        doc = self.document
        self.run_job("Build surfaces", lambda progress: doc.compute_surfaces(progress=progress), doc.store_surfaces)

    def show_statistics(self) -> None:
        stats = self._guarded(self.document.statistics) or []
        dialog = QDialog(self)
        dialog.setObjectName("statistics-dialog")
        dialog.setWindowTitle("Segment statistics")
        table = QTableWidget(len(stats), 6, dialog)
        table.setObjectName("statistics-table")
        table.setHorizontalHeaderLabels(("Segment", "Voxels", "Volume (ml)", "Surface (mm²)", "Mean", "Std"))
        for row, s in enumerate(stats):
            values = (s.name, f"{s.voxels}", f"{s.volume_ml:.2f}", f"{s.surface_area_mm2:.0f}",
                      "-" if s.mean is None else f"{s.mean:.1f}", "-" if s.std is None else f"{s.std:.1f}")
            for col, value in enumerate(values):
                table.setItem(row, col, QTableWidgetItem(value))
        table.resizeColumnsToContents()
        QVBoxLayout(dialog).addWidget(table)
        dialog.resize(560, 240)
        self.stats_dialog = dialog
        dialog.show()
