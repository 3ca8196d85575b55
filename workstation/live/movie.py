"""A recorded session as a movie: the case scene, the plan and the tracked tool at each replayed pose.

The scene, camera views and movie writer are the render helper's (:func:`build_case_scene`,
:func:`camera_for`, :func:`write_movie`); this module adds the live tool (a cylinder of the planned diameter
whose tip follows the recorded pose) and a caption with the live numbers, red while the alarm is on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from workstation.errors import InputError
from workstation.live.session import ReplayState, check_session, replay
from workstation.model import Case, Record
from workstation.progress import ProgressCallback, report

FRAME_SIZE = (960, 720)
LIVE_TOOL_RGB = (0.95, 0.95, 0.95)
SHAFT_EXTRA_MM = 30.0  # shaft drawn beyond the planned length (the handle side)


def _tool_mesh(length_mm: float, radius_mm: float) -> Any:
    """Tool cylinder in its own frame: tip at the origin, shaft along -z (the pose's +z points to the tip)."""
    import pyvista as pv

    return pv.Cylinder(center=(0.0, 0.0, -length_mm / 2), direction=(0.0, 0.0, 1.0), radius=radius_mm,
                       height=length_mm, resolution=24)


def caption(record: Record, state: ReplayState, speed: float) -> str:
    """The frame's text: session time and the live numbers (and the alarm)."""
    n = state.numbers
    lines = [f"session {record.name}  t = {state.t_s:5.2f} s  (x{speed:g})",
             f"target {n.get('distance_to_target_mm', np.nan):6.1f} mm   "
             f"lateral {n.get('lateral_deviation_mm', np.nan):5.1f} mm   angle {n.get('angle_deg', np.nan):5.1f} deg"]
    if state.alarm:
        lines.append("ALARM: safety margin breached")
    return "\n".join(lines)


def session_frames(case: Case, record: Record, *, speed: float = 1.0, fps: float = 25.0, view: str = "anterior",
                   size: tuple[int, int] = FRAME_SIZE,
                   progress: ProgressCallback | None = None) -> Iterator[NDArray[np.uint8]]:
    """RGB frames (H, W, 3) of ``record`` replayed at ``speed`` (``fps`` frames per second of movie)."""
    from workstation.render.case_scene import SceneOptions, build_case_scene, camera_for

    states = list(replay(record, speed=speed, fps=fps))
    if not states:
        raise InputError(f"session {record.name!r}: no pose recorded, nothing to replay")
    meta = record.meta
    entry, target = np.asarray(meta["entry_lps"], float), np.asarray(meta["target_lps"], float)
    length = float(np.linalg.norm(target - entry)) + SHAFT_EXTRA_MM
    radius = max(float(meta.get("tool_diameter_mm", 1.0)) / 2, 0.5)
    # the planned tool is hidden (its entry/target markers stay); the live tool is drawn instead
    planned = [t.name for t in case.plan.trajectories if t.name == meta.get("trajectory")]
    scene = build_case_scene(case, SceneOptions(hide_tools=planned), size=size)
    try:
        scene.set_camera(camera_for(scene, case, view))
        tool = scene.plotter.add_mesh(_tool_mesh(length, radius), color=LIVE_TOOL_RGB, specular=0.5, name="live-tool")
        for n, state in enumerate(states):
            tool.user_matrix = state.pose
            scene.plotter.add_text(caption(record, state, speed), position="upper_left", font_size=10,
                                   color="#ff5050" if state.alarm else "white", name="live-caption")
            yield scene.image()
            report(progress, n + 1, len(states), "rendering session frames")
    finally:
        scene.close()


def write_session_movie(case: Case, record: Record, path: str | os.PathLike[str], *, speed: float = 1.0,
                        fps: float = 25.0, view: str = "anterior", progress: ProgressCallback | None = None) -> Path:
    """Render ``record`` replayed at ``speed`` into an MP4 (or GIF) at ``path``, written atomically."""
    from workstation.render.animation import check_movie_path, write_movie

    check_session(record)
    path = check_movie_path(path)
    return write_movie(session_frames(case, record, speed=speed, fps=fps, view=view, progress=progress), path, fps=fps)
