"""Safety analysis of a plan: tool clearance to critical structures, entry angles, resection volumes.

The tool is the set of points within ``tool_diameter_mm / 2`` of its axis, the segment from entry to
target (a cylinder with rounded ends, so at the tip it is conservative by at most one radius). The
distance from the axis to a structure's surface is exact (:class:`SurfaceIndex`); the tool's
clearance is that distance minus the radius, and a structure is violated when the clearance is below
the safety margin. A structure whose surface the axis never meets but which holds the whole axis
(the tool runs inside it) gets a negative distance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from workstation.model.labelmap import LabelMap
from workstation.model.mesh import SurfaceMesh
from workstation.model.plan import ResectionPlane, Trajectory
from workstation.planning.surface_index import SurfaceIndex


def _lps(point: Any) -> list[float]:
    return [float(x) for x in np.asarray(point, dtype=float).reshape(3)]


@dataclass(frozen=True)
class StructureClearance:
    """How close one tool passes to one structure.

    Attributes
    ----------
    segment : the structure's segment name.
    min_distance_mm : distance from the tool axis to the structure's surface (0 when the axis crosses
        it, minus the distance when the whole axis lies inside the structure).
    clearance_mm : ``min_distance_mm - tool radius``: the gap between the tool's surface and the structure.
    closest_point_tool_lps, closest_point_structure_lps : the closest points on the axis and the surface.
    violated : ``clearance_mm < margin``.
    crosses : the axis crosses the structure's surface.
    inside : the whole axis lies inside the structure.
    """

    segment: str
    min_distance_mm: float
    clearance_mm: float
    closest_point_tool_lps: tuple[float, float, float]
    closest_point_structure_lps: tuple[float, float, float]
    violated: bool
    crosses: bool = False
    inside: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"segment": self.segment, "min_distance_mm": self.min_distance_mm, "clearance_mm": self.clearance_mm,
                "closest_point_tool_lps": list(self.closest_point_tool_lps),
                "closest_point_structure_lps": list(self.closest_point_structure_lps),
                "violated": self.violated, "crosses": self.crosses, "inside": self.inside}


@dataclass(frozen=True)
class TrajectorySafety:
    """The safety of one trajectory against every critical structure (LPS mm).

    ``entry_angle_deg`` is the angle between the tool axis and the normal of ``entry_surface`` at the
    entry (0 = perpendicular to the surface), ``None`` when no entry surface was given.
    """

    trajectory: str
    tool_diameter_mm: float
    margin_mm: float
    structures: tuple[StructureClearance, ...]
    entry_angle_deg: float | None = None
    entry_surface: str | None = None

    @property
    def min_clearance_mm(self) -> float:
        """The smallest clearance over the structures (``inf`` without structures)."""
        return min((s.clearance_mm for s in self.structures), default=float("inf"))

    @property
    def violations(self) -> tuple[StructureClearance, ...]:
        return tuple(s for s in self.structures if s.violated)

    @property
    def safe(self) -> bool:
        return not self.violations

    def to_meta(self) -> dict[str, Any]:
        """JSON-ready description, the ``meta`` of a ``Record(kind="safety")``."""
        return {"trajectory": self.trajectory, "tool_diameter_mm": self.tool_diameter_mm,
                "margin_mm": self.margin_mm, "safe": self.safe,
                "min_clearance_mm": None if not self.structures else self.min_clearance_mm,
                "violations": [s.segment for s in self.violations],
                "structures": [s.to_dict() for s in self.structures],
                "entry_angle_deg": self.entry_angle_deg, "entry_surface": self.entry_surface,
                "coordinate_system": "LPS", "tool_model": "capsule around the entry-target axis"}


def structure_clearance(index: SurfaceIndex, segment: str, entry_lps: ArrayLike, target_lps: ArrayLike, *,
                        radius_mm: float, margin_mm: float) -> StructureClearance:
    """Clearance of a tool of radius ``radius_mm`` on the axis entry -> target to one structure."""
    hit = index.segment_distance(entry_lps, target_lps)
    distance = hit.distance_mm
    inside = False
    if not hit.crosses:
        # no crossing: the whole axis is on one side; test its closest point against the surface there
        inside = index.is_inside(hit.point_on_segment_lps, hit.point_on_surface_lps, hit.triangle)
        if inside:
            distance = -distance
    clearance = distance - radius_mm
    return StructureClearance(segment=segment, min_distance_mm=float(distance), clearance_mm=float(clearance),
                              closest_point_tool_lps=tuple(_lps(hit.point_on_segment_lps)),  # type: ignore[arg-type]
                              closest_point_structure_lps=tuple(_lps(hit.point_on_surface_lps)),  # type: ignore[arg-type]
                              violated=bool(clearance < margin_mm), crosses=hit.crosses, inside=inside)


def entry_angle_deg(index: SurfaceIndex, entry_lps: ArrayLike, target_lps: ArrayLike, *,
                    radius_mm: float = 2.0) -> float:
    """Angle (degrees, 0..90) between the axis entry -> target and the surface normal at the entry.

    The normal is the area-weighted mean over ``radius_mm`` around the surface point closest to the entry.
    """
    axis = np.asarray(target_lps, dtype=float) - np.asarray(entry_lps, dtype=float)
    axis /= np.linalg.norm(axis)
    normal = index.normal_near(entry_lps, radius_mm=radius_mm)
    return float(np.degrees(np.arccos(np.clip(abs(float(axis @ normal)), 0.0, 1.0))))


class SafetyChecker:
    """Critical structures prepared once, checked against trajectories many times (e.g. while dragging).

    Parameters
    ----------
    structures : critical surfaces, by segment name (or a list of meshes named by ``segment`` or ``name``).
    entry_surface : the skin or bone surface the tool enters through (for the entry angle), optional.
    """

    def __init__(self, structures: Mapping[str, SurfaceMesh] | Iterable[SurfaceMesh], *,
                 entry_surface: SurfaceMesh | None = None) -> None:
        items = structures.items() if isinstance(structures, Mapping) else (
            (m.segment or m.name, m) for m in structures)
        self.indexes: dict[str, SurfaceIndex] = {str(name): SurfaceIndex(mesh) for name, mesh in items}
        self.entry_index = SurfaceIndex(entry_surface) if entry_surface is not None else None
        self.entry_surface_name = None if entry_surface is None else (entry_surface.segment or entry_surface.name)

    def check(self, trajectory: Trajectory, *, margin_mm: float = 2.0) -> TrajectorySafety:
        """The safety of ``trajectory`` against every structure."""
        if not np.isfinite(margin_mm):
            raise ValueError(f"margin_mm must be finite, got {margin_mm}")
        radius = 0.5 * trajectory.tool_diameter_mm
        rows = tuple(structure_clearance(index, name, trajectory.entry_lps, trajectory.target_lps,
                                         radius_mm=radius, margin_mm=margin_mm)
                     for name, index in self.indexes.items())
        angle = None if self.entry_index is None else entry_angle_deg(self.entry_index, trajectory.entry_lps,
                                                                      trajectory.target_lps)
        return TrajectorySafety(trajectory=trajectory.name, tool_diameter_mm=trajectory.tool_diameter_mm,
                                margin_mm=float(margin_mm), structures=rows, entry_angle_deg=angle,
                                entry_surface=self.entry_surface_name)


@dataclass(frozen=True)
class ResectionAnalysis:
    """What a resection plane removes.

    Attributes
    ----------
    plane : the plane's name.
    removed_ml : per segment, the volume on the removed side (label-map voxels whose centres lie there).
    total_ml : per segment, its whole volume.
    target : the segment meant to be removed ("" when none).
    target_margin_mm : the smallest distance of the target's voxel centres beyond the plane on the removed
        side (negative: part of the target stays on the kept side by that much); ``None`` without a target.
    """

    plane: str
    removed_ml: dict[str, float]
    total_ml: dict[str, float]
    target: str = ""
    target_margin_mm: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_meta(self) -> dict[str, Any]:
        return {"resection_plane": self.plane, "removed_ml": dict(self.removed_ml), "total_ml": dict(self.total_ml),
                "target": self.target, "target_margin_mm": self.target_margin_mm, "coordinate_system": "LPS",
                "volume_rule": "label-map voxels whose centres lie on the removed side"}


def _kept_distance(plane: ResectionPlane, points_lps: np.ndarray) -> np.ndarray:
    """Signed distance (mm) of points from the plane, positive on the kept side."""
    return (points_lps - np.asarray(plane.origin_lps)) @ np.asarray(plane.normal_lps) * plane.kept_side


def resection_analysis(plane: ResectionPlane, label_map: LabelMap, *, segments: Iterable[str] | None = None,
                       target: str | None = None) -> ResectionAnalysis:
    """Volumes removed from each segment by ``plane`` and the margin around a target segment.

    Parameters
    ----------
    plane : the cut; the side opposite ``kept_side`` is removed.
    label_map : the segments (voxel centres are used; volume = voxel count x voxel volume).
    segments : names to report (default: all segments of the label map).
    target : the segment the cut must remove entirely (e.g. a tumour), for ``target_margin_mm``.
    """
    names = list(segments) if segments is not None else [s.name for s in label_map.segments]
    if target and target not in names:
        names.append(target)
    voxel_ml = abs(float(np.linalg.det(label_map.ijk_to_lps[:3, :3]))) / 1000.0
    removed: dict[str, float] = {}
    total: dict[str, float] = {}
    margin = None
    for name in names:
        value = label_map.segment(name).value
        k, j, i = np.nonzero(label_map.array == value)
        ijk = np.stack([i, j, k], axis=1).astype(float)
        lps = ijk @ label_map.ijk_to_lps[:3, :3].T + label_map.ijk_to_lps[:3, 3]
        side = _kept_distance(plane, lps)
        removed[name] = float(np.count_nonzero(side < 0) * voxel_ml)
        total[name] = float(len(side) * voxel_ml)
        if name == target:
            margin = float(np.min(-side)) if len(side) else None
    return ResectionAnalysis(plane=plane.name, removed_ml=removed, total_ml=total, target=target or "",
                             target_margin_mm=margin)
