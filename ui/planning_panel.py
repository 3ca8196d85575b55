"""The planning panel: landmarks and trajectories placed by clicking in the slice views, safety checks.

Every action calls :mod:`workstation.plan_case` (what ``twin plan`` calls). Safety is checked against
the critical segments (default: every segment except body/skin/bone and the target's own); the
prepared checker is kept, so dragging an entry or target re-checks live.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ui.document import Document
from ui.implant_tools import ImplantControls
from ui.slice_view import trajectory_color
from ui.widgets import select_row_with, selected_text, spin_box
from workstation.model.record import Record


class PlanningPanel(QWidget):
    """Plan items of the case, placing tools and the safety check."""

    tool_requested = Signal(str)

    def __init__(self, document: Document, run_job: Callable[..., Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("planning-panel")
        self.document, self.run_job = document, run_job
        self.checker: Any = None
        self.checker_structures: tuple[str, ...] = ()
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, 4, self)
        self.table.setObjectName("plan-table")
        self.table.setHorizontalHeaderLabels(("Kind", "Name", "Geometry (LPS mm)", "Safety"))
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.cellDoubleClicked.connect(self._go_to)
        layout.addWidget(self.table)
        row = QHBoxLayout()
        self.landmark_button = QPushButton("Landmark", self, objectName="tool-landmark")
        self.trajectory_button = QPushButton("Trajectory", self, objectName="tool-trajectory")
        self.plane_button = QPushButton("Resection plane", self, objectName="tool-plane")
        self.plane_button.setToolTip("Click two points in a slice view: the cut runs through them, perpendicular "
                                     "to that view;\nthe side its normal points to is kept.")
        for button, tool in ((self.landmark_button, "landmark"), (self.trajectory_button, "trajectory"),
                             (self.plane_button, "plane")):
            button.setCheckable(True)
            button.clicked.connect(lambda on, t=tool: self.tool_requested.emit(t if on else "navigate"))
            row.addWidget(button)
        self.remove_button = QPushButton("Remove", self, objectName="remove-plan-item")
        self.remove_button.clicked.connect(self.remove_selected)
        row.addWidget(self.remove_button)
        layout.addLayout(row)
        form = QFormLayout()
        self.diameter = spin_box(self, "tool-diameter", 0.1, 30.0, 2.0)
        self.margin = spin_box(self, "safety-margin", 0.0, 30.0, 2.0)
        form.addRow("Tool diameter", self.diameter)
        form.addRow("Safety margin", self.margin)
        layout.addLayout(form)
        self.implants = ImplantControls(self, self)
        self.implants.tool_requested.connect(self.tool_requested)
        layout.addWidget(self.implants)
        self.register_button = QPushButton("Register to patient...", self, objectName="open-registration")
        self.register_button.clicked.connect(self.open_registration)
        layout.addWidget(self.register_button)
        self.check_button = QPushButton("Check safety", self, objectName="check-safety")
        self.check_button.clicked.connect(self.check_selected)
        layout.addWidget(self.check_button)
        self.result_label = QLabel("Trajectory: click the entry, then the target, in any slice view.", self)
        self.result_label.setObjectName("safety-result")
        self.result_label.setWordWrap(True)
        layout.addWidget(self.result_label)
        layout.addStretch(1)
        document.plan_changed.connect(self.refresh)
        document.case_changed.connect(self._case_changed)
        self.refresh()

    def _case_changed(self) -> None:
        self.document.pending_entry, self.checker, self.checker_structures = None, None, ()
        self.refresh()

    # --- the list ---------------------------------------------------------------------------
    def refresh(self) -> None:
        doc = self.document
        plan = doc.case.plan if doc.case is not None else None
        rows: list[tuple[str, str, str, str, QColor | None]] = []
        if plan is not None:
            for lm in plan.landmarks:
                rows.append(("landmark", lm.name, ", ".join(f"{v:.1f}" for v in lm.position_lps), "", None))
            for plane in plan.resection_planes:
                meta = doc.safety(plane.name)
                removed = "" if meta is None else ", ".join(
                    f"{name} {ml:.1f} ml" for name, ml in meta.get("removed_ml", {}).items() if ml > 0)
                rows.append(("plane", plane.name, "normal " + ", ".join(f"{v:.2f}" for v in plane.normal_lps),
                             f"removes {removed or 'nothing'}" if meta is not None else "", None))
            for t in plan.trajectories:
                meta = doc.safety(t.name)
                if meta is None:
                    safety = "not checked"
                elif meta.get("min_clearance_mm") is None:
                    safety = "no structures"
                else:
                    safety = f"{'safe' if meta['safe'] else 'UNSAFE'}: min clearance {meta['min_clearance_mm']:.1f} mm"
                rows.append(("trajectory", t.name, f"{t.length_mm:.1f} mm, diameter {t.tool_diameter_mm:g} mm",
                             safety, trajectory_color(doc, t.name)))
            rows.extend(self.implants.rows())
        selected = self.selected_name()
        self.table.setRowCount(len(rows))
        for n, (kind, name, geometry, safety, color) in enumerate(rows):
            for col, text in enumerate((kind, name, geometry, safety)):
                item = QTableWidgetItem(text)
                if col == 3 and color is not None:
                    item.setForeground(color)
                self.table.setItem(n, col, item)
            if name == selected:
                self.table.selectRow(n)
        self.table.resizeColumnsToContents()
        enabled = doc.case is not None
        for widget in (self.landmark_button, self.trajectory_button, self.check_button, self.register_button,
                       self.plane_button):
            widget.setEnabled(enabled)
        self.implants.setEnabled(enabled)
        self.remove_button.setEnabled(bool(rows))

    def selected_name(self) -> str | None:
        return selected_text(self.table, 1)

    def select(self, name: str) -> None:
        select_row_with(self.table, 1, name)

    def _go_to(self, row: int, column: int) -> None:
        name = self.table.item(row, 1).text()
        plan = self.document.case.plan if self.document.case else None
        if plan is None:
            return
        for t in plan.trajectories:
            if t.name == name:
                self.document.set_crosshair(t.target_lps)
        for lm in plan.landmarks:
            if lm.name == name:
                self.document.set_crosshair(lm.position_lps)

    def set_tool_checked(self, tool: str) -> None:
        self.landmark_button.setChecked(tool == "landmark")
        self.trajectory_button.setChecked(tool == "trajectory")
        self.plane_button.setChecked(tool == "plane")
        self.implants.click_button.setChecked(tool == "implant")
        if tool not in ("trajectory", "plane", "implant"):
            self.document.pending_entry = None

    def open_registration(self) -> None:
        from ui.registration_dialog import RegistrationDialog

        self.registration_dialog = RegistrationDialog(self.document, self)
        self.registration_dialog.show()

    # --- placing (called by the slice views through the main window) ---------------------------------
    def _unique(self, base: str) -> str:
        from workstation import plan_case

        names = set(plan_case.item_names(self.document.case.plan)) if self.document.case else set()
        n = 1
        while f"{base}_{n}" in names:
            n += 1
        return f"{base}_{n}"

    def point_picked(self, tool: str, point_lps: NDArray[np.float64], view_normal: Any = (0.0, 0.0, 1.0)) -> None:
        from workstation import plan_case

        doc = self.document
        if doc.case is None:
            return
        if tool == "landmark":
            name = self._unique("landmark")
            plan_case.add_landmark(doc.case, name, point_lps)
            doc.plan_changed.emit()
            self.select(name)
        elif tool == "plane":
            if self.document.pending_entry is None:
                self.document.pending_entry = np.asarray(point_lps, dtype=float)
                self.result_label.setText("First point of the cut placed; click the second one.")
                doc.plan_changed.emit()
                return
            self.add_plane_through(self.document.pending_entry, point_lps, view_normal)
        elif tool == "implant":
            self.implants.point_picked(point_lps)
        elif tool == "trajectory":
            if self.document.pending_entry is None:
                self.document.pending_entry = np.asarray(point_lps, dtype=float)
                self.result_label.setText("Entry placed; now click the target.")
                doc.plan_changed.emit()
                return
            name = self._unique("trajectory")
            try:
                plan_case.add_trajectory(doc.case, name, self.document.pending_entry, point_lps,
                                         tool_diameter_mm=self.diameter.value())
            except Exception as exc:  # entry and target coincide, ...
                from ui.jobs import show_error

                show_error(self, "Trajectory", exc)
                return
            finally:
                self.document.pending_entry = None
            doc.modified = True
            doc.plan_changed.emit()
            self.select(name)
            self.result_label.setText(f"{name}: {doc.case.plan.trajectories[-1].length_mm:.1f} mm. "
                                      "Check safety, or drag its ends.")

    def add_plane_through(self, first: NDArray[np.float64], second: Any, view_normal: Any) -> None:
        """A resection plane through two clicked points, perpendicular to the view; volumes removed per segment."""
        from ui.jobs import show_error
        from workstation import plan_case

        doc = self.document
        self.document.pending_entry = None
        direction = np.asarray(second, dtype=float) - first
        normal = np.cross(direction, np.asarray(view_normal, dtype=float))
        if np.linalg.norm(normal) < 1e-6:
            show_error(self, "Resection plane", ValueError("the two points coincide: click two distinct points"))
            return
        name = self._unique("plane")
        plan_case.add_resection_plane(doc.case, name, first, normal / np.linalg.norm(normal))
        doc.modified = True
        if doc.label_map is not None and doc.label_map.segments and doc.label_map.id in doc.case.label_maps:
            result = plan_case.check_resection(doc.case, name)
            removed = ", ".join(f"{seg} {ml:.1f} of {result.total_ml[seg]:.1f} ml"
                                for seg, ml in result.removed_ml.items() if ml > 0) or "nothing"
            self.result_label.setText(f"{name}: removes {removed}.")
        doc.plan_changed.emit()
        self.select(name)

    def move_endpoint(self, name: str, end: str, point_lps: NDArray[np.float64], *, live: bool = True) -> None:
        """Move a trajectory's ``end`` (``"entry"`` or ``"target"``); re-check live with the prepared checker."""
        from workstation import plan_case

        doc = self.document
        t = plan_case.trajectory(doc.case, name)
        entry = point_lps if end == "entry" else t.entry_lps
        target = point_lps if end == "target" else t.target_lps
        if np.allclose(entry, target):
            return
        plan_case.add_trajectory(doc.case, name, entry, target, tool_diameter_mm=t.tool_diameter_mm)
        doc.modified = True
        if live and self.checker is not None:
            self._store(plan_case.check_trajectory(doc.case, name, margin_mm=self.margin.value(),
                                                   checker=self.checker, store=False))
        doc.plan_changed.emit()

    def remove_selected(self) -> None:
        from workstation import plan_case

        name = self.selected_name()
        if name and self.document.case is not None:
            plan_case.remove_item(self.document.case, name)
            self.document.modified = True
            self.document.plan_changed.emit()

    # --- safety ------------------------------------------------------------------------------------
    def check_selected(self) -> None:
        from workstation import plan_case

        doc = self.document
        name = self.selected_name()
        if doc.case is None:
            return
        if name is not None and name in self.implants.names():
            self.implants.check(name)
            return
        trajectories = [t.name for t in doc.case.plan.trajectories]
        if name not in trajectories:
            name = trajectories[-1] if trajectories else None
        if name is None:
            self.result_label.setText("No trajectory to check: place one first.")
            return
        case, margin = doc.case, self.margin.value()
        target = plan_case.trajectory(case, name).target_lps

        def work(progress: Any) -> tuple[Any, tuple[str, ...], Any]:
            critical = tuple(plan_case.default_critical(case, [target]))
            checker = self.checker if critical == self.checker_structures and self.checker is not None else \
                plan_case.safety_checker(case, list(critical), progress=progress)
            return checker, critical, plan_case.check_trajectory(case, name, checker=checker, margin_mm=margin,
                                                                 store=False)

        def done(result: tuple[Any, tuple[str, ...], Any]) -> None:
            self.checker, self.checker_structures, safety = result
            self._store(safety)
            doc.meshes_changed.emit()  # surfaces of the critical segments may have been built
            doc.plan_changed.emit()
            self.select(name)

        self.run_job(f"Safety of {name}", work, done)

    def _store(self, safety: Any) -> None:
        doc = self.document
        doc.case.add_record(Record(kind="safety", name=safety.trajectory, meta=safety.to_meta()),
                            replace_same_name=True)
        doc.modified = True
        if safety.structures:
            worst = min(safety.structures, key=lambda s: s.clearance_mm)
            verdict = "SAFE" if safety.safe else "UNSAFE: " + ", ".join(s.segment for s in safety.violations)
            self.result_label.setText(f"{safety.trajectory}: {verdict}. Closest: {worst.segment} "
                                      f"{worst.clearance_mm:.1f} mm (margin {safety.margin_mm:g} mm).")
        else:
            self.result_label.setText(f"{safety.trajectory}: no critical structure to check against.")
