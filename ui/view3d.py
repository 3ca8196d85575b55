"""The 3D view: the case's surfaces (pyvistaqt ``QtInteractor``), or a clear reason when no GL exists.

The interactor needs a real OpenGL context: a desktop session, or Xvfb with the ``xcb`` platform.
Under Qt's ``offscreen``/``minimal`` platforms (headless tests) the view says so instead of
crashing the process.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from ui.document import Document

NO_GL_PLATFORMS = ("offscreen", "minimal", "vnc")


def gl_unavailable_reason() -> str | None:
    """Why the interactive 3D view cannot run here, or ``None`` when it can."""
    if os.environ.get("TWIN_NO_3D"):
        return "3D view switched off (TWIN_NO_3D is set)"
    platform = QGuiApplication.platformName()
    if platform in NO_GL_PLATFORMS:
        return f"3D view needs an OpenGL display; the Qt platform is {platform!r}"
    if platform == "xcb" and not os.environ.get("DISPLAY"):
        return "3D view needs an X display (DISPLAY is not set)"
    return None


class View3D(QWidget):
    """Surfaces of the document's case, each in its segment colour; rebuilt when meshes change."""

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("view-3d")
        self.document = document
        self.plotter: Any = None
        self.actors: dict[str, Any] = {}
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.reason = gl_unavailable_reason()
        self.label = QLabel(self.reason or "starting the 3D view ...", self)
        self.label.setObjectName("view-3d-reason")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setWordWrap(True)
        self.label.setStyleSheet("color: #999; background: black;")
        self.layout_.addWidget(self.label)
        self._imported = threading.Event()
        self._import_started = False
        if self.reason is None:
            # VTK and pyvistaqt take a second or more to import. The slice views come first: the import
            # starts in a thread once a case shows (or after 1 s without one); the interactor follows.
            self._poll = QTimer(self)
            self._poll.timeout.connect(self._create_when_ready)
            self._poll.start(50)
            self._waited_ms = 0
            document.case_changed.connect(self._start_import)
        self.plan_actors: dict[str, Any] = {}
        document.plan_changed.connect(self.refresh_plan)
        document.meshes_changed.connect(self.refresh)
        document.display_changed.connect(self._update_visibility)
        document.live_changed.connect(self.refresh_live)
        self.live_surface: Any = None
        document.case_changed.connect(self.refresh)

    def _start_import(self) -> None:
        if not self._import_started:
            self._import_started = True
            threading.Thread(target=self._import_vtk, name="import-vtk", daemon=True).start()

    def _import_vtk(self) -> None:
        try:
            import pyvistaqt  # noqa: F401
        except Exception:
            pass
        finally:
            self._imported.set()

    def _create_when_ready(self) -> None:
        self._waited_ms += 50
        if self._waited_ms >= 1000:
            self._start_import()
        if not self._imported.is_set():
            return
        self._poll.stop()
        self._create_plotter()

    def _create_plotter(self) -> None:
        if self.plotter is not None:
            return
        try:
            from pyvistaqt import QtInteractor

            plotter = QtInteractor(self, auto_update=False)
            plotter.set_background("black")
            plotter.add_axes(color="white")
        except Exception as exc:
            self.reason = f"3D view unavailable: {type(exc).__name__}: {exc}"
            self.label.setText(self.reason)
            return
        self.plotter = plotter
        self.layout_.removeWidget(self.label)
        self.label.hide()
        self.layout_.addWidget(plotter.interactor)
        self.refresh()

    @property
    def ready(self) -> bool:
        """True once the 3D view can draw (or it never will: see :attr:`reason`)."""
        return self.plotter is not None or self.reason is not None

    def refresh(self) -> None:
        """Show the case's surfaces (hidden segments stay hidden)."""
        if self.plotter is None:
            return
        case = self.document.case
        for actor in self.actors.values():
            self.plotter.remove_actor(actor, render=False)
        self.actors = {}
        hidden_names = {s.name for s in self.document.segments() if s.value in self.document.hidden}
        if case is not None:
            for mesh_id, mesh in case.meshes.items():
                self.actors[mesh_id] = self.plotter.add_mesh(mesh.to_pyvista(), color=mesh.color_rgb,
                                                             smooth_shading=True, name=mesh_id, render=False)
                self.actors[mesh_id].SetVisibility(not ({mesh.name, mesh.segment} & hidden_names))
        self.refresh_plan(render=False)
        self._show_simulation()
        if self.actors:
            # From anterior-superior, superior up (the patient's right on the screen's left).
            self.plotter.view_vector((0.0, -1.0, 0.6), viewup=(0.0, 0.0, 1.0))
            self.plotter.reset_camera(render=False)
            self.plotter.camera.zoom(1.3)
        self.plotter.render()

    def _show_simulation(self) -> None:
        """The shown simulation's deformed surface coloured by von Mises stress, with a scalar bar."""
        doc = self.document
        if doc.case is None or doc.simulation is None:
            return
        from workstation import simulate_case

        result, mesh, record = simulate_case.stored_result(doc.case, doc.simulation)
        surface = result.deformed_surface(mesh)
        key = f"simulation:{record.name}"
        self.actors[key] = self.plotter.add_mesh(
            surface, scalars="von_mises_pa", cmap="turbo", name=key, render=False,
            scalar_bar_args={"title": "von Mises stress (Pa)", "color": "white", "vertical": True})
        for segment in record.meta.get("extra", {}).get("segments", []):  # the undeformed surface as a ghost
            for mesh_id, actor in self.actors.items():
                stored = doc.case.meshes.get(mesh_id)
                if stored is not None and (stored.segment or stored.name) == segment:
                    actor.GetProperty().SetOpacity(0.25)

    def refresh_live(self) -> None:
        """The live tissue's outer surface, moved in place each step, coloured by displacement (mm)."""
        if self.plotter is None:
            return
        live = self.document.live
        if live is None:
            if self.live_surface is not None:
                self.plotter.remove_actor("live", render=False)
                self.live_surface = None
                self.plotter.render()
            return
        import pyvista as pv

        points = live.deformed_points()
        magnitude = np.linalg.norm(live.displacement_mm, axis=1)
        if self.live_surface is None or self.live_surface.n_points != len(points):
            faces = np.hstack([np.full((len(live.faces), 1), 3), live.faces]).ravel()
            self.live_surface = pv.PolyData(points.copy(), faces)
            self.live_surface.point_data["displacement_mm"] = magnitude
            self.plotter.add_mesh(self.live_surface, scalars="displacement_mm", cmap="turbo", name="live",
                                  clim=(0.0, max(float(magnitude.max()), 1.0)), render=False,
                                  scalar_bar_args={"title": "displacement (mm)", "color": "white"})
        else:
            self.live_surface.points = points
            self.live_surface.point_data["displacement_mm"] = magnitude
            self.plotter.update_scalar_bar_range((0.0, max(float(magnitude.max()), 1.0)))
        self.plotter.render()

    def _update_visibility(self) -> None:
        if self.plotter is None or self.document.case is None:
            return
        hidden = {s.name for s in self.document.segments() if s.value in self.document.hidden}
        changed = False
        for mesh_id, actor in self.actors.items():
            mesh = self.document.case.meshes.get(mesh_id)
            visible = mesh is not None and not ({mesh.name, mesh.segment} & hidden)
            if bool(actor.GetVisibility()) != visible:
                actor.SetVisibility(visible)
                changed = True
        if changed:
            self.plotter.render()

    def refresh_plan(self, render: bool = True) -> None:
        """Trajectories as tubes of their tool diameter (coloured by safety), landmarks as small spheres."""
        if self.plotter is None:
            return
        import pyvista as pv

        from ui.slice_view import trajectory_color

        for actor in self.plan_actors.values():
            self.plotter.remove_actor(actor, render=False)
        self.plan_actors = {}
        case = self.document.case
        if case is not None:
            for t in case.plan.trajectories:
                tube = pv.Line(t.entry_lps, t.target_lps).tube(radius=t.tool_diameter_mm / 2, n_sides=16, capping=True)
                color = trajectory_color(self.document, t.name)
                self.plan_actors[f"trajectory:{t.name}"] = self.plotter.add_mesh(
                    tube, color=(color.redF(), color.greenF(), color.blueF()), name=f"trajectory:{t.name}",
                    render=False)
            for lm in case.plan.landmarks:
                self.plan_actors[f"landmark:{lm.name}"] = self.plotter.add_mesh(
                    pv.Sphere(radius=2.0, center=lm.position_lps), color=(1.0, 0.63, 0.16), name=f"landmark:{lm.name}",
                    render=False)
            from ui.implant_tools import implant_mesh

            for implant in case.plan.implants:
                self.plan_actors[f"implant:{implant.name}"] = self.plotter.add_mesh(
                    implant_mesh(implant), color=(0.67, 0.43, 1.0), smooth_shading=True, name=f"implant:{implant.name}",
                    render=False)
        if render:
            self.plotter.render()

    # --- cameras (rehearsal) -----------------------------------------------------------------------
    def camera_pose(self) -> Any:
        """The current camera as a :class:`workstation.render.cameras.CameraPose` (LPS mm)."""
        from workstation.render.cameras import CameraPose

        camera = self.plotter.camera
        return CameraPose(position_lps=tuple(camera.position), focal_point_lps=tuple(camera.focal_point),
                          view_up=tuple(camera.up), view_angle_deg=float(camera.view_angle),
                          parallel_scale_mm=float(camera.parallel_scale) if camera.parallel_projection else None)

    def set_camera(self, pose: Any, *, render: bool = True) -> None:
        camera = self.plotter.camera
        camera.position, camera.focal_point, camera.up = pose.position_lps, pose.focal_point_lps, pose.view_up
        camera.view_angle = pose.view_angle_deg
        if pose.parallel_scale_mm is not None:
            camera.parallel_projection = True
            camera.parallel_scale = pose.parallel_scale_mm
        else:
            camera.parallel_projection = False
        self.plotter.renderer.ResetCameraClippingRange()
        if render:
            self.plotter.render()

    def scene_bounds(self) -> tuple[float, ...]:
        """(xmin, xmax, ymin, ymax, zmin, zmax) of what the view shows (the volume when nothing else)."""
        if self.actors or self.plan_actors:
            return tuple(self.plotter.bounds)
        corners = self.document.volume.corners_lps()
        low, high = corners.min(axis=0), corners.max(axis=0)
        return (low[0], high[0], low[1], high[1], low[2], high[2])

    def grab_rgb(self) -> np.ndarray | None:
        """(rows, cols, 3) of what the 3D view shows (``None`` without GL)."""
        if self.plotter is None:
            return None
        self.plotter.render()
        return np.asarray(self.plotter.screenshot(return_img=True))

    def close_plotter(self) -> None:
        if self.plotter is not None:
            self.plotter.close()
            self.plotter = None
