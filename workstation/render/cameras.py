"""Cameras in patient LPS millimetres: standard views, probe's-eye, fly-through, orbit; saved as case records.

A camera is a position, a focal point, a view-up vector and a vertical view angle. Standard views name
where the camera stands relative to the patient: ``anterior`` looks at the patient's front, so the camera
is on the -Y side (anterior is -Y in LPS) looking towards +Y, with superior (+Z) up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from workstation.errors import InputError
from workstation.model.plan import Trajectory
from workstation.model.record import Record

# From the focal point towards the camera, and view-up; LPS.
STANDARD_VIEWS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "anterior": ((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
    "posterior": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    "left": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "right": ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "superior": ((0.0, 0.0, 1.0), (0.0, -1.0, 0.0)),
    "inferior": ((0.0, 0.0, -1.0), (0.0, -1.0, 0.0)),
    "anterior_superior": ((0.0, -0.7071067811865476, 0.7071067811865476),
                          (0.0, 0.7071067811865476, 0.7071067811865476)),
}

_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))  # (negative, positive) for x, y, z in LPS


def _unit(v: ArrayLike, *, what: str) -> NDArray[np.float64]:
    v = np.asarray(v, dtype=float).reshape(3)
    n = float(np.linalg.norm(v))
    if not np.isfinite(n) or n < 1e-12:
        raise InputError(f"{what}: must be a non-zero finite vector")
    return v / n


@dataclass(frozen=True)
class CameraPose:
    """Where the camera stands and looks (LPS mm) with its up vector and vertical view angle (degrees).

    With ``parallel_scale_mm`` (half the picture height in mm) the projection is orthographic: sizes do
    not depend on depth, as in the standard anatomical views.
    """

    position_lps: tuple[float, float, float]
    focal_point_lps: tuple[float, float, float]
    view_up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    view_angle_deg: float = 30.0
    parallel_scale_mm: float | None = None

    def __post_init__(self) -> None:
        pos = np.asarray(self.position_lps, dtype=float).reshape(3)
        focal = np.asarray(self.focal_point_lps, dtype=float).reshape(3)
        if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(focal))):
            raise InputError("camera: position and focal point must be finite (LPS mm)")
        if np.linalg.norm(focal - pos) < 1e-9:
            raise InputError("camera: position and focal point coincide")
        if not 1.0 <= float(self.view_angle_deg) <= 170.0:
            raise InputError(f"camera view_angle_deg: must lie in 1..170, got {self.view_angle_deg}")
        # Make view-up orthogonal to the viewing direction (fall back to another axis when parallel).
        forward = (focal - pos) / np.linalg.norm(focal - pos)
        up = _unit(self.view_up, what="camera view_up")
        up = up - forward * float(np.dot(up, forward))
        if np.linalg.norm(up) < 1e-6:
            alt = np.array([0.0, -1.0, 0.0]) if abs(forward[1]) < 0.9 else np.array([0.0, 0.0, 1.0])
            up = alt - forward * float(np.dot(alt, forward))
        up /= np.linalg.norm(up)
        object.__setattr__(self, "position_lps", tuple(float(x) for x in pos))
        object.__setattr__(self, "focal_point_lps", tuple(float(x) for x in focal))
        object.__setattr__(self, "view_up", tuple(float(x) for x in up))
        object.__setattr__(self, "view_angle_deg", float(self.view_angle_deg))
        if self.parallel_scale_mm is not None:
            if not float(self.parallel_scale_mm) > 0:
                raise InputError(f"camera parallel_scale_mm: must be > 0, got {self.parallel_scale_mm}")
            object.__setattr__(self, "parallel_scale_mm", float(self.parallel_scale_mm))

    @property
    def direction(self) -> NDArray[np.float64]:
        """(3,) unit viewing direction (camera towards focal point), LPS."""
        d = np.subtract(self.focal_point_lps, self.position_lps)
        return d / np.linalg.norm(d)

    @property
    def screen_right(self) -> NDArray[np.float64]:
        """(3,) unit LPS direction that points to the right of the picture."""
        return np.cross(self.direction, self.view_up)

    def edge_letters(self) -> dict[str, str]:
        """Patient-direction letters at the picture's edges: ``{"left", "right", "top", "bottom"}``."""
        right, up = self.screen_right, np.asarray(self.view_up)
        return {"right": direction_letters(right), "left": direction_letters(-right),
                "top": direction_letters(up), "bottom": direction_letters(-up)}

    def to_meta(self) -> dict[str, Any]:
        return {"position_lps": list(self.position_lps), "focal_point_lps": list(self.focal_point_lps),
                "view_up": list(self.view_up), "view_angle_deg": self.view_angle_deg,
                "parallel_scale_mm": self.parallel_scale_mm, "coordinate_system": "LPS"}

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> CameraPose:
        try:
            return cls(position_lps=tuple(meta["position_lps"]), focal_point_lps=tuple(meta["focal_point_lps"]),
                       view_up=tuple(meta.get("view_up", (0.0, 0.0, 1.0))),
                       view_angle_deg=float(meta.get("view_angle_deg", 30.0)),
                       parallel_scale_mm=meta.get("parallel_scale_mm"))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"camera record: unusable meta ({exc})") from None

    def to_record(self, name: str) -> Record:
        """A ``Record(kind="camera")`` to store in a case."""
        if not name:
            raise InputError("camera name: must not be empty")
        return Record(kind="camera", name=name, meta=self.to_meta())


