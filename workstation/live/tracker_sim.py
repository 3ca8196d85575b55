"""A simulated tracker: an execution of a planned trajectory as timed tool poses, with known deviations.

The tool tip rests at the (executed) entry for the first 10 % of the duration, advances at constant speed
to the (executed) target over the next 80 % and rests there for the last 10 %. Deviations are applied to
the whole executed path, in this order:

1. ``angle_deg``: the executed line is the planned line rotated by this angle about ``pivot`` (``"target"``:
   the tip still reaches the planned target, the entry moves by ``2 L sin(A/2)``; ``"entry"``: the reverse)
   around the axis :func:`~workstation.live.pose.perpendicular_axis` of the planned direction (or
   ``angle_axis``);
2. ``offset_mm``: a constant translation (dx, dy, dz) of every tip position (systematic error);
3. ``noise_mm``: independent Gaussian noise of this standard deviation on each tip coordinate
   (the tool axis stays noise-free).

Poses follow the package convention (translation = tip, local +z = insertion direction) and are in the
plan's frame (image LPS) unless ``to_tracker`` (a 4x4 image -> tracker matrix) is given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from workstation.live.pose import perpendicular_axis, rotation_about, tool_pose, unit
from workstation.model import Trajectory

REST_FRACTION = 0.1  # of the duration at the entry before insertion, and at the target after it


@dataclass(frozen=True)
class SimulatedExecution:
    """Times ``t_s`` (T,) and poses (T, 4, 4); ``true_entry_lps``/``true_target_lps`` are the noise-free
    executed entry and target (image LPS mm), ``insertion_time_s`` the noise-free time of the advance."""

    t_s: NDArray[np.float64]
    poses: NDArray[np.float64]
    true_entry_lps: NDArray[np.float64]
    true_target_lps: NDArray[np.float64]
    insertion_time_s: float
    frame: str


def simulate_execution(trajectory: Trajectory, *, rate_hz: float = 60.0, duration_s: float = 5.0,
                       noise_mm: float = 0.0, offset_mm: ArrayLike = (0.0, 0.0, 0.0), angle_deg: float = 0.0,
                       pivot: str = "target", angle_axis: ArrayLike | None = None, seed: int | None = 0,
                       to_tracker: ArrayLike | None = None, frame: str = "image_lps") -> SimulatedExecution:
    """Timed poses of a simulated execution of ``trajectory`` (see the module docstring)."""
    if not (rate_hz > 0 and np.isfinite(rate_hz)):
        raise ValueError(f"--rate-hz {rate_hz}: must be > 0")
    if not (duration_s > 0 and np.isfinite(duration_s)):
        raise ValueError(f"--duration-s {duration_s}: must be > 0")
    if not (noise_mm >= 0 and np.isfinite(noise_mm)):
        raise ValueError(f"--noise-mm {noise_mm}: must be >= 0")
    if pivot not in ("target", "entry"):
        raise ValueError(f"pivot {pivot!r}: must be 'target' or 'entry'")
    offset = np.asarray(offset_mm, dtype=float).reshape(3)
    entry, target = np.asarray(trajectory.entry_lps), np.asarray(trajectory.target_lps)
    direction = unit(target - entry)
    axis = perpendicular_axis(direction) if angle_axis is None else unit(angle_axis)
    rot = rotation_about(axis, angle_deg)
    center = target if pivot == "target" else entry
    true_entry = center + rot @ (entry - center) + offset
    true_target = center + rot @ (target - center) + offset
    tool_axis = unit(true_target - true_entry)

    n = max(2, int(round(duration_s * rate_hz)) + 1)
    t = np.arange(n) / rate_hz
    s = np.clip((t / duration_s - REST_FRACTION) / (1.0 - 2 * REST_FRACTION), 0.0, 1.0)
    tips = true_entry + s[:, None] * (true_target - true_entry)
    if noise_mm > 0:
        tips = tips + np.random.default_rng(seed).normal(0.0, noise_mm, size=tips.shape)
    poses = np.stack([tool_pose(tip, tool_axis) for tip in tips])
    if to_tracker is not None:
        poses = np.asarray(to_tracker, dtype=float) @ poses
    return SimulatedExecution(t, poses, true_entry, true_target, (1.0 - 2 * REST_FRACTION) * duration_s, frame)


def expected_deviations(trajectory: Trajectory, execution: SimulatedExecution) -> dict[str, float]:
    """The noise-free deviations of ``execution`` under the definitions of :mod:`workstation.live.scoring`:
    where the executed line crosses the plane through the planned entry (mm from it), the executed target
    (mm from the planned one), the angle between the lines (deg) and the insertion time (s)."""
    entry, target = np.asarray(trajectory.entry_lps), np.asarray(trajectory.target_lps)
    d = unit(target - entry)
    e, g = execution.true_entry_lps, execution.true_target_lps
    v = unit(g - e)
    crossing = e + v * (float((entry - e) @ d) / float(v @ d))
    return {"entry_deviation_mm": float(np.linalg.norm(crossing - entry)),
            "target_deviation_mm": float(np.linalg.norm(g - target)),
            "angle_deg": float(np.degrees(np.arccos(np.clip(v @ d, -1.0, 1.0)))),
            "time_taken_s": execution.insertion_time_s}
