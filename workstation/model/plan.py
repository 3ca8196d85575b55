"""The surgical plan: landmarks, trajectories, resection planes, implants, measurements (LPS mm)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

PLAN_SCHEMA_VERSION = 1


def _point(value: Any, *, what: str) -> tuple[float, float, float]:
    p = tuple(float(x) for x in np.asarray(value, dtype=float).reshape(-1))
    if len(p) != 3 or not all(np.isfinite(p)):
        raise ValueError(f"{what} must be three finite numbers (LPS mm), got {value!r}")
    return p  # type: ignore[return-value]


@dataclass(frozen=True)
class Landmark:
    """A named point in LPS mm."""

    name: str
    position_lps: tuple[float, float, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "position_lps", _point(self.position_lps, what=f"landmark {self.name!r}"))


@dataclass(frozen=True)
class Trajectory:
    """A straight tool path from ``entry_lps`` to ``target_lps`` (mm) for a tool of given diameter."""

    name: str
    entry_lps: tuple[float, float, float]
    target_lps: tuple[float, float, float]
    tool_diameter_mm: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "entry_lps", _point(self.entry_lps, what=f"trajectory {self.name!r} entry"))
        object.__setattr__(self, "target_lps", _point(self.target_lps, what=f"trajectory {self.name!r} target"))
        if not self.tool_diameter_mm > 0:
            raise ValueError(f"trajectory {self.name!r}: tool_diameter_mm must be > 0")
        if np.allclose(self.entry_lps, self.target_lps):
            raise ValueError(f"trajectory {self.name!r}: entry and target coincide")

    @property
    def length_mm(self) -> float:
        return float(np.linalg.norm(np.subtract(self.target_lps, self.entry_lps)))


@dataclass(frozen=True)
class ResectionPlane:
    """A cutting plane through ``origin_lps`` with unit ``normal_lps``; ``kept_side`` is +1 or -1."""

    name: str
    origin_lps: tuple[float, float, float]
    normal_lps: tuple[float, float, float]
    kept_side: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "origin_lps", _point(self.origin_lps, what=f"plane {self.name!r} origin"))
        n = np.asarray(_point(self.normal_lps, what=f"plane {self.name!r} normal"))
        if np.linalg.norm(n) < 1e-9:
            raise ValueError(f"plane {self.name!r}: normal must not be zero")
        object.__setattr__(self, "normal_lps", tuple(float(x) for x in n / np.linalg.norm(n)))
        if self.kept_side not in (1, -1):
            raise ValueError(f"plane {self.name!r}: kept_side must be +1 or -1")


@dataclass(frozen=True)
class Implant:
    """An implant (e.g. ``kind="pedicle_screw"``) with its 4x4 pose (implant frame -> LPS mm).

    The implant frame follows the tool-axis convention of the plan export: origin at the tip, +z
    along the insertion direction (head -> tip), so the body occupies ``z`` in ``[-length_mm, 0]``.
    """

    name: str
    kind: str
    pose_lps: tuple[tuple[float, ...], ...]
    diameter_mm: float
    length_mm: float

    def __post_init__(self) -> None:
        pose = np.asarray(self.pose_lps, dtype=float)
        if pose.shape != (4, 4) or not np.allclose(pose[3], [0, 0, 0, 1]):
            raise ValueError(f"implant {self.name!r}: pose_lps must be a 4x4 rigid transform")
        object.__setattr__(self, "pose_lps", tuple(tuple(float(x) for x in row) for row in pose))
        if not (self.diameter_mm > 0 and self.length_mm > 0):
            raise ValueError(f"implant {self.name!r}: diameter_mm and length_mm must be > 0")


@dataclass(frozen=True)
class Measurement:
    """A distance (2 points, mm) or an angle (3 points, degrees at the middle one)."""

    name: str
    kind: str
    points_lps: tuple[tuple[float, float, float], ...]

    def __post_init__(self) -> None:
        pts = tuple(_point(p, what=f"measurement {self.name!r} point") for p in self.points_lps)
        needed = {"distance": 2, "angle": 3}.get(self.kind)
        if needed is None:
            raise ValueError(f"measurement {self.name!r}: kind must be 'distance' or 'angle'")
        if len(pts) != needed:
            raise ValueError(f"measurement {self.name!r}: a {self.kind} needs {needed} points")
        object.__setattr__(self, "points_lps", pts)

    @property
    def value(self) -> float:
        """Distance in mm or angle in degrees."""
        p = np.asarray(self.points_lps)
        if self.kind == "distance":
            return float(np.linalg.norm(p[1] - p[0]))
        a, b = p[0] - p[1], p[2] - p[1]
        cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
        return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


_ITEM_TYPES = {
    "landmarks": Landmark,
    "trajectories": Trajectory,
    "resection_planes": ResectionPlane,
    "implants": Implant,
    "measurements": Measurement,
}


@dataclass(frozen=True)
class Plan:
    """Everything planned on a case, in LPS millimetres. Immutable: edits return a new plan."""

    landmarks: tuple[Landmark, ...] = ()
    trajectories: tuple[Trajectory, ...] = ()
    resection_planes: tuple[ResectionPlane, ...] = ()
    implants: tuple[Implant, ...] = ()
    measurements: tuple[Measurement, ...] = ()
    schema_version: int = PLAN_SCHEMA_VERSION
    coordinate_system: str = "LPS"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in _ITEM_TYPES:
            items = tuple(getattr(self, key))
            names = [item.name for item in items]
            if len(set(names)) != len(names):
                raise ValueError(f"plan {key} repeat a name: {names}")
            object.__setattr__(self, key, items)

    def with_item(self, item: Landmark | Trajectory | ResectionPlane | Implant | Measurement) -> Plan:
        """A new plan with ``item`` added, or replacing the item of the same kind and name."""
        key = next(k for k, t in _ITEM_TYPES.items() if isinstance(item, t))
        items = [x for x in getattr(self, key) if x.name != item.name] + [item]
        return replace(self, **{key: tuple(items)})

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"schema_version": self.schema_version, "coordinate_system": self.coordinate_system,
                                "units": "mm"}
        for key in _ITEM_TYPES:
            data[key] = [asdict(item) for item in getattr(self, key)]
        data["extra"] = dict(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        if data.get("coordinate_system", "LPS") != "LPS":
            raise ValueError(f"plan coordinate_system must be LPS, got {data.get('coordinate_system')!r}")
        kwargs: dict[str, Any] = {}
        for key, item_type in _ITEM_TYPES.items():
            names = {f.name for f in fields(item_type)}
            kwargs[key] = tuple(item_type(**{k: v for k, v in d.items() if k in names}) for d in data.get(key, []))
        return cls(schema_version=int(data.get("schema_version", PLAN_SCHEMA_VERSION)),
                   extra=dict(data.get("extra", {})), **kwargs)
