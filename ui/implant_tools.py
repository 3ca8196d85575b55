"""Implants in the planning panel: placed along a trajectory or by two clicks (head, tip); drawn and checked.

The pose is the one :func:`workstation.plan_case.add_implant` stores (that of
:mod:`workstation.export.tool_pose`): origin at the tip, +z along the insertion direction, the body over
implant z in ``[-length_mm, 0]``. Safety treats the implant as a capsule of its diameter from head to tip,
the tool model of :class:`workstation.planning.safety.SafetyChecker`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from ui.widgets import spin_box
from workstation.model.plan import Implant, Trajectory

IMPLANT_RGB = (170, 110, 255)  # violet: apart from landmarks (orange), tools (cyan/green/red), planes (pink)
FILL_ALPHA = 200


def implant_capsule(implant: Implant) -> Trajectory:
    """The implant as the safety checker's tool: a capsule of its diameter from head to tip."""
    from workstation.plan_case import implant_ends

    head, tip = implant_ends(implant)
    return Trajectory(name=implant.name, entry_lps=head, target_lps=tip, tool_diameter_mm=implant.diameter_mm)


def implant_mesh(implant: Implant) -> Any:
    """The implant's cylinder (pyvista, LPS mm) from head to tip, drawn by the rendering core's ``implant_body``."""
    from workstation.render.plan_objects import implant_body

    return implant_body(implant)


def implant_color(document: Any, name: str) -> QColor:
    """Violet until checked; then green (safe) or red (unsafe), as trajectories."""
    from ui.slice_view import trajectory_color

    return QColor(*IMPLANT_RGB) if document.safety(name) is None else trajectory_color(document, name)


def outline_polygon(view: Any, implant: Implant) -> QPolygonF | None:
    """Widget polygon of the implant's cylinder projected on ``view`` (a rectangle of its diameter)."""
    from workstation.plan_case import implant_ends

    current = view.slice
    if current is None:
        return None
    head, tip = implant_ends(implant)
    normal = np.cross(current.col_step_lps, current.row_step_lps)
    normal /= np.linalg.norm(normal)
    axis = tip - head
    in_plane = axis - (axis @ normal) * normal
    side = np.cross(normal, in_plane)
    if np.linalg.norm(side) < 1e-9:  # seen end-on: a square of the diameter around the axis
        side = np.asarray(current.col_step_lps, dtype=float)
    side = side / np.linalg.norm(side) * implant.diameter_mm / 2
    corners = (head + side, tip + side, tip - side, head - side)
    return QPolygonF([view.widget_pos_of(c) for c in corners])


def draw_implants(view: Any, painter: QPainter) -> None:
    """Every implant of the document's plan as a filled outline of its diameter, projected on ``view``."""
    doc = view.document
    if doc.case is None:
        return
    for implant in doc.case.plan.implants:
        polygon = outline_polygon(view, implant)
        if polygon is None:
            continue
        fill = QColor(*IMPLANT_RGB, FILL_ALPHA)
        painter.setPen(QPen(implant_color(doc, implant.name), 2))
        painter.setBrush(QBrush(fill))
        painter.drawPolygon(polygon)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawText(polygon[0] + QPointF(6, -6), implant.name)


