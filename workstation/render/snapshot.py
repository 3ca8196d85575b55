"""Off-screen snapshots of segment surfaces from standard patient views (LPS)."""

from __future__ import annotations

import ctypes.util
import os
from collections.abc import Sequence
from pathlib import Path

from workstation.errors import OutputError
from workstation.model.mesh import SurfaceMesh
from workstation.render.cameras import STANDARD_VIEWS

# Camera direction (from the focal point towards the camera) and view-up, in LPS.
VIEWS = STANDARD_VIEWS


def require_offscreen_gl() -> None:
    """Raise :class:`OutputError` when no OpenGL library for off-screen rendering is present.

    VTK crashes the process (instead of raising) when it finds no GL backend at all.
    """
    if not (ctypes.util.find_library("EGL") or ctypes.util.find_library("GL") or ctypes.util.find_library("OSMesa")):
        raise OutputError("no OpenGL library for off-screen rendering (install libegl1 and libgl1-mesa-dri)")
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


def render_surfaces(meshes: Sequence[SurfaceMesh], path: str | os.PathLike[str], *, view: str = "anterior",
                    size: tuple[int, int] = (900, 700), title: str = "") -> Path:
    """Render ``meshes`` in their colours from a standard ``view`` into a PNG at ``path``.

    A thin wrapper over :class:`workstation.render.scene.RehearsalScene` (orientation letters included).
    """
    from workstation.render.scene import RehearsalScene

    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")
    if not meshes:
        raise ValueError("render_surfaces: no mesh to render")
    with RehearsalScene(size=size) as scene:
        for mesh in meshes:
            scene.add_surface(mesh)
        scene.view(view)
        scene.add_title(f"{title}  view: {view} (LPS)" if title else f"view: {view} (LPS)")
        return scene.save_png(path)
