"""The segment editor panel: segments, tools (paint, erase, seeds), presets, threshold, modify, grow, surfaces."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
    QLineEdit,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ui.document import Document
from ui.widgets import select_row_with, selected_text, spin_box
from workstation.errors import InputError

if TYPE_CHECKING:
    from workstation.model.labelmap import LabelMap

TOOLS = (("navigate", "Navigate", "Esc"), ("paint", "Paint", "B"), ("erase", "Erase", "E"),
         ("seed", "Seed", "G"), ("seed_background", "Background seed", "Shift+G"), ("draw", "Draw", "D"),
         ("scissors", "Scissors", "X"), ("level_trace", "Level trace", "V"))
TOOL_TIPS = {
    "draw": "Draw (D): drag around a region in a slice view to fill it in that slice; hold Ctrl on release to "
            "erase it instead. Outline every few slices, then Modify > Fill between slices",
    "scissors": "Scissors (X): drag around a region in a slice view to erase it from the segment in every slice; "
                "hold Ctrl on release to keep only what lies inside",
    "level_trace": "Level trace (V): point at the edge of a structure in a slice view (its outline is shown "
                   "under the cursor) and click to fill the region that iso-contour encloses in that slice; "
                   "for a structure darker than its surroundings tick "
                   "'Level trace: a darker structure' (or Alt+click); Ctrl+click erases",
}


@dataclass(frozen=True)
class ValueField:
    """What the Modify group's number field asks for: label, unit suffix, range, default and decimals."""

    label: str
    suffix: str
    low: float
    high: float
    default: float
    decimals: int = 1


@dataclass(frozen=True)
class Modification:
    """One entry of the Modify group's operation combo and the inputs it shows."""

    key: str
    text: str
    value: ValueField | None = None
    other_segment: bool = False  # Union / Intersect / Subtract: the second segment's combo
    overwrite_option: bool = False  # the core function takes ``overwrite`` (the "Only unlabelled voxels" box)
    new_name: bool = False
    long: bool = False  # more than ~1 s on ct-abdomen-20 (512 x 512 x 20): always runs as a job
    distance: bool = False  # a distance transform: time grows with the grid, a job on grids over JOB_ABOVE_VOXELS


# Margins took up to ~1 s on ct-abdomen-20 (5.2 M voxels) in the app on a busy 2-core box; on grids four
# times larger they run in a worker thread so that the window does not freeze.
JOB_ABOVE_VOXELS = 20_000_000
_MARGIN = ValueField("Margin", " mm", 0.1, 100.0, 3.0)
_THICKNESS = ValueField("Thickness", " mm", 0.1, 100.0, 3.0)
MODIFICATIONS: tuple[Modification, ...] = (
    Modification("grow", "Grow", _MARGIN, overwrite_option=True, distance=True),
    Modification("shrink", "Shrink", _MARGIN, overwrite_option=True, distance=True),
    Modification("smooth", "Smooth", ValueField("Radius", " mm", 0.1, 50.0, 2.0), overwrite_option=True,
                 distance=True, long=True),
    Modification("fill_holes", "Fill holes", overwrite_option=True),
    Modification("fill_holes_per_slice", "Fill holes per slice", overwrite_option=True),
    Modification("fill_between_slices", "Fill between slices", overwrite_option=True),
    Modification("hollow_inside", "Hollow (inside)", _THICKNESS, overwrite_option=True, distance=True),
    Modification("hollow_outside", "Hollow (outside)", _THICKNESS, overwrite_option=True, distance=True),
    Modification("remove_small", "Remove pieces smaller than", ValueField("Volume", " ml", 0.01, 10000.0, 0.5, 2)),
    Modification("union", "Union with", ValueField("Margin", " mm", 0.0, 100.0, 0.0), other_segment=True,
                 overwrite_option=True, distance=True),
    Modification("intersect", "Intersect with", ValueField("Margin", " mm", 0.0, 100.0, 10.0), other_segment=True,
                 overwrite_option=True, distance=True),
    Modification("subtract", "Subtract", ValueField("Margin", " mm", 0.0, 100.0, 5.0), other_segment=True,
                 overwrite_option=True, distance=True),
    Modification("keep_largest", "Keep largest piece"),
    Modification("keep_at_crosshair", "Keep piece under crosshair"),
    Modification("rename", "Rename", new_name=True),
)


