"""Trajectory proposals: straight paths from an allowed entry region to a target, ranked by clearance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from workstation.errors import InputError
from workstation.model.mesh import SurfaceMesh
from workstation.model.plan import Trajectory
from workstation.planning.safety import SafetyChecker, TrajectorySafety
from workstation.progress import ProgressCallback, report


@dataclass(frozen=True)
class Proposal:
    """One candidate trajectory and its safety.

    ``min_clearance_mm`` is the smallest gap between the tool's surface and any critical structure;
    ``limiting_segment`` the structure where it occurs.
    """

    trajectory: Trajectory
    safety: TrajectorySafety
    min_clearance_mm: float
    limiting_segment: str

    def to_dict(self) -> dict[str, object]:
        t = self.trajectory
        return {"name": t.name, "entry_lps": list(t.entry_lps), "target_lps": list(t.target_lps),
                "tool_diameter_mm": t.tool_diameter_mm, "length_mm": t.length_mm,
                "min_clearance_mm": self.min_clearance_mm, "limiting_segment": self.limiting_segment,
                "safe": self.safety.safe, "entry_angle_deg": self.safety.entry_angle_deg}


def entry_points_in_sphere(surface: SurfaceMesh, centre_lps: ArrayLike, radius_mm: float, *,
                           max_points: int = 400) -> NDArray[np.float64]:
    """Vertices of ``surface`` (e.g. the skin) within ``radius_mm`` of ``centre_lps``, thinned evenly.

    Thinning keeps every n-th point along the vertices sorted by distance to the centre and angle, so
    the candidates cover the whole patch deterministically.
    """
    if not radius_mm > 0:
        raise InputError(f"entry region radius: must be > 0 mm, got {radius_mm}")
    centre = np.asarray(centre_lps, dtype=float)
    v = surface.vertices_lps
    d = np.linalg.norm(v - centre, axis=1)
    inside = np.flatnonzero(d <= radius_mm)
    if len(inside) == 0:
        raise InputError(f"entry region: no point of surface {surface.name!r} lies within {radius_mm} mm of "
                         f"{centre.tolist()} (LPS mm)")
    if len(inside) > max_points:
        # a regular grid of the patch: voxel-grid thinning with a cell sized for ~max_points cells
        pts = v[inside]
        cell = radius_mm * np.sqrt(np.pi / max_points) * 1.2
        keys = np.floor((pts - centre) / cell).astype(np.int64)
        _, first = np.unique(keys, axis=0, return_index=True)
        inside = inside[np.sort(first)]
    return np.array(v[inside], dtype=float)


def propose_trajectories(target_lps: ArrayLike, entry_candidates_lps: ArrayLike, checker: SafetyChecker, *,
                         tool_diameter_mm: float, margin_mm: float = 2.0, top: int = 5,
                         max_length_mm: float | None = None, name_prefix: str = "proposal",
                         progress: ProgressCallback | None = None) -> list[Proposal]:
    """Straight trajectories from each entry candidate to the target, best clearance first.

    Parameters
    ----------
    target_lps : (3,) the target (LPS mm).
    entry_candidates_lps : (N, 3) allowed entry points (LPS mm), e.g. from :func:`entry_points_in_sphere`.
    checker : the critical structures (and optionally the entry surface for entry angles).
    tool_diameter_mm, margin_mm : the tool and the required clearance.
    top : how many proposals to return.
    max_length_mm : skip longer paths.

    Returns
    -------
    Up to ``top`` proposals ranked by minimal clearance (largest first), then by length (shortest first).
    """
    target = np.asarray(target_lps, dtype=float).reshape(3)
    entries = np.atleast_2d(np.asarray(entry_candidates_lps, dtype=float))
    if entries.shape[1] != 3 or not np.all(np.isfinite(entries)) or not np.all(np.isfinite(target)):
        raise InputError("entry region: expected finite x,y,z points (LPS mm)")
    if not checker.indexes:
        raise InputError("--critical: name at least one critical segment to rank trajectories by clearance")
    proposals: list[Proposal] = []
    for n, entry in enumerate(entries):
        report(progress, n, len(entries), "checking candidate trajectories")
        length = float(np.linalg.norm(target - entry))
        if length < 1e-6 or (max_length_mm is not None and length > max_length_mm):
            continue
        trajectory = Trajectory(f"{name_prefix}-{n + 1}", tuple(entry), tuple(target),  # type: ignore[arg-type]
                                tool_diameter_mm=tool_diameter_mm)
        safety = checker.check(trajectory, margin_mm=margin_mm)
        limiting = min(safety.structures, key=lambda s: s.clearance_mm)
        proposals.append(Proposal(trajectory, safety, limiting.clearance_mm, limiting.segment))
    report(progress, len(entries), len(entries), "checking candidate trajectories")
    proposals.sort(key=lambda p: (-p.min_clearance_mm, p.trajectory.length_mm))
    return proposals[:top]
