"""Movies of a scene: fly-throughs, orbits and deformations over load steps, as MP4 (imageio-ffmpeg) or GIF."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from workstation.errors import InputError, OutputError
from workstation.io.atomic import atomic_path, output_file
from workstation.progress import ProgressCallback, report
from workstation.render.cameras import CameraPose
from workstation.render.mechanics_view import QUANTITIES, SimulationResult, deformed_surface, field_range
from workstation.render.scene import RehearsalScene

MOVIE_SUFFIXES = (".mp4", ".gif")


def check_movie_path(path: str | os.PathLike[str]) -> Path:
    return output_file(path, suffixes=MOVIE_SUFFIXES)


def write_movie(frames: Iterator[NDArray[np.uint8]], path: str | os.PathLike[str], *, fps: float = 12.0) -> Path:
    """Write RGB frames (H, W, 3) to an MP4 (H.264 through imageio-ffmpeg) or a looping GIF, atomically."""
    import imageio.v2 as imageio

    path = check_movie_path(path)
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".mp4":
            try:
                import imageio_ffmpeg  # noqa: F401
            except ImportError:
                raise OutputError(f"{path}: MP4 needs the imageio-ffmpeg package; write a .gif instead") from None
            # macro_block_size=1: keep the requested size (frames are padded to even sizes below).
            writer = imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264", quality=7,
                                        macro_block_size=1, pixelformat="yuv420p")
        else:
            writer = imageio.get_writer(tmp, format="GIF", mode="I", duration=1000.0 / fps, loop=0)
        try:
            for frame in frames:
                if path.suffix.lower() == ".mp4":
                    frame = frame[: frame.shape[0] // 2 * 2, : frame.shape[1] // 2 * 2]
                writer.append_data(frame)
        finally:
            writer.close()
    return path


def camera_frames(scene: RehearsalScene, poses: Sequence[CameraPose], *,
                  progress: ProgressCallback | None = None) -> Iterator[NDArray[np.uint8]]:
    """One picture per camera pose (the scene's actors are reused)."""
    for n, pose in enumerate(poses):
        report(progress, n, len(poses), "rendering frames")
        scene.set_camera(pose)
        yield scene.image()
    report(progress, len(poses), len(poses), "rendering frames")


def deformation_frames(scene: RehearsalScene, result: SimulationResult, *, quantity: str = "displacement",
                       n_frames: int = 24, scale: float = 1.0,
                       progress: ProgressCallback | None = None) -> Iterator[NDArray[np.uint8]]:
    """The mesh deforming over its load steps (or, for one final linear result, over load fractions 0..1),
    coloured by ``quantity`` on a fixed scale. The scene's camera stays put; one actor is updated in place."""
    if quantity not in QUANTITIES:
        raise InputError(f"--color-by {quantity!r}: expected one of {', '.join(QUANTITIES)}")
    key, title, cmap = QUANTITIES[quantity]
    clim = field_range(result, quantity)
    steps: list[tuple[int, float]] = ([(s, 1.0) for s in range(result.n_steps)] if not result.linear_steps
                                      else [(0, f) for f in np.linspace(0.0, 1.0, max(2, n_frames))])
    model = result.record.meta.get("model", "")
    # Only the final state is stored: scaling it is exact for linear elasticity, a display aid otherwise.
    note = "" if model == "linear" else f" (approximate for the {model or 'unstated'} model)"
    surface = deformed_surface(result, step=steps[0][0], fraction=steps[0][1], scale=scale)
    scene.add_field_surface(surface, scalars=key, title=title, cmap=cmap, clim=clim, name="deformation")
    for n, (step, fraction) in enumerate(steps):
        report(progress, n, len(steps), "rendering load steps")
        new = deformed_surface(result, step=step, fraction=fraction, scale=scale)
        surface.points = new.points  # same topology: update the drawn surface in place
        surface[key] = new[key]
        scene.add_title(f"load step {step + 1}/{result.n_steps}" if not result.linear_steps
                        else f"load {fraction:.0%}: final result scaled linearly{note}")
        yield scene.image()
    report(progress, len(steps), len(steps), "rendering load steps")
