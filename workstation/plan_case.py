"""Planning on a case: what ``twin plan`` / ``twin register`` and the app's planning panel call.

Plan items (landmarks, trajectories, resection planes) live in ``case.plan``; safety results are
stored as ``Record(kind="safety", name=<trajectory or plane>)``; registrations in
``case.registrations`` (id ``image-to-patient``). All geometry is patient LPS millimetres.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from workstation.errors import InputError
from workstation.model.case import Case
from workstation.model.plan import Implant, Landmark, Plan, ResectionPlane, Trajectory
from workstation.model.record import Record
from workstation.model.registration import Registration
from workstation.planning.planner import Proposal, entry_points_in_sphere, propose_trajectories
from workstation.planning.safety import ResectionAnalysis, SafetyChecker, TrajectorySafety, resection_analysis
from workstation.progress import ProgressCallback
from workstation.registration.paired_point import PairedPointResult, register_paired_points
from workstation.segment_case import segment_surface, segmented_label_map

REGISTRATION_ID = "image-to-patient"
# big enclosing segments never count as critical by default: a tool always runs inside them
_CONTAINERS = ("body", "skin", "bone")


# ------------------------------------------------------------------------------------------------
# plan items
# ------------------------------------------------------------------------------------------------

def _plan_item(factory: Any, what: str, **kwargs: Any) -> Any:
    try:
        return factory(**kwargs)
    except ValueError as exc:
        raise InputError(f"{what}: {exc}") from None


def add_trajectory(case: Case, name: str, entry_lps: ArrayLike, target_lps: ArrayLike, *,
                   tool_diameter_mm: float) -> Trajectory:
    """Add (or replace by name) a trajectory; emits ``plan_changed``."""
    trajectory = _plan_item(Trajectory, f"trajectory {name!r}", name=name, entry_lps=entry_lps,
                            target_lps=target_lps, tool_diameter_mm=float(tool_diameter_mm))
    case.set_plan(case.plan.with_item(trajectory))
    return trajectory


def add_landmark(case: Case, name: str, position_lps: ArrayLike) -> Landmark:
    landmark = _plan_item(Landmark, f"landmark {name!r}", name=name, position_lps=position_lps)
    case.set_plan(case.plan.with_item(landmark))
    return landmark


def add_resection_plane(case: Case, name: str, origin_lps: ArrayLike, normal_lps: ArrayLike, *,
                        kept_side: int = 1) -> ResectionPlane:
    plane = _plan_item(ResectionPlane, f"plane {name!r}", name=name, origin_lps=origin_lps, normal_lps=normal_lps,
                       kept_side=kept_side)
    case.set_plan(case.plan.with_item(plane))
    return plane


def add_implant(case: Case, name: str, *, diameter_mm: float, length_mm: float | None = None,
                pose_lps: ArrayLike | None = None, from_trajectory: str | None = None,
                head_lps: ArrayLike | None = None, tip_lps: ArrayLike | None = None,
                kind: str = "pedicle_screw") -> Implant:
    """Add (or replace by name) an implant; emits ``plan_changed``.

    Placed by exactly one of: a 4x4 ``pose_lps``; ``from_trajectory`` (tip at its target, along its
    insertion direction); ``head_lps`` and ``tip_lps`` (``length_mm`` defaults to their distance). The pose
    follows :mod:`workstation.export.tool_pose`: origin at the tip, +z the insertion direction (head ->
    tip); the body spans implant z in ``[-length_mm, 0]`` (see :func:`implant_ends`).
    """
    from workstation.export.tool_pose import trajectory_pose

    what = f"implant {name!r}"
    if sum(x is not None for x in (pose_lps, from_trajectory, head_lps if head_lps is not None else tip_lps)) != 1:
        raise InputError(f"{what}: give exactly one of a pose, a trajectory, or a head and a tip")
    if pose_lps is not None:
        pose = np.asarray(pose_lps, dtype=float)
    elif from_trajectory is not None:
        t = trajectory(case, from_trajectory)
        pose = trajectory_pose(t.entry_lps, t.target_lps)
    else:
        if head_lps is None or tip_lps is None:
            raise InputError(f"{what}: a head needs a tip and a tip a head")
        head, tip = np.asarray(head_lps, dtype=float).reshape(3), np.asarray(tip_lps, dtype=float).reshape(3)
        if not np.linalg.norm(tip - head) > 1e-6:
            raise InputError(f"{what}: head and tip coincide")
        pose = trajectory_pose(head, tip)
        length_mm = float(np.linalg.norm(tip - head)) if length_mm is None else length_mm
    if length_mm is None:
        raise InputError(f"{what}: length_mm is required unless a head and a tip give it")
    implant = _plan_item(Implant, what, name=name, kind=kind, pose_lps=pose, diameter_mm=float(diameter_mm),
                         length_mm=float(length_mm))
    case.set_plan(case.plan.with_item(implant))
    return implant


def implant_ends(implant: Implant) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(head, tip) of an implant placed by :func:`add_implant`, each (3,) LPS mm."""
    pose = np.asarray(implant.pose_lps, dtype=float)
    return pose[:3, 3] - implant.length_mm * pose[:3, 2], pose[:3, 3].copy()