def modification_edit(key: str, name: str, *, value: float = 0.0, other: str | None = None, overwrite: bool = True,
                      new_name: str = "", point_lps: Any = None) -> tuple[str, Callable[[LabelMap], LabelMap]]:
    """The undo description and the :mod:`workstation.segment_edits` call of Modify entry ``key`` on segment ``name``.

    ``value`` is in the entry's unit (mm or ml), ``other`` the second segment of Union / Intersect /
    Subtract, ``point_lps`` the crosshair (LPS mm) for Keep piece under crosshair.
    """
    from workstation import segment_edits as edits

    if key in ("grow", "shrink", "smooth"):
        return (f"{key} {name} {value:g} mm",
                lambda labels: edits.morph(labels, name, operation=key, mm=value, overwrite=overwrite))
    if key in ("fill_holes", "fill_holes_per_slice"):
        per_slice = key == "fill_holes_per_slice"
        return (f"fill holes of {name}{' per slice' if per_slice else ''}",
                lambda labels: edits.fill_holes(labels, name, per_slice=per_slice, overwrite=overwrite))
    if key == "fill_between_slices":
        return (f"fill between slices of {name}",
                lambda labels: edits.fill_between_slices(labels, name, overwrite=overwrite))
    if key in ("hollow_inside", "hollow_outside"):
        inside = key == "hollow_inside"
        return (f"hollow {name} {value:g} mm {'inside' if inside else 'outside'}",
                lambda labels: edits.hollow(labels, name, thickness_mm=value, inside=inside, overwrite=overwrite))
    if key == "remove_small":
        return f"remove pieces of {name} under {value:g} ml", lambda labels: edits.remove_small(labels, name,
                                                                                               min_ml=value)
    if key in ("union", "intersect", "subtract"):
        others = [other] if other else []
        word = {"union": "union", "intersect": "intersect", "subtract": "minus"}[key]
        return (f"{name} {word} {other} +{value:g} mm",
                lambda labels: edits.combine(labels, name, operation=key, others=others, margin_mm=value,
                                             overwrite=overwrite))
    if key == "keep_largest":
        return f"largest piece of {name}", lambda labels: edits.keep_largest(labels, name)
    if key == "keep_at_crosshair":
        return f"keep piece of {name} under crosshair", lambda labels: edits.keep_at_points(labels, name,
                                                                                           points_lps=point_lps)
    if key == "rename":
        return f"rename {name} to {new_name}", lambda labels: edits.rename_segment(labels, name, new_name=new_name)
    raise ValueError(f"unknown modification {key!r}")


