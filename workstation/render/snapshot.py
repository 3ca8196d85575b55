"""Off-screen snapshots of segment surfaces from standard patient views (LPS)."""

from __future__ import annotations

import ctypes.util
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from workstation.errors import OutputError
from workstation.io.atomic import atomic_path
from workstation.model.mesh import SurfaceMesh

# Camera direction (from the focal point towards the camera) and view-up, in LPS.
VIEWS = {
    "anterior": ((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
    "posterior": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    "left": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "right": ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "superior": ((0.0, 0.0, 1.0), (0.0, -1.0, 0.0)),
    "inferior": ((0.0, 0.0, -1.0), (0.0, -1.0, 0.0)),
    "anterior_superior": ((0.0, -0.7071, 0.7071), (0.0, 0.7071, 0.7071)),
}


def require_offscreen_gl() -> None:
    """Raise :class:`OutputError` when no OpenGL library for off-screen rendering is present.

    VTK crashes the process (instead of raising) when it finds no GL backend at all.
    """
    if not (ctypes.util.find_library("EGL") or ctypes.util.find_library("GL") or ctypes.util.find_library("OSMesa")):
        raise OutputError("no OpenGL library for off-screen rendering (install libegl1 and libgl1-mesa-dri)")
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


def render_surfaces(meshes: Sequence[SurfaceMesh], path: str | os.PathLike[str], *, view: str = "anterior",
                    size: tuple[int, int] = (900, 700), title: str = "") -> Path:
    """Render ``meshes`` in their colours from a standard ``view`` into a PNG at ``path``."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")
    if not meshes:
        raise ValueError("render_surfaces: no mesh to render")
    require_offscreen_gl()
    import pyvista as pv

    plotter = pv.Plotter(off_screen=True, window_size=list(size))
    try:
        plotter.set_background("#15171c")
        for mesh in meshes:
            plotter.add_mesh(mesh.to_pyvista(), color=mesh.color_rgb, smooth_shading=True, specular=0.3,
                             opacity=0.55 if mesh.name in ("liver", "body", "skin") else 1.0)
        points = np.vstack([m.vertices_lps for m in meshes])
        center = (points.min(0) + points.max(0)) / 2
        direction, up = VIEWS[view]
        plotter.camera.focal_point = tuple(center)
        plotter.camera.position = tuple(center + np.asarray(direction) * 1000.0)
        plotter.camera.up = up
        plotter.reset_camera()  # fit the bounds, keeping the view direction
        plotter.camera.zoom(1.3)
        plotter.add_text(f"{title}  view: {view} (LPS)" if title else f"view: {view} (LPS)", font_size=10,
                         color="white")
        path = Path(path)
        with atomic_path(path) as tmp:
            plotter.screenshot(str(tmp))
    finally:
        plotter.close()
    return path