def remove_item(case: Case, name: str) -> str:
    """Remove every plan item called ``name`` (and its safety record); returns the kinds removed."""
    data = case.plan.to_dict()
    kinds = [key for key in ("landmarks", "trajectories", "resection_planes", "implants", "measurements")
             if any(item["name"] == name for item in data[key])]
    if not kinds:
        have = ", ".join(item_names(case.plan)) or "nothing"
        raise InputError(f"plan item {name!r}: not in the plan; it has: {have}")
    for key in kinds:
        data[key] = [item for item in data[key] if item["name"] != name]
    case.set_plan(Plan.from_dict(data))
    for record in case.records_of("safety"):
        if record.name == name:
            case.remove_record(record.id)
    return ", ".join(kinds)


def item_names(plan: Plan) -> list[str]:
    return [item.name for key in ("landmarks", "trajectories", "resection_planes", "implants", "measurements")
            for item in getattr(plan, key)]


def trajectory(case: Case, name: str) -> Trajectory:
    for t in case.plan.trajectories:
        if t.name == name:
            return t
    raise InputError(f"trajectory {name!r}: not in the plan; trajectories: "
                     f"{', '.join(t.name for t in case.plan.trajectories) or 'none'}")


# ------------------------------------------------------------------------------------------------
# surfaces of segments
# ------------------------------------------------------------------------------------------------

def default_critical(case: Case, points_lps: Sequence[ArrayLike], *, volume_id: str | None = None) -> list[str]:
    """Every segment except enclosing ones (body, skin, bone) and those holding one of ``points_lps``
    (the target's own structure)."""
    label_map = segmented_label_map(case, volume_id)
    inv = np.linalg.inv(label_map.ijk_to_lps)
    held: set[int] = set()
    for point in points_lps:
        i, j, k = np.rint(inv[:3, :3] @ np.asarray(point, dtype=float) + inv[:3, 3]).astype(int)
        kk, jj, ii = label_map.array.shape
        if 0 <= i < ii and 0 <= j < jj and 0 <= k < kk:
            held.add(int(label_map.array[k, j, i]))
    return [s.name for s in label_map.segments if s.value not in held and s.name not in _CONTAINERS]


def safety_checker(case: Case, critical: Sequence[str], *, entry_surface: str | None = None,
                   volume_id: str | None = None, progress: ProgressCallback | None = None) -> SafetyChecker:
    """A :class:`SafetyChecker` for the named critical segments (surfaces built when absent)."""
    if not critical:
        raise InputError("--critical: no critical segment to check against")
    meshes = {name: segment_surface(case, name, volume_id=volume_id, progress=progress) for name in critical}
    entry = segment_surface(case, entry_surface, volume_id=volume_id) if entry_surface else None
    return SafetyChecker(meshes, entry_surface=entry)


# ------------------------------------------------------------------------------------------------
# safety
# ------------------------------------------------------------------------------------------------

def check_trajectory(case: Case, name: str, *, critical: Sequence[str] | None = None, margin_mm: float = 2.0,
                     entry_surface: str | None = None, volume_id: str | None = None,
                     checker: SafetyChecker | None = None, store: bool = True) -> TrajectorySafety:
    """Check trajectory ``name`` against critical segments and store the result as a safety record.

    ``critical`` defaults to :func:`default_critical` at the trajectory's target. Pass a prepared
    ``checker`` to check many trajectories (or many positions of one) without rebuilding the structures.
    """
    t = trajectory(case, name)
    if not np.isfinite(margin_mm):
        raise InputError(f"--margin-mm: must be a finite number, got {margin_mm}")
    if checker is None:
        names = list(critical) if critical else default_critical(case, [t.target_lps], volume_id=volume_id)
        checker = safety_checker(case, names, entry_surface=entry_surface, volume_id=volume_id)
    result = checker.check(t, margin_mm=margin_mm)
    if store:
        case.add_record(Record(kind="safety", name=t.name, meta=result.to_meta()), replace_same_name=True)
    return result


def check_plan(case: Case, *, critical: Sequence[str] | None = None, margin_mm: float = 2.0,
               entry_surface: str | None = None, volume_id: str | None = None) -> list[TrajectorySafety]:
    """:func:`check_trajectory` for every trajectory of the plan (one checker when ``critical`` is given)."""
    checker = safety_checker(case, critical, entry_surface=entry_surface, volume_id=volume_id) if critical else None
    return [check_trajectory(case, t.name, critical=critical, margin_mm=margin_mm, entry_surface=entry_surface,
                             volume_id=volume_id, checker=checker) for t in case.plan.trajectories]


