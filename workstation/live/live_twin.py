"""The live twin: a tracked tool pose -> distances to the plan and to danger, and a safety alarm.

Live poses arrive in the registration's ``to_frame`` (patient/tracker); they are mapped back into image
LPS with the inverse of the case's registration (identity when the case has none) and measured against
the planned trajectory and the critical-structure surfaces of the case (all in image LPS mm).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from workstation.errors import InputError
from workstation.live.plan_source import case_registration
from workstation.live.pose import angle_between_deg, distance_to_line, tips_and_axes, unit
from workstation.live.structure_distance import StructureDistances
from workstation.model import Case, SurfaceMesh, Trajectory

# Surfaces that are never "critical": the skin is crossed by every percutaneous path.
NON_CRITICAL_NAMES = ("body", "skin", "body_surface", "body-surface")


@dataclass(frozen=True)
class LiveState:
    """The twin's numbers for one tool pose (image LPS, mm and degrees).

    Attributes
    ----------
    tip_lps, axis_lps : tool tip (3,) and unit insertion axis (3,).
    distance_to_target_mm : tip to planned target.
    lateral_deviation_mm : tip to the planned line (entry -> target, extended).
    angle_deg : between the tool axis and the planned axis.
    depth_mm : tip position along the planned axis, 0 at the entry, the trajectory length at the target.
    structure_distances_mm : per critical structure, the signed distance (negative = inside) from the
        tool cylinder (tip and inserted shaft, minus the tool radius) to its surface.
    breached : structures closer than the safety margin; ``alarm`` is true when any is.
    """

    tip_lps: NDArray[np.float64]
    axis_lps: NDArray[np.float64]
    distance_to_target_mm: float
    lateral_deviation_mm: float
    angle_deg: float
    depth_mm: float
    structure_distances_mm: dict[str, float] = field(default_factory=dict)
    breached: tuple[str, ...] = ()

    @property
    def alarm(self) -> bool:
        return bool(self.breached)

    @property
    def min_structure_distance_mm(self) -> float:
        return min(self.structure_distances_mm.values(), default=float("inf"))

    def summary(self) -> str:
        """One line for a terminal."""
        text = (f"target {self.distance_to_target_mm:6.1f} mm  lateral {self.lateral_deviation_mm:5.1f} mm  "
                f"angle {self.angle_deg:5.1f} deg  depth {self.depth_mm:6.1f} mm")
        if self.structure_distances_mm:
            name = min(self.structure_distances_mm, key=self.structure_distances_mm.__getitem__)
            text += f"  nearest {name} {self.structure_distances_mm[name]:5.1f} mm"
        if self.breached:
            text += f"  ALARM: margin breached by {', '.join(self.breached)}"
        return text


def select_trajectory(case: Case, name: str | None) -> Trajectory:
    trajectories = case.plan.trajectories
    if not trajectories:
        raise InputError(f"case {case.name!r}: the plan holds no trajectory (plan one first)")
    if name is None:
        return trajectories[0]
    for t in trajectories:
        if t.name == name:
            return t
    raise InputError(f"--trajectory {name!r}: not in the plan (there are: {', '.join(t.name for t in trajectories)})")


def critical_meshes(case: Case, trajectory: Trajectory, names: Sequence[str] | None = None) -> list[SurfaceMesh]:
    """The case surfaces to keep the tool away from.

    ``names`` chooses them explicitly; otherwise every surface except the skin/body and the structures that
    contain the planned target (the target organ is entered on purpose).
    """
    meshes = list(case.meshes.values())
    if names is not None:
        by_name = {m.name or m.id: m for m in meshes}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise InputError(f"--critical {', '.join(missing)}: no such surface in the case "
                             f"(there are: {', '.join(by_name) or 'none'})")
        return [by_name[n] for n in names]
    chosen = [m for m in meshes if (m.name or m.id).lower() not in NON_CRITICAL_NAMES]
    if not chosen:
        return []
    inside = StructureDistances(chosen, method="vertices").contains(np.asarray(trajectory.target_lps))
    return [m for m, contains_target in zip(chosen, inside, strict=True) if not contains_target]


class LiveTwin:
    """Per-pose numbers for one planned trajectory of a case (structures built once, at construction).

    Parameters
    ----------
    case : the case (plan, meshes, registrations).
    trajectory : trajectory name (default: the first).
    margin_mm : safety margin; closer than this to a critical structure raises the alarm.
    critical : names of the critical surfaces (default: see :func:`critical_meshes`).
    registration_id : which registration maps image LPS to the tracker frame (default: see
        :func:`~workstation.live.plan_source.case_registration`); none -> identity.
    shaft_length_mm : length of shaft checked behind the tip; default ``None`` checks the inserted part
        (from the tip back to the plane through the planned entry, perpendicular to the planned axis).
    shaft_step_mm : spacing of the shaft samples (``"vertices"`` distance method).
    distance_method : see :class:`~workstation.live.structure_distance.StructureDistances`.
    """

    def __init__(self, case: Case, *, trajectory: str | None = None, margin_mm: float = 2.0,
                 critical: Sequence[str] | None = None, registration_id: str | None = None,
                 shaft_length_mm: float | None = None, shaft_step_mm: float = 1.0,
                 distance_method: str = "auto") -> None:
        if not (margin_mm >= 0 and np.isfinite(margin_mm)):
            raise InputError(f"--margin-mm {margin_mm}: must be >= 0")
        if not shaft_step_mm > 0:
            raise InputError(f"shaft_step_mm {shaft_step_mm}: must be > 0")
        self.trajectory = select_trajectory(case, trajectory)
        self.margin_mm = float(margin_mm)
        self.tool_radius_mm = self.trajectory.tool_diameter_mm / 2
        self.shaft_length_mm = shaft_length_mm
        self.shaft_step_mm = shaft_step_mm
        self.entry = np.asarray(self.trajectory.entry_lps)
        self.target = np.asarray(self.trajectory.target_lps)
        self.direction = unit(self.target - self.entry)
        registration = case_registration(case, registration_id)
        self.registration = registration
        self.tracker_frame = registration.to_frame if registration is not None else "image_lps"
        self.tracker_to_image = (np.linalg.inv(registration.matrix) if registration is not None else np.eye(4))
        self.critical = critical_meshes(case, self.trajectory, critical)
        # exact distances where the alarm is decided: the vertex measure errs by about 1 mm at most
        self.distances = StructureDistances(self.critical, method=distance_method, step_mm=shaft_step_mm,
                                            refine_below_mm=self.margin_mm + self.tool_radius_mm + 5.0)
        self.distances.warm_up()

    @property
    def structure_names(self) -> tuple[str, ...]:
        return self.distances.names

    def to_image(self, pose_tracker: ArrayLike) -> NDArray[np.float64]:
        """A tracker-frame pose (4, 4) or poses (T, 4, 4) in image LPS."""
        return self.tracker_to_image @ np.asarray(pose_tracker, dtype=float)

    def shaft_tail(self, tip: NDArray[np.float64], axis: NDArray[np.float64]) -> NDArray[np.float64]:
        """The end (3,) of the checked shaft: the tool axis from the tip back over the checked length."""
        if self.shaft_length_mm is not None:
            length = self.shaft_length_mm
        else:
            depth = float((tip - self.entry) @ self.direction)
            length = max(depth, 0.0) / max(float(axis @ self.direction), 0.2)
        return tip - length * axis

    def update_image(self, pose_lps: ArrayLike) -> LiveState:
        """Numbers for one pose already in image LPS."""
        tip, axis = tips_and_axes(pose_lps)
        names = self.distances.names
        values = (self.distances.tool_distances(tip, self.shaft_tail(tip, axis)) - self.tool_radius_mm
                  if names else np.empty(0))
        structure = {n: float(v) for n, v in zip(names, values, strict=True)}
        return LiveState(
            tip_lps=tip, axis_lps=axis,
            distance_to_target_mm=float(np.linalg.norm(tip - self.target)),
            lateral_deviation_mm=float(distance_to_line(tip, self.entry, self.direction)),
            angle_deg=float(angle_between_deg(axis, self.direction)),
            depth_mm=float((tip - self.entry) @ self.direction),
            structure_distances_mm=structure,
            breached=tuple(n for n, v in structure.items() if v < self.margin_mm))

    def update(self, pose_tracker: ArrayLike) -> LiveState:
        """Numbers for one pose in the tracker frame (registration applied)."""
        return self.update_image(self.to_image(pose_tracker))

    def describe(self) -> dict[str, Any]:
        """What the twin measures against (JSON-ready), kept in a session's meta."""
        return {"trajectory": self.trajectory.name, "entry_lps": self.entry.tolist(),
                "target_lps": self.target.tolist(), "tool_diameter_mm": self.trajectory.tool_diameter_mm,
                "margin_mm": self.margin_mm, "critical_structures": list(self.structure_names),
                "tracker_frame": self.tracker_frame,
                "registration_id": self.registration.id if self.registration is not None else None,
                "tracker_to_image": self.tracker_to_image.tolist()}
