"""A rehearsal scene: one off-screen pyvista plotter holding anatomy, slices, plan objects and results (LPS mm).

Actors are added once and reused: moving the camera or a slice re-renders the same actors, so a movie
or an interactive session does not rebuild the scene per frame. No Qt; the app embeds the same plotter.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from workstation.errors import OutputError
from workstation.io.atomic import atomic_path, output_file
from workstation.model.mesh import SurfaceMesh
from workstation.model.plan import Plan, Trajectory
from workstation.model.volume import Volume
from workstation.render import plan_objects
from workstation.render.cameras import CameraPose, standard_view
from workstation.render.clearance import clearance_mm
from workstation.render.mpr import MprSlice, SlicePlane
from workstation.render.presets import BACKGROUND_RGB, VolumePreset
from workstation.render.snapshot import require_offscreen_gl

# Structures drawn see-through by default so that what lies inside them stays visible.
TRANSLUCENT_SEGMENTS = {"liver": 0.45, "body": 0.15, "skin": 0.15, "spleen": 0.6, "kidney": 0.7, "lung": 0.25}
_EDGE_SLOTS = {"bottom": 4, "right": 5, "left": 6, "top": 7}  # vtkCornerAnnotation text positions
MAX_VOLUME_SAMPLES = 256  # per axis for volume rendering; larger volumes are strided


def parse_size(text: str) -> tuple[int, int]:
    """``"800x600"`` -> (800, 600)."""
    from workstation.errors import InputError

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"--size {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 800x600") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise InputError(f"--size {text!r}: width and height must lie in 16..8192")
    return w, h


class RehearsalScene:
    """An off-screen scene; add items, set a camera, take pictures.

    Parameters
    ----------
    size : (width, height) of pictures in pixels.
    background : RGB in 0..1 (default dark).
    orientation : show the patient-orientation marker (L/P/S axes) and the edge letters.
    """

    def __init__(self, *, size: tuple[int, int] = (800, 600), background: tuple[float, float, float] = BACKGROUND_RGB,
                 orientation: bool = True) -> None:
        require_offscreen_gl()
        import pyvista as pv

        self.size = (int(size[0]), int(size[1]))
        self.plotter = pv.Plotter(off_screen=True, window_size=list(self.size))
        self.plotter.set_background(background)
        self._bounds: NDArray[np.float64] | None = None
        self._orientation = orientation
        self.camera: CameraPose | None = None
        self.slices: dict[str, MprSlice] = {}
        self.actors: dict[str, Any] = {}
        if orientation:
            import vtk

            self.plotter.add_axes(xlabel="L", ylabel="P", zlabel="S", line_width=3)
            self._edge_letters = vtk.vtkCornerAnnotation()
            letter_px = int(np.clip(min(self.size) / 16, 10, 40))
            self._edge_letters.SetMinimumFontSize(letter_px)
            self._edge_letters.SetMaximumFontSize(letter_px)
            self._edge_letters.GetTextProperty().SetColor(0.9, 0.9, 0.5)
            self.plotter.renderer.AddViewProp(self._edge_letters)

    # ----------------------------------------------------------------- items
    @property
    def is_empty(self) -> bool:
        """True until anatomy, a slice or a result has been added."""
        return self._bounds is None

    def include_bounds(self, bounds: Iterable[float]) -> None:
        """Grow the extent that standard views frame by ``(xmin, xmax, ymin, ymax, zmin, zmax)`` (LPS mm)."""
        b = np.asarray(list(bounds), dtype=float).reshape(3, 2)
        if not np.all(np.isfinite(b)):
            return
        if self._bounds is None:
            self._bounds = b
        else:
            self._bounds = np.column_stack([np.minimum(self._bounds[:, 0], b[:, 0]),
                                            np.maximum(self._bounds[:, 1], b[:, 1])])

    @property
    def bounds(self) -> tuple[float, ...]:
        """(xmin, xmax, ymin, ymax, zmin, zmax) of the anatomy and results added so far, LPS mm."""
        if self._bounds is None:
            return (-50.0, 50.0, -50.0, 50.0, -50.0, 50.0)
        return tuple(float(x) for x in self._bounds.ravel())

    def add_surface(self, mesh: SurfaceMesh, *, opacity: float | None = None, color: Any = None) -> Any:
        """A segment surface in its colour; ``opacity`` defaults by structure (see :data:`TRANSLUCENT_SEGMENTS`)."""
        poly = mesh.to_pyvista()
        key = mesh.segment or mesh.name
        if opacity is None:
            opacity = TRANSLUCENT_SEGMENTS.get(key, 1.0)
        actor = self.plotter.add_mesh(poly, color=color or mesh.color_rgb, smooth_shading=True, specular=0.25,
                                      specular_power=20, opacity=opacity, name=f"surface-{mesh.id or mesh.name}")
        self.include_bounds(poly.bounds)
        self.actors[f"surface-{mesh.id or mesh.name}"] = actor
        return actor

    def add_volume(self, volume: Volume, preset: VolumePreset) -> Any:
        """Volume rendering of ``volume`` with a CT transfer-function ``preset``."""
        import pyvista as pv
        import vtk

        stride = [max(1, int(np.ceil(n / MAX_VOLUME_SAMPLES))) for n in volume.shape]  # [k, j, i]
        data = np.ascontiguousarray(volume.array[::stride[0], ::stride[1], ::stride[2]])
        spacing = volume.spacing_mm * np.array(stride[::-1])
        image = pv.ImageData(dimensions=data.shape[::-1], spacing=tuple(spacing), origin=tuple(volume.origin_lps))
        image.direction_matrix = volume.direction
        image.point_data["hu"] = data.ravel().astype(np.float32)
        actor = self.plotter.add_volume(image, scalars="hu", show_scalar_bar=False, name=f"volume-{volume.id}",
                                        shade=preset.shade, opacity_unit_distance=float(min(spacing)) * 2)
        ctf = vtk.vtkColorTransferFunction()
        for hu, rgb in preset.colors:
            ctf.AddRGBPoint(hu, *rgb)
        otf = vtk.vtkPiecewiseFunction()
        for hu, alpha in preset.opacities:
            otf.AddPoint(hu, alpha)
        prop = actor.GetProperty()
        prop.SetColor(ctf)
        prop.SetScalarOpacity(otf)
        prop.SetInterpolationTypeToLinear()
        prop.SetAmbient(0.4)
        prop.SetDiffuse(0.8)
        prop.SetSpecular(0.15)
        self.include_bounds(image.bounds)
        self.actors[f"volume-{volume.id}"] = actor
        return actor

    def add_slice(self, volume: Volume, plane: SlicePlane, *, window_level: tuple[float, float],
                  opacity: float = 1.0) -> MprSlice:
        """An MPR slice of ``volume`` on ``plane`` in grey levels of ``window_level`` (width, level HU)."""
        mpr = MprSlice(volume, plane)
        self.actors[f"mpr-{plane.name}"] = mpr.add_to(self.plotter, window_level=window_level, opacity=opacity)
        self.slices[plane.name] = mpr
        self.include_bounds(mpr.grid.bounds)
        return mpr

    def _marker_radius(self) -> float:
        b = np.asarray(self.bounds).reshape(3, 2)
        return float(np.clip(np.linalg.norm(b[:, 1] - b[:, 0]) * 0.008, 1.0, 5.0))

    def add_trajectory(self, trajectory: Trajectory, *, show_tool: bool = True, label: bool = True) -> None:
        """The tool cylinder (its diameter) from entry (green marker) to target (red marker).

        Without ``show_tool`` only the target marker is drawn (for cameras that travel down the path).
        """
        points = np.array([trajectory.entry_lps, trajectory.target_lps])
        self.include_bounds(np.column_stack([points.min(0), points.max(0)]).ravel())
        r = max(self._marker_radius(), trajectory.tool_diameter_mm * 0.75)
        name = trajectory.name
        if show_tool:  # a camera looking down the path would sit inside the tool and the entry marker
            self.actors[f"tool-{name}"] = self.plotter.add_mesh(plan_objects.tool_cylinder(trajectory),
                                                                color=plan_objects.TOOL_RGB, smooth_shading=True,
                                                                name=f"tool-{name}")
            self.actors[f"entry-{name}"] = self.plotter.add_mesh(plan_objects.marker(trajectory.entry_lps, r),
                                                                 color=plan_objects.ENTRY_RGB, name=f"entry-{name}")
        self.plotter.add_mesh(plan_objects.marker(trajectory.target_lps, r), color=plan_objects.TARGET_RGB,
                              name=f"target-{name}")
        if label:
            self.plotter.add_point_labels([trajectory.target_lps], [name], font_size=12, text_color="white",
                                          shape_opacity=0.3, show_points=False, name=f"label-{name}",
                                          always_visible=True)

    def set_tool_visible(self, trajectory_name: str, visible: bool) -> None:
        """Show or hide a trajectory's tool cylinder and entry marker (e.g. for its probe's-eye view)."""
        for key in (f"tool-{trajectory_name}", f"entry-{trajectory_name}"):
            if key in self.actors:
                self.actors[key].SetVisibility(visible)

    def add_plan(self, plan: Plan, *, hide_tools: Iterable[str] = (), labels: bool = True) -> None:
        """Every plan item: tools, resection planes, implants, labelled landmarks and distance lines."""
        import pyvista as pv

        hidden = set(hide_tools)
        for trajectory in plan.trajectories:
            self.add_trajectory(trajectory, show_tool=trajectory.name not in hidden, label=labels)
        b = np.asarray(self.bounds).reshape(3, 2)
        plane_size = float(np.max(b[:, 1] - b[:, 0])) * 0.8
        for plane in plan.resection_planes:
            self.plotter.add_mesh(plan_objects.plane_patch(plane, plane_size), color=plan_objects.PLANE_RGB,
                                  opacity=0.35, name=f"plane-{plane.name}")
        for implant in plan.implants:
            self.plotter.add_mesh(plan_objects.implant_body(implant), color=plan_objects.IMPLANT_RGB,
                                  smooth_shading=True, specular=0.6, name=f"implant-{implant.name}")
        r = self._marker_radius()
        for landmark in plan.landmarks:
            self.plotter.add_mesh(plan_objects.marker(landmark.position_lps, r), color=plan_objects.LANDMARK_RGB,
                                  name=f"landmark-{landmark.name}")
        if labels and plan.landmarks:
            self.plotter.add_point_labels([lm.position_lps for lm in plan.landmarks],
                                          [lm.name for lm in plan.landmarks], font_size=11, text_color="white",
                                          shape_opacity=0.3, show_points=False, name="landmark-labels",
                                          always_visible=True)
        for m in plan.measurements:
            self.plotter.add_mesh(pv.lines_from_points(np.asarray(m.points_lps)), color="white", line_width=2,
                                  name=f"measurement-{m.name}")

    def add_field_surface(self, surface: Any, *, scalars: str, title: str, cmap: str,
                          clim: tuple[float, float] | None = None, name: str = "field") -> Any:
        """A surface coloured by a named point or cell array, with a scalar bar titled with its unit."""
        actor = self.plotter.add_mesh(surface, scalars=scalars, cmap=cmap, clim=clim, smooth_shading=True,
                                      name=name, scalar_bar_args={"title": title, "color": "white",
                                                                  "title_font_size": 14, "label_font_size": 12,
                                                                  "fmt": "%.3g", "vertical": False,
                                                                  "position_x": 0.55, "position_y": 0.03,
                                                                  "width": 0.42, "height": 0.1, "n_labels": 3})
        self.include_bounds(surface.bounds)
        self.actors[name] = actor
        return actor

    def add_clearance_map(self, mesh: SurfaceMesh, trajectory: Trajectory, *, max_mm: float = 20.0) -> Any:
        """``mesh`` coloured by its clearance (mm) from the tool's wall along ``trajectory``; red is close."""
        poly = mesh.to_pyvista()
        poly.point_data["clearance_mm"] = np.clip(clearance_mm(poly.points, trajectory), 0.0, None)
        return self.add_field_surface(poly, scalars="clearance_mm", title=f"clearance to {trajectory.name} (mm)",
                                      cmap="RdYlGn", clim=(0.0, max_mm), name=f"clearance-{mesh.name}")

    def add_title(self, text: str) -> None:
        self.plotter.add_text(text, position="upper_left", font_size=10, color="white", name="title")

    # ---------------------------------------------------------------- camera
    def set_camera(self, pose: CameraPose) -> None:
        """Place the camera; the edge letters follow (patient directions at the picture's edges)."""
        cam = self.plotter.camera
        cam.position = pose.position_lps
        cam.focal_point = pose.focal_point_lps
        cam.up = pose.view_up
        cam.view_angle = pose.view_angle_deg
        cam.SetParallelProjection(pose.parallel_scale_mm is not None)
        if pose.parallel_scale_mm is not None:
            cam.parallel_scale = pose.parallel_scale_mm
        self.plotter.renderer.ResetCameraClippingRange()
        self.camera = pose
        if self._orientation:
            for edge, letter in pose.edge_letters().items():
                self._edge_letters.SetText(_EDGE_SLOTS[edge], letter)  # one actor, text updated in place

    def face_slice(self, plane_name: str, *, margin: float = 1.05) -> CameraPose:
        """Set and return an orthographic camera facing the slice ``plane_name`` and fitting it."""
        mpr = self.slices[plane_name]
        points = np.asarray(mpr.grid.points) - np.asarray(mpr.plane.center_lps)
        inside = np.isfinite(mpr.values.ravel())
        if inside.any():  # fit the part of the plane inside the volume
            points = points[inside]
            mid = (points.min(0) + points.max(0)) / 2
            points = points - mid
        else:
            mid = np.zeros(3)
        half_u = float(np.abs(points @ np.asarray(mpr.plane.u)).max())
        half_v = float(np.abs(points @ np.asarray(mpr.plane.v)).max())
        half_height = margin * max(half_v, half_u * self.size[1] / self.size[0], 1.0)
        center = np.asarray(mpr.plane.center_lps) + mid
        pose = CameraPose(position_lps=tuple(center + mpr.plane.normal * 4 * half_height),
                          focal_point_lps=tuple(center), view_up=mpr.plane.v, parallel_scale_mm=half_height)
        self.set_camera(pose)
        return pose

    def view(self, name: str) -> CameraPose:
        """Set and return a standard view that frames everything added."""
        pose = standard_view(name, self.bounds, aspect=self.size[0] / self.size[1])
        self.set_camera(pose)
        return pose

    # --------------------------------------------------------------- outputs
    def image(self) -> NDArray[np.uint8]:
        """(height, width, 3) RGB picture of the current view."""
        if self.camera is None:
            self.view("anterior")
        self.plotter.render()
        return np.asarray(self.plotter.screenshot(None, return_img=True))[..., :3].copy()

    def save_png(self, path: str | os.PathLike[str]) -> Path:
        """Write the current view as a PNG at ``path`` (atomically)."""
        import imageio.v3 as iio

        path = output_file(path)
        picture = self.image()
        try:
            with atomic_path(path) as tmp:
                iio.imwrite(tmp, picture, extension=".png")
        except OSError as exc:
            raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
        return path

    def close(self) -> None:
        self.plotter.close()

    def __enter__(self) -> RehearsalScene:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
