"""Planned trajectories for the tracker simulator, from a plan JSON file or a case bundle.

This is the one place that reads plan files. A ``twin export-plan`` document (``"format":
"surgical-twin-plan"``) is checked with :func:`workstation.export.plan_json.verify_plan` (schema, digest,
geometry; a signature is not required) and its trajectories are taken in the document's own frame
(``coordinate_frame``: the image LPS frame, or the registered robot/tracker frame), so the simulator streams
in the plan's frame. Other JSON is read as :meth:`workstation.model.Plan.to_dict` output (image LPS) with
entry/target under ``entry_lps``/``target_lps`` (or ``entry``/``target``). A case bundle gives its plan in
image LPS.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workstation.errors import InputError
from workstation.model import Registration, Trajectory

_ENTRY_KEYS = ("entry_lps", "entry", "entry_point_lps", "entry_point")
_TARGET_KEYS = ("target_lps", "target", "target_point_lps", "target_point")


@dataclass(frozen=True)
class PlanSource:
    """Trajectories (mm) in the frame named ``frame`` (``image_lps`` or a registered frame) and, from a case
    bundle, the case's registration to the tracker."""

    trajectories: tuple[Trajectory, ...]
    frame: str
    path: str
    registration: Registration | None = None

    def trajectory(self, name: str | None) -> Trajectory:
        """The trajectory called ``name`` (the only/first one when ``None``)."""
        if not self.trajectories:
            raise InputError(f"{self.path}: the plan holds no trajectory")
        if name is None:
            return self.trajectories[0]
        for t in self.trajectories:
            if t.name == name:
                return t
        raise InputError(f"--trajectory {name!r}: not in {self.path} (there are: "
                         f"{', '.join(t.name for t in self.trajectories)})")


def _point(item: dict[str, Any], keys: tuple[str, ...], what: str) -> list[float]:
    for key in keys:
        if key in item:
            value = item[key]
            if isinstance(value, dict):
                value = value.get("lps", value.get("position_lps", [value.get(k) for k in "xyz"]))
            try:
                p = [float(v) for v in value]
            except (TypeError, ValueError):
                p = []
            if len(p) == 3 and all(np.isfinite(p)):
                return p
            raise InputError(f"{what}: {key} is not three finite numbers")
    raise InputError(f"{what}: no {' / '.join(keys[:2])} point")


def _from_export_document(path: Path, document: dict[str, Any]) -> PlanSource:
    from workstation.export.plan_json import verify_plan

    check = verify_plan(document)
    if not (check.schema_ok and check.digest_ok and check.geometry_ok):
        raise InputError(f"{path}: not a valid exported plan ({check.reason})")
    trajectories = []
    for item in document["trajectories"]:
        try:
            trajectories.append(Trajectory(item["name"], item["entry_mm"], item["target_mm"],
                                           tool_diameter_mm=float(item["tool_diameter_mm"])))
        except (TypeError, ValueError) as exc:
            raise InputError(f"{path}: trajectory {item.get('name')!r}: {exc}") from None
    return PlanSource(tuple(trajectories), str(document["coordinate_frame"]["name"]), str(path))


def _from_json(path: Path) -> PlanSource:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable plan JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: plan JSON must be an object")
    if data.get("format") == "surgical-twin-plan":
        return _from_export_document(path, data)
    plan = data.get("plan", data) if isinstance(data.get("plan"), dict) else data
    frame = str(plan.get("coordinate_system", data.get("coordinate_system", "LPS")))
    if frame.upper() not in ("LPS", "IMAGE_LPS"):
        raise InputError(f"{path}: coordinate_system {frame!r} is not LPS")
    items = plan.get("trajectories")
    if not isinstance(items, list):
        raise InputError(f"{path}: no 'trajectories' list")
    trajectories = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise InputError(f"{path}: trajectory {n} is not an object")
        name = str(item.get("name", f"trajectory-{n + 1}"))
        what = f"{path}: trajectory {name!r}"
        diameter = item.get("tool_diameter_mm", 1.0)
        try:
            trajectories.append(Trajectory(name, _point(item, _ENTRY_KEYS, what), _point(item, _TARGET_KEYS, what),
                                           tool_diameter_mm=float(diameter)))
        except (TypeError, ValueError) as exc:
            raise InputError(f"{what}: {exc}") from None
    return PlanSource(tuple(trajectories), "image_lps", str(path))


def case_registration(case: Any, registration_id: str | None = None) -> Registration | None:
    """The case's image -> patient/tracker registration (``registration_id``, else the last added whose
    ``from_frame`` is ``image_lps``, else the last one); ``None`` when the case has none."""
    regs = dict(case.registrations)
    if registration_id is not None:
        if registration_id not in regs:
            raise InputError(f"--registration {registration_id!r}: not in the case (there are: "
                             f"{', '.join(regs) or 'none'})")
        return regs[registration_id]
    image = [r for r in regs.values() if r.from_frame == "image_lps"]
    chosen = image or list(regs.values())
    return chosen[-1] if chosen else None


def load_plan_source(path: str | os.PathLike[str]) -> PlanSource:
    """Trajectories from a plan JSON file or a case bundle (folder or .zip) at ``path``."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such plan JSON or case bundle")
    if path.is_dir() or path.suffix.lower() == ".zip":
        from workstation.bundle import load_case

        case = load_case(path)
        return PlanSource(tuple(case.plan.trajectories), "image_lps", str(path), case_registration(case))
    return _from_json(path)
