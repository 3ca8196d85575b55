"""The mechanics panel: mesh a segment, pick a material, fix it, push it at a clicked point, solve.

Every action calls :mod:`workstation.simulate_case` (what ``twin tetmesh`` / ``twin simulate`` call);
results are stored in the case as ``Record(kind="simulation")`` and shown in the 3D view as the
deformed surface coloured by von Mises stress.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ui.document import Document
from ui.widgets import spin_box


class MechanicsPanel(QWidget):
    """Controls for one static load case on one segment."""

    tool_requested = Signal(str)

    def __init__(self, document: Document, run_job: Callable[..., Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mechanics-panel")
        self.document, self.run_job = document, run_job
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.segment = QComboBox(self, objectName="mechanics-segment")
        self.size = spin_box(self, "element-size", 0.5, 30.0, 4.0, decimals=1)
        self.mesher = QComboBox(self, objectName="mesher")
        for text, key in (("Auto", "auto"), ("TetGen", "tetgen"), ("fTetWild", "ftetwild")):
            self.mesher.addItem(text, key)
        self.mesher.setToolTip("Auto: TetGen for one segment (exact surface, the same mesh every time), fTetWild for\n"
                               "touching segments. fTetWild: better-shaped tets within half a voxel of the surface,\n"
                               "not the same mesh twice.")
        self.material = QComboBox(self, objectName="material")
        self.fix = QLineEdit(self, objectName="fix")
        self.fix.setPlaceholderText("segment name, or plane:x,y,z:nx,ny,nz (LPS mm)")
        self.fix.setToolTip("Where the tissue is held: the mesh's nodes near that segment's surface (e.g. bone),\n"
                            "or those on the side of a plane its normal points to.")
        form.addRow("Segment", self.segment)
        form.addRow("Element size", self.size)
        form.addRow("Mesher", self.mesher)
        form.addRow("Material", self.material)
        form.addRow("Fixed", self.fix)
        layout.addLayout(form)
        row = QHBoxLayout()
        self.mesh_button = QPushButton("Mesh", self, objectName="mesh-segment")
        self.mesh_button.clicked.connect(self.mesh_segment)
        self.fix_plane_button = QPushButton("Fix: plane at crosshair", self, objectName="fix-plane")
        self.fix_plane_button.setToolTip("Hold the tissue beyond the axial plane through the crosshair (inferior side)")
        self.fix_plane_button.clicked.connect(self.fix_plane_at_crosshair)
        row.addWidget(self.mesh_button)
        row.addWidget(self.fix_plane_button)
        layout.addLayout(row)
        self.push_button = QPushButton("Place push point", self, objectName="tool-push")
        self.push_button.setCheckable(True)
        self.push_button.clicked.connect(lambda on: self.tool_requested.emit("push" if on else "navigate"))
        layout.addWidget(self.push_button)
        row = QHBoxLayout()
        self.push = [spin_box(self, f"push-{axis}", -50.0, 50.0, 0.0, suffix=f" mm {axis}", decimals=1)
                     for axis in "xyz"]
        for box in self.push:
            row.addWidget(box)
        layout.addLayout(row)
        form = QFormLayout()
        self.radius = spin_box(self, "push-radius", 0.5, 50.0, 5.0, decimals=1)
        form.addRow("Push radius", self.radius)
        layout.addLayout(form)
        row = QHBoxLayout()
        self.live_button = QPushButton("Live: drag the tool", self, objectName="live")
        self.live_button.setCheckable(True)
        self.live_button.setToolTip("Co-rotational tissue: drag from the push point in a slice view and watch\n"
                                    "the tissue follow (3D view); release to stop the tool.")
        self.live_button.clicked.connect(self.toggle_live)
        row.addWidget(self.live_button)
        layout.addLayout(row)
        self.simulate_button = QPushButton("Simulate", self, objectName="simulate")
        self.simulate_button.clicked.connect(self.simulate)
        layout.addWidget(self.simulate_button)
        self.report = QLabel("Mesh a segment, set where it is held and where it is pushed, then Simulate.", self)
        self.report.setObjectName("mechanics-report")
        self.report.setWordWrap(True)
        layout.addWidget(self.report)
        layout.addStretch(1)
        document.case_changed.connect(self.refresh)
        document.labels_changed.connect(self.refresh)
        self.refresh()

    def _fill_materials(self) -> None:
        """The material library (``mechanics`` is imported on first use, off the start-up path)."""
        if not self.material.count():
            import mechanics

            self.material.addItems(mechanics.library_names())
            self.material.setCurrentText("liver")

    def showEvent(self, event: Any) -> None:  # noqa: N802 (Qt API)
        self._fill_materials()
        super().showEvent(event)

    def refresh(self) -> None:
        names = [s.name for s in self.document.segments()]
        if names == [self.segment.itemText(i) for i in range(self.segment.count())]:
            return
        current = self.segment.currentText()
        self.segment.clear()
        self.segment.addItems(names)
        if current in names:
            self.segment.setCurrentText(current)
        for widget in (self.mesh_button, self.simulate_button, self.push_button, self.fix_plane_button,
                       self.live_button):
            widget.setEnabled(bool(names))

    def set_tool_checked(self, tool: str) -> None:
        self.push_button.setChecked(tool == "push")
        self.live_button.setChecked(tool == "live" and self.document.live is not None)

    def point_picked(self, tool: str, point_lps: NDArray[np.float64], view_normal: Any = None) -> None:
        if tool == "push":
            self.document.push_point = np.asarray(point_lps, dtype=float)
            self.document.plan_changed.emit()  # redraw the marker
            self.report.setText("Push point at LPS " + ", ".join(f"{v:.1f}" for v in point_lps) + " mm.")

    def fix_plane_at_crosshair(self) -> None:
        x, y, z = self.document.crosshair_lps
        self.fix.setText(f"plane:{x:.1f},{y:.1f},{z:.1f}:0,0,-1")

    def mesh_segment(self) -> None:
        from workstation import simulate_case

        doc, name, size = self.document, self.segment.currentText(), self.size.value()
        mesher = self.mesher.currentData()
        case = doc.case

        def done(mesh: Any) -> None:
            q = mesh.provenance.get("quality", {})
            self.report.setText(
                f"{mesh.id}: {q.get('n_tets', '?')} tets, {q.get('n_points', '?')} nodes; dihedral "
                f"{q.get('min_dihedral_deg', 0):.1f}..{q.get('max_dihedral_deg', 0):.1f} deg, inverted "
                f"{q.get('n_inverted', '?')}, slivers {q.get('n_slivers', '?')}")
            doc.modified = True

        self.run_job(f"Meshing {name}", lambda progress: simulate_case.tetmesh_segment(
            case, name, size_mm=size, mesher=mesher, progress=progress), done)

    def simulate(self) -> None:
        self._fill_materials()
        from workstation import simulate_case
        from workstation.errors import InputError

        doc = self.document
        if doc.push_point is None:
            from ui.jobs import show_error

            show_error(self, "Simulate", InputError("push: click 'Place push point', then where the tool pushes"))
            return
        case, name = doc.case, self.segment.currentText()
        displacement = np.array([box.value() for box in self.push])
        fix = [self.fix.text().strip()] if self.fix.text().strip() else []
        kwargs = {"segment": name, "material": self.material.currentText(), "fix": fix,
                  "pushes": [(doc.push_point, displacement)], "size_mm": self.size.value(),
                  "push_radius_mm": self.radius.value()}

        def done(result: tuple[Any, Any]) -> None:
            record, solved = result
            self.report.setText(f"{record.name}: {solved.status}; max displacement {solved.max_displacement_mm:.2f} "
                                f"mm, max von Mises {solved.max_von_mises_pa / 1000:.2f} kPa (stored in the case)")
            doc.simulation = record.name
            doc.modified = True
            doc.meshes_changed.emit()

        self.run_job(f"Simulating {name}", lambda progress: simulate_case.simulate(case, progress=progress, **kwargs),
                     done)

    # --- live co-rotational dragging -------------------------------------------------------------
    def toggle_live(self, on: bool) -> None:
        """Set up :class:`mechanics.InteractiveSimulation` (worker thread), then the slice views drag the tool."""
        if not on:
            self.document.live = None
            self.document.live_changed.emit()
            self.tool_requested.emit("navigate")
            return
        self.live_button.setChecked(False)
        self._fill_materials()
        from workstation import simulate_case
        from workstation.errors import InputError

        doc = self.document
        if doc.push_point is None or not self.fix.text().strip():
            from ui.jobs import show_error

            show_error(self, "Live", InputError("live: set where the tissue is held (Fixed) and a push point first"))
            return
        case, name, size = doc.case, self.segment.currentText(), self.size.value()
        spec, point, radius = self.fix.text().strip(), doc.push_point.copy(), self.radius.value()
        material = self.material.currentText()

        def work(progress: Any) -> Any:
            import mechanics
            from mechanics import selection

            mesh = case.tet_meshes.get(simulate_case.tet_mesh_id(name)) or simulate_case.tetmesh_segment(
                case, name, size_mm=size, progress=progress)
            fixed = simulate_case.fix_mask(case, mesh, spec)
            handles = selection.nodes_near_point(mesh, point, radius, boundary_only=True)
            if not handles.any():
                raise InputError(f"push point: no surface node of {mesh.id!r} within {radius:g} mm")
            sim = mechanics.InteractiveSimulation(mesh, mechanics.material(material), fixed_nodes=fixed & ~handles,
                                                  handle_nodes=handles)
            return LiveTissue(mesh=mesh, simulation=sim, faces=selection.boundary_faces(mesh), grab_lps=point)

        def done(live: LiveTissue) -> None:
            doc.live = live
            doc.live_changed.emit()
            self.tool_requested.emit("live")
            self.report.setText(f"Live: {live.mesh.n_points} nodes, {int(live.simulation.handles.size)} under the "
                                "tool. Drag from the push point in a slice view.")

        self.run_job(f"Preparing live {name}", work, done)

    def live_drag(self, displacement_mm: NDArray[np.float64], steps: int = 3) -> None:
        """Move the tool to ``displacement_mm`` from where it grabbed the tissue; a few implicit steps."""
        live = self.document.live
        if live is None:
            return
        info = None
        for _ in range(steps):
            info = live.simulation.step(displacement_mm)
        live.displacement_mm = live.simulation.displacement_mm
        if info is not None:
            force = float(np.linalg.norm(info.tool_force_n))
            self.report.setText(f"Live: tool moved {np.linalg.norm(displacement_mm):.1f} mm, tissue force "
                                f"{force:.3f} N, {info.iterations} PCG iterations, "
                                f"{info.step_time_s * 1000:.0f} ms/step")
        self.document.live_changed.emit()


class LiveTissue:
    """The state of a live drag: the tet mesh, the interactive solver, its outer faces and displacement."""

    def __init__(self, *, mesh: Any, simulation: Any, faces: NDArray[np.int64], grab_lps: NDArray[np.float64]) -> None:
        self.mesh, self.simulation, self.faces, self.grab_lps = mesh, simulation, faces, grab_lps
        self.displacement_mm = np.zeros((mesh.n_points, 3))

    def deformed_points(self) -> NDArray[np.float64]:
        return np.asarray(self.mesh.points_lps) + self.displacement_mm