def direction_letters(v: ArrayLike) -> str:
    """Patient-direction letters of an LPS vector: the dominant axis first, a second one when it is large.

    ``(1, 0, 0)`` -> ``"L"``; ``(0, -1, 1)`` -> ``"AS"``.
    """
    v = np.asarray(v, dtype=float)
    order = np.argsort(-np.abs(v))
    letters = [_LETTERS[a][int(v[a] > 0)] for a in order[:2] if abs(v[a]) > 0.38 * np.linalg.norm(v)]
    return "".join(letters)


def bounds_center_and_radius(bounds: ArrayLike) -> tuple[NDArray[np.float64], float]:
    """Centre and half-diagonal of ``(xmin, xmax, ymin, ymax, zmin, zmax)``."""
    b = np.asarray(bounds, dtype=float).reshape(3, 2)
    center = b.mean(axis=1)
    radius = float(np.linalg.norm(b[:, 1] - b[:, 0]) / 2)
    return center, max(radius, 1.0)


def standard_view(view: str, bounds: ArrayLike, *, view_angle_deg: float = 30.0, aspect: float = 4 / 3,
                  margin: float = 1.08, orthographic: bool = True) -> CameraPose:
    """A camera that fits the box ``bounds`` (LPS mm) into a picture of ``aspect`` (width / height),
    seen from a standard ``view``; orthographic by default (no perspective shrinking of far parts)."""
    if view not in STANDARD_VIEWS:
        raise InputError(f"--view {view!r}: expected one of {', '.join(STANDARD_VIEWS)} or probe:<trajectory>")
    direction, up = (np.asarray(v) for v in STANDARD_VIEWS[view])
    b = np.asarray(bounds, dtype=float).reshape(3, 2)
    center = b.mean(axis=1)
    corners = np.array([[x, y, z] for x in b[0] for y in b[1] for z in b[2]]) - center
    right = np.cross(-direction, up)
    half_w, half_h = np.abs(corners @ right).max(), np.abs(corners @ up).max()
    half_d = np.abs(corners @ direction).max()
    t = np.tan(np.radians(view_angle_deg) / 2)
    half_height = margin * max(half_h, half_w / aspect, 1.0)
    distance = half_d + half_height / t
    return CameraPose(position_lps=tuple(center + direction * distance), focal_point_lps=tuple(center),
                      view_up=tuple(up), view_angle_deg=view_angle_deg,
                      parallel_scale_mm=half_height if orthographic else None)


def _up_for(direction: NDArray[np.float64]) -> tuple[float, float, float]:
    """Superior up unless looking along the body axis; then anterior (-Y) up."""
    return (0.0, -1.0, 0.0) if abs(direction[2]) > 0.9 else (0.0, 0.0, 1.0)


def probe_view(trajectory: Trajectory, *, view_angle_deg: float = 50.0, standoff_mm: float = 0.0) -> CameraPose:
    """The probe's-eye view: the camera at the entry (moved back by ``standoff_mm``) looking at the target."""
    entry, target = np.asarray(trajectory.entry_lps), np.asarray(trajectory.target_lps)
    direction = (target - entry) / np.linalg.norm(target - entry)
    return CameraPose(position_lps=tuple(entry - direction * standoff_mm), focal_point_lps=tuple(target),
                      view_up=_up_for(direction), view_angle_deg=view_angle_deg)