class SegmentPanel(QWidget):
    """Controls of the segment editor; every button calls one :class:`Document` method (or a job)."""

    tool_changed = Signal(str)
    brush_changed = Signal(float)
    segment_selected = Signal(object)  # segment name or None

    def __init__(self, document: Document, run_job: Callable[..., Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("segment-panel")
        self.document, self.run_job = document, run_job
        # The groups scroll: the panel must not make the main window taller than a laptop screen.
        scroll = QScrollArea(self)
        scroll.setObjectName("segment-scroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        content = QWidget(scroll)
        layout = QVBoxLayout(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

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
        self.undo_button.clicked.connect(lambda: self._guarded(document.undo))
        self.redo_button = QPushButton("Redo", self, objectName="redo")
        self.redo_button.clicked.connect(lambda: self._guarded(document.redo))
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
            button.setToolTip(TOOL_TIPS.get(tool, f"{text} ({key})"))
            self.tool_group.addButton(button)
            self.tool_buttons[tool] = button
            button.clicked.connect(lambda _=False, t=tool: self.set_tool(t))
            grid.addWidget(button, n // 3, n % 3)
        self.tool_buttons["navigate"].setChecked(True)
        self.brush = spin_box(tools, "brush-radius", 0.5, 50.0, 5.0)
        self.brush.setSingleStep(0.5)
        self.brush.valueChanged.connect(self.brush_changed.emit)
        self.brush_2d = QCheckBox("2-D: the view's slice only", tools, objectName="brush-2d")
        self.brush_2d.setToolTip("Paint and erase in the slice shown, not a ball: outline a structure every few "
                                 "slices, then Modify > Fill between slices")
        self.brush_2d.toggled.connect(lambda on: setattr(document, "brush_2d", bool(on)))
        form = QFormLayout()
        form.addRow("Brush radius", self.brush)
        form.addRow("", self.brush_2d)
        self.trace_darker = QCheckBox("Level trace: a darker structure", tools, objectName="trace-darker")
        self.trace_darker.setToolTip("Level trace fills the pixels at most as bright as the one clicked (a cyst, a "
                                     "vessel lumen in bone) instead of at least as bright; Alt+click does the same")
        self.trace_darker.toggled.connect(document.set_trace_darker)
        form.addRow("", self.trace_darker)
        grid.addLayout(form, (len(TOOLS) + 2) // 3, 0, 1, 3)  # below the rows of tool buttons
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

        layout.addWidget(self._modify_group())

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
        scroll.setWidget(content)
        scroll.setMinimumWidth(content.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width())

        document.case_changed.connect(self.refresh)
        document.labels_changed.connect(self.refresh)
        document.history_changed.connect(self._history_changed)
        self.segment_selected.connect(lambda _: self._update_modify())
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
                       self.surfaces_button, self.stats_button):
            widget.setEnabled(enabled)
        self.remove_button.setEnabled(bool(names))
        self._update_modify()

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
        if (tool in ("paint", "erase", "seed", "draw", "level_trace") and not self.current_segment()
                and self.document.has_volume):
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

    # --- modify segment (margins, holes, hollow, islands, logical operators, rename) -----------
    def _modify_group(self) -> QGroupBox:
        group = QGroupBox("Modify segment", self)
        group.setObjectName("modify-group")
        grid = QGridLayout(group)
        self.modify_combo = QComboBox(group, objectName="modify-operation")
        for modification in MODIFICATIONS:
            self.modify_combo.addItem(modification.text, modification.key)
        self.modify_value_label = QLabel(group, objectName="modify-value-label")
        self.modify_value = QDoubleSpinBox(group, objectName="modify-value")
        self.modify_values = {m.key: m.value.default for m in MODIFICATIONS if m.value is not None}  # per operation
        self.modify_value.valueChanged.connect(self._modify_value_changed)
        self.modify_other_label = QLabel("with", group)
        self.modify_other = QComboBox(group, objectName="modify-other")
        self.modify_name_label = QLabel("New name", group)
        self.modify_name = QLineEdit(group, objectName="modify-name")
        self.modify_name.returnPressed.connect(self.apply_modification)
        self.modify_overwrite = QCheckBox("Only unlabelled voxels", group, objectName="modify-only-unlabelled")
        self.modify_overwrite.setToolTip("Take only voxels of no segment (otherwise other segments lose the voxels "
                                         "this one gains)")
        self.modify_button = QPushButton("Apply", group, objectName="apply-modify")
        self.modify_button.clicked.connect(self.apply_modification)
        grid.addWidget(self.modify_combo, 0, 0, 1, 2)
        grid.addWidget(self.modify_value_label, 1, 0)
        grid.addWidget(self.modify_value, 1, 1)
        grid.addWidget(self.modify_other_label, 2, 0)
        grid.addWidget(self.modify_other, 2, 1)
        grid.addWidget(self.modify_name_label, 3, 0)
        grid.addWidget(self.modify_name, 3, 1)
        grid.addWidget(self.modify_overwrite, 4, 0)
        grid.addWidget(self.modify_button, 4, 1)
        self.modify_combo.currentIndexChanged.connect(self._modify_operation_changed)
        self._modify_operation_changed()
        return group

    def current_modification(self) -> Modification:
        return MODIFICATIONS[max(self.modify_combo.currentIndex(), 0)]

    def _modify_operation_changed(self) -> None:
        """Show the inputs of the chosen operation; the number field takes its label, unit, range and last value."""
        modification = self.current_modification()
        field = modification.value
        self.modify_value_label.setVisible(field is not None)
        self.modify_value.setVisible(field is not None)
        if field is not None:
            self.modify_value.blockSignals(True)
            self.modify_value_label.setText(field.label)
            self.modify_value.setDecimals(field.decimals)
            self.modify_value.setRange(field.low, field.high)
            self.modify_value.setSingleStep(0.5 if field.suffix == " mm" else 0.1)
            self.modify_value.setSuffix(field.suffix)
            self.modify_value.setValue(self.modify_values[modification.key])
            self.modify_value.blockSignals(False)
        self.modify_other_label.setVisible(modification.other_segment)
        self.modify_other.setVisible(modification.other_segment)
        self.modify_name_label.setVisible(modification.new_name)
        self.modify_name.setVisible(modification.new_name)
        self._update_modify()

    def _modify_value_changed(self, value: float) -> None:
        modification = self.current_modification()
        if modification.value is not None:
            self.modify_values[modification.key] = value

    def _update_modify(self) -> None:
        """The second-segment choices (the segments but the selected one) and what can be applied."""
        current = self.current_segment()
        others = [s.name for s in self.document.segments() if s.name != current]
        if others != [self.modify_other.itemText(n) for n in range(self.modify_other.count())]:
            chosen = self.modify_other.currentText()
            self.modify_other.blockSignals(True)
            self.modify_other.clear()
            self.modify_other.addItems(others)
            if chosen in others:
                self.modify_other.setCurrentText(chosen)
            self.modify_other.blockSignals(False)
        modification = self.current_modification()
        self.modify_overwrite.setEnabled(modification.overwrite_option)
        ready = self.document.has_volume and current is not None and (bool(others) or not modification.other_segment)
        self.modify_button.setEnabled(ready)
        self.modify_combo.setEnabled(self.document.has_volume)

    def apply_modification(self) -> None:
        """Apply the chosen operation to the selected segment: directly, or as a job when it is long."""
        name = self.current_segment()
        modification = self.current_modification()
        if not name or not self.modify_button.isEnabled():
            return
        doc = self.document
        description, edit = modification_edit(
            modification.key, name, value=self.modify_value.value(), other=self.modify_other.currentText() or None,
            overwrite=not (modification.overwrite_option and self.modify_overwrite.isChecked()),
            new_name=self.modify_name.text().strip(), point_lps=doc.crosshair_lps.copy())
        before = doc.label_map
        if before is None:
            return
        if not (modification.long or (modification.distance and before.array.size > JOB_ABOVE_VOXELS)):
            self._guarded(lambda: doc.apply_edit(description, edit))
            if modification.new_name and doc.label_map is not before:
                self.select_segment(self.modify_name.text().strip())  # the renamed segment stays selected
            return

        def store(new: LabelMap) -> None:
            if doc.label_map is not before:  # edited or another case opened while the job ran
                raise InputError(f"{description}: the segments changed while it ran; apply it again")
            doc.apply_edit(description, lambda _: new)

        self.run_job(description[:1].upper() + description[1:], lambda progress: edit(before), store)

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
