"""3D Slicer markups JSON (``.mrk.json``): plans to and from Slicer.

Export (coordinateSystem ``LPS``, coordinateUnits ``mm``, schema v1.0.3):

* the landmarks as one ``Fiducial`` markup named ``Landmarks`` (control point label = landmark name);
* each trajectory as a ``Line`` markup named after it, control point 0 = entry (label ``entry``),
  1 = target (label ``target``); the tool diameter is in the entry point's description
  (``tool_diameter_mm=4.5``), which Slicer keeps;
* each resection plane as a ``Plane`` markup (``planeType`` ``pointNormal``): control point 0 =
  origin, ``normal``/``objectToBase`` z axis = the plane normal; the kept side is in the control
  point's description (``kept_side=+1``).

Import reads files Slicer writes, in LPS or RAS (x and y negated) and in mm or um: Fiducial
points become landmarks, Lines trajectories, Planes resection planes (``pointNormal`` or
``3points``). Other markup types are skipped and listed.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from workstation.errors import InputError
from workstation.export.tool_pose import tool_rotation
from workstation.io.atomic import write_text_atomic
from workstation.model import Landmark, Plan, ResectionPlane, Trajectory

MARKUPS_SCHEMA = ("https://raw.githubusercontent.com/slicer/slicer/main/Modules/Loadable/Markups/Resources/Schema/"
                  "markups-schema-v1.0.3.json#")
LANDMARKS_NAME = "Landmarks"
_FLIP = np.array([-1.0, -1.0, 1.0])  # LPS <-> RAS
_DIAMETER = re.compile(r"tool_diameter_mm=([-+0-9.eE]+)")
_KEPT = re.compile(r"kept_side=([-+]?1)\b")


def _control_point(index: int, label: str, position: Any, description: str = "") -> dict[str, Any]:
    return {"id": str(index + 1), "label": label, "description": description, "associatedNodeID": "",
            "position": [float(x) for x in position], "orientation": [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0],
            "selected": True, "locked": False, "visibility": True, "positionStatus": "defined"}


def _markup(kind: str, name: str, points: list[dict[str, Any]], color: tuple[float, float, float],
            **extra: Any) -> dict[str, Any]:
    return {"type": kind, "name": name, "coordinateSystem": "LPS", "coordinateUnits": "mm", "locked": False,
            "fixedNumberOfControlPoints": kind != "Fiducial", "labelFormat": "%N-%d",
            "lastUsedControlPointNumber": len(points), "controlPoints": points, **extra, "measurements": [],
            "display": {"visibility": True, "opacity": 1.0, "color": list(color), "selectedColor": list(color),
                        "pointLabelsVisibility": True, "glyphType": "Sphere3D", "glyphScale": 1.0}}


def plan_to_markups(plan: Plan) -> dict[str, Any]:
    """The ``.mrk.json`` document of ``plan`` (LPS mm)."""
    markups: list[dict[str, Any]] = []
    if plan.landmarks:
        markups.append(_markup("Fiducial", LANDMARKS_NAME,
                               [_control_point(n, lm.name, lm.position_lps) for n, lm in enumerate(plan.landmarks)],
                               (1.0, 0.5, 0.5)))
    for t in plan.trajectories:
        markups.append(_markup("Line", t.name, [
            _control_point(0, "entry", t.entry_lps, f"entry tool_diameter_mm={t.tool_diameter_mm!r}"),
            _control_point(1, "target", t.target_lps, "target")], (0.4, 1.0, 1.0)))
    for p in plan.resection_planes:
        rotation = tool_rotation(p.normal_lps)  # columns x, y, z with z = normal
        object_to_base = np.eye(4)
        object_to_base[:3, :3] = rotation
        base_to_node = np.eye(4)
        base_to_node[:3, 3] = p.origin_lps
        markups.append(_markup(
            "Plane", p.name, [_control_point(0, "origin", p.origin_lps, f"origin kept_side={p.kept_side:+d}")],
            (1.0, 1.0, 0.4), planeType="pointNormal", sizeMode="auto", autoScalingFactor=1.0,
            center=[float(x) for x in p.origin_lps], normal=[float(x) for x in p.normal_lps],
            objectToBase=[float(x) for x in object_to_base.reshape(-1)],
            baseToNode=[float(x) for x in base_to_node.reshape(-1)],
            orientation=[float(x) for x in rotation.reshape(-1)], size=[100.0, 100.0, 0.0],
            planeBounds=[-50.0, 50.0, -50.0, 50.0]))
    return {"@schema": MARKUPS_SCHEMA, "markups": markups}


def write_markups(plan: Plan, path: str | os.PathLike[str]) -> None:
    write_text_atomic(path, json.dumps(plan_to_markups(plan), indent=2) + "\n")


@dataclass(frozen=True)
class MarkupsImport:
    """What :func:`read_markups` found: plan items (LPS mm) and the markups it skipped."""

    landmarks: tuple[Landmark, ...]
    trajectories: tuple[Trajectory, ...]
    resection_planes: tuple[ResectionPlane, ...]
    skipped: tuple[str, ...]

    def merged_into(self, plan: Plan) -> Plan:
        """``plan`` with these items added (items of the same kind and name are replaced)."""
        for item in (*self.landmarks, *self.trajectories, *self.resection_planes):
            plan = plan.with_item(item)
        return plan

    def as_plan(self) -> Plan:
        return self.merged_into(Plan())


def _vector(value: Any, what: str, scale: float = 1.0) -> NDArray[np.float64]:
    try:
        v = np.asarray(value, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        v = np.empty(0)
    if v.shape != (3,) or not np.all(np.isfinite(v)):
        raise ValueError(f"{what}: expected three finite numbers, got {value!r}")
    return v * scale


def _units_scale(markup: dict[str, Any], what: str) -> float:
    units = markup.get("coordinateUnits", "mm")
    if isinstance(units, list) and units:
        units = units[0]
    scale = {"mm": 1.0, "um": 1e-3}.get(units)
    if scale is None:
        raise ValueError(f"{what}: coordinateUnits {units!r} (expected mm or um)")
    return scale


def _markup_points(markup: dict[str, Any], what: str) -> list[tuple[str, str, NDArray[np.float64]]]:
    system = markup.get("coordinateSystem", "LPS")
    if system not in ("LPS", "RAS"):
        raise ValueError(f"{what}: coordinateSystem {system!r} (expected LPS or RAS)")
    flip = _FLIP if system == "RAS" else np.ones(3)
    scale = _units_scale(markup, what)
    points = []
    for n, cp in enumerate(markup.get("controlPoints", [])):
        if cp.get("positionStatus", "defined") != "defined":
            continue
        position = _vector(cp.get("position"), f"{what} control point {n + 1}", scale) * flip
        points.append((str(cp.get("label", "")), str(cp.get("description", "")), position))
    return points


def _plane(markup: dict[str, Any], name: str, what: str) -> ResectionPlane:
    points = _markup_points(markup, what)
    flip = _FLIP if markup.get("coordinateSystem", "LPS") == "RAS" else np.ones(3)
    kept = next((int(m.group(1)) for _, d, _ in points if (m := _KEPT.search(d))), 1)
    if markup.get("planeType", "pointNormal") == "3points" or ("normal" not in markup and len(points) >= 3):
        if len(points) < 3:
            raise ValueError(f"{what}: a 3-point plane needs 3 defined control points")
        p0, p1, p2 = (p for _, _, p in points[:3])
        return ResectionPlane(name, p0, np.cross(p1 - p0, p2 - p0), kept_side=kept)
    if "normal" in markup:
        normal = _vector(markup["normal"], f"{what} normal") * flip
    elif "objectToBase" in markup:
        normal = np.asarray(markup["objectToBase"], dtype=float).reshape(4, 4)[:3, 2] * flip
    else:
        raise ValueError(f"{what}: plane without normal")
    if points:
        origin = points[0][2]
    elif "center" in markup:
        origin = _vector(markup["center"], f"{what} center", _units_scale(markup, what)) * flip
    else:
        raise ValueError(f"{what}: plane without a defined control point or center")
    return ResectionPlane(name, origin, normal, kept_side=kept)


def markups_to_plan_items(document: Any, *, source: str = "markups",
                          default_diameter_mm: float = 1.0) -> MarkupsImport:
    """Plan items from a parsed ``.mrk.json`` document (any ValueError becomes an InputError)."""
    if not isinstance(document, dict) or not isinstance(document.get("markups"), list):
        raise InputError(f"{source}: not a Slicer markups file (no 'markups' list)")
    landmarks: list[Landmark] = []
    trajectories: list[Trajectory] = []
    planes: list[ResectionPlane] = []
    skipped: list[str] = []
    try:
        for n, markup in enumerate(document["markups"]):
            if not isinstance(markup, dict):
                raise ValueError(f"markup {n + 1} is not an object")
            kind, name = markup.get("type"), str(markup.get("name") or f"{markup.get('type', 'markup')}-{n + 1}")
            what = f"markup {name!r}"
            if kind == "Fiducial":
                for i, (label, _, p) in enumerate(_markup_points(markup, what)):
                    landmarks.append(Landmark(label or f"{name}-{i + 1}", p))
            elif kind == "Line":
                points = _markup_points(markup, what)
                if len(points) != 2:
                    raise ValueError(f"{what}: a trajectory line needs 2 defined control points, has {len(points)}")
                by_label = {label: (d, p) for label, d, p in points}
                if "entry" in by_label and "target" in by_label:
                    (d_entry, entry), (_, target) = by_label["entry"], by_label["target"]
                else:
                    (_, d_entry, entry), (_, _, target) = points
                match = _DIAMETER.search(d_entry)
                diameter = float(match.group(1)) if match else default_diameter_mm
                trajectories.append(Trajectory(name, entry, target, tool_diameter_mm=diameter))
            elif kind == "Plane":
                planes.append(_plane(markup, name, what))
            else:
                skipped.append(f"{name} ({kind})")
    except ValueError as exc:
        raise InputError(f"{source}: {' '.join(str(exc).split())}") from exc
    return MarkupsImport(tuple(landmarks), tuple(trajectories), tuple(planes), tuple(skipped))


def read_markups(path: str | os.PathLike[str], *, default_diameter_mm: float = 1.0) -> MarkupsImport:
    """Read a ``.mrk.json`` file (LPS or RAS) into plan items in LPS mm."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc
    return markups_to_plan_items(document, source=str(path), default_diameter_mm=default_diameter_mm)