def flythrough_poses(points_lps: ArrayLike, n_frames: int, *, view_angle_deg: float = 50.0,
                     look_ahead_mm: float = 20.0) -> list[CameraPose]:
    """Cameras moving at constant speed along a polyline ``points_lps`` (P, 3), each looking ahead.

    The last camera looks along the last segment. ``look_ahead_mm`` is how far ahead on the path the
    camera aims (the path end is extended straight for that).
    """
    pts = np.asarray(points_lps, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < 2:
        raise InputError("fly-through path: needs at least two LPS points")
    if n_frames < 2:
        raise InputError(f"--frames {n_frames}: a fly-through needs at least 2 frames")
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    keep = np.concatenate([[True], seg > 1e-9])
    pts = pts[keep]
    if len(pts) < 2:
        raise InputError("fly-through path: its points coincide")
    cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    tail = (pts[-1] - pts[-2]) / np.linalg.norm(pts[-1] - pts[-2])
    ext_pts = np.vstack([pts, pts[-1] + tail * look_ahead_mm])
    ext_cum = np.append(cum, cum[-1] + look_ahead_mm)

    def at(s: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.stack([np.interp(s, ext_cum, ext_pts[:, a]) for a in range(3)], axis=-1)

    s = np.linspace(0.0, cum[-1], n_frames)
    positions, focals = at(s), at(s + look_ahead_mm)
    poses = []
    for p, f in zip(positions, focals, strict=True):
        d = (f - p) / np.linalg.norm(f - p)
        poses.append(CameraPose(position_lps=tuple(p), focal_point_lps=tuple(f), view_up=_up_for(d),
                                view_angle_deg=view_angle_deg))
    return poses


def trajectory_flythrough(trajectory: Trajectory, n_frames: int, *, approach_mm: float | None = None,
                          view_angle_deg: float = 50.0) -> list[CameraPose]:
    """A fly-through that approaches the entry from outside (``approach_mm``, default the path length)
    and travels down the trajectory to the target."""
    entry, target = np.asarray(trajectory.entry_lps), np.asarray(trajectory.target_lps)
    direction = (target - entry) / np.linalg.norm(target - entry)
    approach = trajectory.length_mm if approach_mm is None else float(approach_mm)
    start = entry - direction * approach
    return flythrough_poses(np.vstack([start, entry, target]), n_frames, view_angle_deg=view_angle_deg,
                            look_ahead_mm=max(5.0, 0.25 * trajectory.length_mm))


def orbit_poses(bounds: ArrayLike, n_frames: int, *, elevation_deg: float = 15.0, start_view: str = "anterior",
                view_angle_deg: float = 30.0, aspect: float = 4 / 3) -> list[CameraPose]:
    """Cameras circling the patient's long (S-I) axis around the centre of ``bounds``, starting at ``start_view``.

    One full turn over ``n_frames``; ``elevation_deg`` tilts the cameras towards superior.
    """
    if n_frames < 2:
        raise InputError(f"--frames {n_frames}: an orbit needs at least 2 frames")
    sides = ("anterior", "posterior", "left", "right")
    start = standard_view(start_view if start_view in sides else "anterior", bounds, view_angle_deg=view_angle_deg,
                          aspect=aspect, orthographic=False)
    center = np.asarray(start.focal_point_lps)
    # Far enough for the widest side view, so that nothing leaves the picture during the turn.
    distance = max(float(np.linalg.norm(np.subtract(standard_view(v, bounds, view_angle_deg=view_angle_deg,
                                                                  aspect=aspect, orthographic=False).position_lps,
                                                    center)))
                   for v in sides)
    start_dir = -start.direction
    azimuth0 = np.arctan2(start_dir[1], start_dir[0])
    elev = np.radians(elevation_deg)
    poses = []
    for n in range(n_frames):
        az = azimuth0 + 2 * np.pi * n / n_frames
        d = np.array([np.cos(elev) * np.cos(az), np.cos(elev) * np.sin(az), np.sin(elev)])
        poses.append(CameraPose(position_lps=tuple(center + d * distance), focal_point_lps=tuple(center),
                                view_up=(0.0, 0.0, 1.0), view_angle_deg=view_angle_deg))
    return poses


def find_trajectory(trajectories: Sequence[Trajectory], name: str) -> Trajectory:
    for t in trajectories:
        if t.name == name:
            return t
    raise InputError(f"trajectory {name!r}: not in the plan; trajectories: {[t.name for t in trajectories] or 'none'}")