def check_resection(case: Case, name: str, *, target: str | None = None, volume_id: str | None = None,
                    store: bool = True) -> ResectionAnalysis:
    """Volumes removed by resection plane ``name`` per segment and the margin to ``target``; stored as a
    safety record named after the plane."""
    plane = next((p for p in case.plan.resection_planes if p.name == name), None)
    if plane is None:
        raise InputError(f"resection plane {name!r}: not in the plan")
    label_map = segmented_label_map(case, volume_id)
    if target and target not in {s.name for s in label_map.segments}:
        raise InputError(f"--target-segment {target!r}: not in the label map")
    result = resection_analysis(plane, label_map, target=target)
    if store:
        case.add_record(Record(kind="safety", name=plane.name, meta=result.to_meta()), replace_same_name=True)
    return result


# ------------------------------------------------------------------------------------------------
# proposals
# ------------------------------------------------------------------------------------------------

def propose(case: Case, target_lps: ArrayLike, *, critical: Sequence[str] | None = None,
            entry_points_lps: ArrayLike | None = None, entry_sphere: tuple[ArrayLike, float] | None = None,
            entry_surface: str | None = None, tool_diameter_mm: float = 2.0, margin_mm: float = 2.0, top: int = 5,
            volume_id: str | None = None, progress: ProgressCallback | None = None) -> list[Proposal]:
    """Propose straight trajectories to ``target_lps`` ranked by clearance.

    The entry region is either explicit points (``entry_points_lps``) or a sphere ``(centre, radius_mm)``
    on the ``entry_surface`` segment's surface (e.g. the skin: ``"body"``).
    """
    if (entry_points_lps is None) == (entry_sphere is None):
        raise InputError("--entry-region: give either candidate points or a sphere on the entry surface")
    if entry_sphere is not None:
        if not entry_surface:
            raise InputError("--entry-surface: a sphere entry region needs the surface it lies on (e.g. body)")
        surface = segment_surface(case, entry_surface, volume_id=volume_id)
        entries = entry_points_in_sphere(surface, entry_sphere[0], float(entry_sphere[1]))
    else:
        entries = np.atleast_2d(np.asarray(entry_points_lps, dtype=float))
    names = list(critical) if critical else default_critical(case, [target_lps], volume_id=volume_id)
    checker = safety_checker(case, names, entry_surface=entry_surface, volume_id=volume_id)
    return propose_trajectories(target_lps, entries, checker, tool_diameter_mm=tool_diameter_mm,
                                margin_mm=margin_mm, top=top, progress=progress)


# ------------------------------------------------------------------------------------------------
# registration
# ------------------------------------------------------------------------------------------------

def read_points_file(path: str | os.PathLike[str], *, option: str = "points file") -> NDArray[np.float64]:
    """(N, 3) points from a CSV file: one ``x,y,z`` (mm) per line; blank lines and ``#`` comments skipped."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{option} {p}: cannot be read ({type(exc).__name__})") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [v for v in line.replace(";", ",").replace("\t", ",").split(",") if v.strip()]
        try:
            values = [float(v) for v in parts]
        except ValueError:
            values = []
        if len(values) != 3 or not all(np.isfinite(values)):
            raise InputError(f"{option} {p}: line {number} is not x,y,z in mm: {line[:60]!r}")
        rows.append(values)
    if not rows:
        raise InputError(f"{option} {p}: holds no points")
    return np.array(rows, dtype=float)


def register(case: Case, image_points_lps: ArrayLike, patient_points: ArrayLike, *,
             targets_lps: ArrayLike | None = None, fle_mm: float | None = None, to_frame: str = "patient"
             ) -> tuple[Registration, PairedPointResult]:
    """Paired-point rigid registration image (LPS mm) -> ``to_frame``, stored in the case.

    The registration replaces an earlier one with the same id (``image-to-patient`` or
    ``image-to-<to_frame>``); the FLE estimate and the targets go into an ``other`` record of the same name.
    """
    result = register_paired_points(image_points_lps, patient_points, targets=targets_lps, fle_mm=fle_mm,
                                    names=("--image-points", "--patient-points"))
    reg_id = REGISTRATION_ID if to_frame == "patient" else f"image-to-{to_frame}"
    registration = Registration(matrix=result.matrix, from_frame="image", to_frame=to_frame, fre_mm=result.fre_mm,
                                fre_per_point_mm=tuple(float(x) for x in result.fre_per_point_mm),
                                predicted_tre_mm=tuple(float(x) for x in result.predicted_tre_mm), id=reg_id,
                                kind="rigid")
    case.registrations.pop(reg_id, None)
    stored = case.add_registration(registration)
    targets = [] if targets_lps is None else np.atleast_2d(np.asarray(targets_lps, dtype=float)).tolist()
    case.add_record(Record(kind="other", name=f"registration {reg_id}", meta={
        "registration_id": stored.id, "method": "paired-point rigid (Arun SVD, reflection guarded)",
        "from_frame": "image", "to_frame": to_frame, "fre_mm": result.fre_mm,
        "fre_per_point_mm": result.fre_per_point_mm.tolist(), "fle_mm": result.fle_mm,
        "fle_source": result.fle_source, "targets_lps": targets,
        "predicted_tre_mm": result.predicted_tre_mm.tolist(),
        "tre_model": "Fitzpatrick-West-Maurer 1998", "n_fiducials": int(len(result.fre_per_point_mm))}),
        replace_same_name=True)
    return stored, result