class ImplantControls(QWidget):
    """Implant size, the two ways of placing one, and its safety; part of the planning panel."""

    tool_requested = Signal(str)

    def __init__(self, panel: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("implant-controls")
        self.panel, self.document = panel, panel.document
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.click_button = QPushButton("Implant (head, tip)", self, objectName="tool-implant")
        self.click_button.setCheckable(True)
        self.click_button.setToolTip("Click the implant's head, then its tip, in a slice view; its length is their "
                                     "distance.")
        self.click_button.clicked.connect(lambda on: self.tool_requested.emit("implant" if on else "navigate"))
        self.on_trajectory_button = QPushButton("Implant on trajectory", self, objectName="implant-on-trajectory")
        self.on_trajectory_button.setToolTip("Tip at the selected (or last) trajectory's target, along its direction.")
        self.on_trajectory_button.clicked.connect(lambda: self.place_on_trajectory())
        row.addWidget(self.click_button)
        row.addWidget(self.on_trajectory_button)
        layout.addLayout(row)
        form = QFormLayout()
        self.diameter = spin_box(self, "implant-diameter", 0.5, 30.0, 6.5)
        self.length = spin_box(self, "implant-length", 1.0, 200.0, 45.0)
        form.addRow("Implant diameter", self.diameter)
        form.addRow("Implant length", self.length)
        layout.addLayout(form)

    # --- the list ---------------------------------------------------------------------------
    def rows(self) -> list[tuple[str, str, str, str, QColor | None]]:
        """Planning-table rows (kind, name, geometry, safety, colour) of the plan's implants."""
        doc = self.document
        out: list[tuple[str, str, str, str, QColor | None]] = []
        for implant in (doc.case.plan.implants if doc.case is not None else ()):
            meta = doc.safety(implant.name)
            if meta is None:
                safety = "not checked"
            elif meta.get("min_clearance_mm") is None:
                safety = "no structures"
            else:
                safety = f"{'safe' if meta['safe'] else 'UNSAFE'}: min clearance {meta['min_clearance_mm']:.1f} mm"
            out.append(("implant", implant.name,
                        f"{implant.kind}: diameter {implant.diameter_mm:g} mm, length {implant.length_mm:g} mm",
                        safety, implant_color(doc, implant.name) if meta is not None else None))
        return out

    def names(self) -> list[str]:
        return [i.name for i in self.document.case.plan.implants] if self.document.case is not None else []

    # --- placing ------------------------------------------------------------------------------
    def place_on_trajectory(self, name: str | None = None) -> Implant | None:
        """An implant of the set size with its tip at trajectory ``name``'s target (default: selected or last)."""
        doc = self.document
        if doc.case is None:
            return None
        trajectories = [t.name for t in doc.case.plan.trajectories]
        name = name or (self.panel.selected_name() if self.panel.selected_name() in trajectories else None) or (
            trajectories[-1] if trajectories else None)
        if name is None:
            self.panel.result_label.setText("No trajectory to place an implant on: place one first.")
            return None
        return self._add(from_trajectory=name, length_mm=self.length.value())

    def point_picked(self, point_lps: NDArray[np.float64]) -> Implant | None:
        """First click: the head; second click: the tip (the length is their distance)."""
        doc = self.document
        if doc.pending_entry is None:
            doc.pending_entry = np.asarray(point_lps, dtype=float)
            self.panel.result_label.setText("Implant head placed; now click its tip.")
            doc.plan_changed.emit()
            return None
        head, doc.pending_entry = doc.pending_entry, None
        return self._add(head_lps=head, tip_lps=np.asarray(point_lps, dtype=float))

    def _add(self, **where: Any) -> Implant | None:
        from ui.jobs import show_error
        from workstation import plan_case

        doc = self.document
        name = self.panel._unique("implant")
        try:
            implant = plan_case.add_implant(doc.case, name, diameter_mm=self.diameter.value(), **where)
        except Exception as exc:  # head and tip coincide, ...
            show_error(self, "Implant", exc)
            doc.plan_changed.emit()
            return None
        doc.modified = True
        text = f"{name}: {implant.diameter_mm:g} x {implant.length_mm:.1f} mm."
        if self.panel.checker is not None:  # live: the structures are prepared, check at once
            self.panel._store(self.check_with(self.panel.checker, implant))
            text = self.panel.result_label.text()
        else:
            text += " Check safety to test its clearance."
        doc.plan_changed.emit()
        self.panel.select(name)
        self.panel.result_label.setText(text)
        return implant

    # --- safety -------------------------------------------------------------------------------
    def check_with(self, checker: Any, implant: Implant) -> Any:
        return checker.check(implant_capsule(implant), margin_mm=self.panel.margin.value())

    def check(self, name: str) -> None:
        """Clearance of implant ``name`` to the critical segments (default: all but the tip's own), as a job."""
        from workstation import plan_case

        doc, panel = self.document, self.panel
        case = doc.case
        implant = next(i for i in case.plan.implants if i.name == name)
        tip = plan_case.implant_ends(implant)[1]

        def work(progress: Any) -> tuple[Any, tuple[str, ...], Any]:
            critical = tuple(plan_case.default_critical(case, [tip]))
            checker = panel.checker if critical == panel.checker_structures and panel.checker is not None else \
                plan_case.safety_checker(case, list(critical), progress=progress)
            return checker, critical, self.check_with(checker, implant)

        def done(result: tuple[Any, tuple[str, ...], Any]) -> None:
            panel.checker, panel.checker_structures, safety = result
            panel._store(safety)
            doc.meshes_changed.emit()
            doc.plan_changed.emit()
            panel.select(name)

        panel.run_job(f"Safety of {name}", work, done)
