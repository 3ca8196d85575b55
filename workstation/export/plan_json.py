"""The versioned, verifiable JSON plan: what leaves the workstation to drive a robot.

A plan document holds every planned item in one named frame (the image's LPS frame, or the
frame a registration maps it to), the registration with its errors, the de-identified source
image identity, the software version and a SHA-256 ``digest``; optionally an HMAC-SHA256
``signature`` made with a site key. Digest and signature cover the canonical JSON of the whole
document except ``digest`` and ``signature``: ``json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=True, allow_nan=False)``. Floats are written with Python's shortest round-trip
``repr``, so ``json.loads`` then ``json.dumps`` gives back the same canonical bytes.

The JSON Schema (draft 2020-12) is ``workstation/export/schemas/plan.schema.json``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from workstation import __version__
from workstation.errors import InputError
from workstation.export.tool_pose import TOOL_AXIS_CONVENTION, trajectory_pose
from workstation.geometry import apply_affine
from workstation.io.atomic import write_text_atomic
from workstation.model import Case, Plan, Registration
from workstation.model.plan import Implant, Landmark, Measurement, ResectionPlane, Trajectory

FORMAT_NAME = "surgical-twin-plan"
SCHEMA_VERSION = 1
IMAGE_FRAME = "image_lps"
SOFTWARE_NAME = "surgical-twin"
MIN_KEY_BYTES = 16
SCHEMA_PATH = Path(__file__).with_name("schemas") / "plan.schema.json"
_GEOMETRY_TOLERANCE_MM = 1e-6


# ---------------------------------------------------------------------------------------------- helpers
def canonical_bytes(document: dict[str, Any]) -> bytes:
    """Canonical JSON (sorted keys, compact, ASCII) of ``document`` without digest and signature."""
    payload = {k: v for k, v in document.items() if k not in ("digest", "signature")}
    try:
        return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                          allow_nan=False).encode("ascii")
    except ValueError as exc:
        raise InputError(f"plan: cannot be written as canonical JSON ({exc})") from exc


def digest_of(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(document)).hexdigest()


def key_id_of(key: bytes) -> str:
    """First 16 hex digits of the key's SHA-256: names the key without revealing it."""
    return hashlib.sha256(key).hexdigest()[:16]


def signature_of(document: dict[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical_bytes(document), hashlib.sha256).hexdigest()


def load_site_key(path: str | os.PathLike[str]) -> bytes:
    """The raw bytes of a site key file (at least 16 bytes)."""
    path = Path(path)
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the key file ({exc.strerror or exc})") from exc
    if len(key) < MIN_KEY_BYTES:
        raise InputError(f"{path}: a site key must hold at least {MIN_KEY_BYTES} bytes, this one has {len(key)}")
    return key


@lru_cache(maxsize=1)
def plan_schema() -> dict[str, Any]:
    """The plan's JSON Schema (draft 2020-12)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(plan_schema())


def _vec(values: ArrayLike) -> list[float]:
    return [float(x) for x in np.asarray(values, dtype=float).reshape(-1)]


def _mat(matrix: ArrayLike) -> list[list[float]]:
    return [[float(x) for x in row] for row in np.asarray(matrix, dtype=float)]


# ---------------------------------------------------------------------------------------------- export
def _choose_registration(case: Case, registration_id: str | None) -> Registration | None:
    if registration_id is not None:
        if registration_id not in case.registrations:
            raise InputError(f"--registration {registration_id!r}: not in the case; it holds "
                             f"{sorted(case.registrations) or 'none'}")
        return case.registrations[registration_id]
    return list(case.registrations.values())[-1] if case.registrations else None


def _source_image(case: Case, volume_id: str | None) -> dict[str, Any] | None:
    if not case.volumes:
        return None
    try:
        volume = case.volume(volume_id)
    except KeyError as exc:
        raise InputError(f"--volume {volume_id!r}: {exc.args[0]}") from exc
    series = volume.series.to_dict()
    deid = case.deidentification
    return {
        "volume_id": volume.id,
        "modality": volume.modality,
        "study_instance_uid": series["study_instance_uid"],
        "series_instance_uid": series["series_instance_uid"],
        "frame_of_reference_uid": series["frame_of_reference_uid"],
        "series_number": series["series_number"],
        "series_description": series["series_description"],
        "deidentified": bool(deid.get("deidentified", False)),
        "deidentification_method": str(deid.get("method", "unknown")),
        "shape_kji": [int(n) for n in volume.shape],
        "spacing_mm": _vec(volume.spacing_mm),
        "origin_lps": _vec(volume.origin_lps),
        "ijk_to_lps": _mat(volume.ijk_to_lps),
        "coordinate_system": "LPS",
    }


def _registration_entry(registration: Registration) -> dict[str, Any]:
    return {
        "id": registration.id,
        "kind": registration.kind,
        "from_frame": registration.from_frame,
        "to_frame": registration.to_frame,
        "matrix": _mat(registration.matrix),
        "matrix_maps": "from_frame points (mm) to to_frame points (mm): p_to = matrix @ [p_from, 1]",
        "fre_mm": None if registration.fre_mm is None else float(registration.fre_mm),
        "fre_per_point_mm": [float(x) for x in registration.fre_per_point_mm],
        "predicted_tre_mm": [float(x) for x in registration.predicted_tre_mm],
    }


def _plan_items(plan: Plan, to_frame: NDArray[np.float64]) -> dict[str, list[dict[str, Any]]]:
    """Plan items with every point and direction mapped by the rigid ``to_frame`` (4x4)."""
    rotation = to_frame[:3, :3]
    identity = bool(np.array_equal(to_frame, np.eye(4)))

    def point(p: ArrayLike) -> list[float]:
        # The image frame keeps the plan's own floats bit for bit.
        return _vec(p) if identity else _vec(apply_affine(to_frame, np.asarray(p, dtype=float)))

    trajectories = []
    for t in plan.trajectories:
        entry, target = point(t.entry_lps), point(t.target_lps)
        trajectories.append({"name": t.name, "entry_mm": entry, "target_mm": target,
                             "tool_diameter_mm": float(t.tool_diameter_mm),
                             "length_mm": float(np.linalg.norm(np.subtract(target, entry))),
                             "pose": _mat(trajectory_pose(entry, target))})
    implants = [{"name": i.name, "kind": i.kind, "pose": _mat(to_frame @ np.asarray(i.pose_lps, dtype=float)),
                 "diameter_mm": float(i.diameter_mm), "length_mm": float(i.length_mm)} for i in plan.implants]
    landmarks = [{"name": lm.name, "position_mm": point(lm.position_lps)} for lm in plan.landmarks]
    planes = [{"name": p.name, "origin_mm": point(p.origin_lps), "normal": _vec(rotation @ np.asarray(p.normal_lps)),
               "kept_side": int(p.kept_side)} for p in plan.resection_planes]
    measurements = [{"name": m.name, "kind": m.kind, "points_mm": [point(p) for p in m.points_lps],
                     "value": float(m.value), "value_unit": "mm" if m.kind == "distance" else "deg"}
                    for m in plan.measurements]
    return {"trajectories": trajectories, "implants": implants, "landmarks": landmarks,
            "resection_planes": planes, "measurements": measurements}


def build_plan_document(case: Case, *, frame: str = "image", registration_id: str | None = None,
                        volume_id: str | None = None, created_utc: str | None = None) -> dict[str, Any]:
    """The plan of ``case`` as a JSON-ready document with its digest (not signed).

    Parameters
    ----------
    case : the case whose ``plan`` is exported (LPS mm).
    frame : ``"image"`` writes coordinates in the image LPS frame; ``"robot"`` maps them with the
        case's registration (``registration_id``, default the last added) into its ``to_frame``.
    volume_id : the volume whose de-identified series identity is recorded (default the first).
    created_utc : ISO 8601 time stamp (default now).
    """
    if frame not in ("image", "robot"):
        raise InputError(f"--frame {frame!r}: expected 'image' or 'robot'")
    registration = _choose_registration(case, registration_id)
    to_frame = np.eye(4)
    frame_entry = {"name": IMAGE_FRAME, "coordinate_system": "LPS",
                   "description": "patient LPS frame of the de-identified source image (x to the patient's left, "
                                  "y posterior, z superior), millimetres"}
    if frame == "robot":
        if registration is None:
            raise InputError(f"--frame robot: case {case.name!r} holds no registration; run `twin register` first "
                             "or export with --frame image")
        if registration.kind != "rigid":
            raise InputError(f"--frame robot: registration {registration.id!r} is {registration.kind}, "
                             "a robot frame needs a rigid one")
        to_frame = np.asarray(registration.matrix, dtype=float)
        frame_entry = {"name": registration.to_frame, "coordinate_system": "registered",
                       "description": f"frame {registration.to_frame!r} reached from {registration.from_frame!r} "
                                      f"by registration {registration.id!r}, millimetres"}
    document: dict[str, Any] = {
        "format": FORMAT_NAME,
        "schema_version": SCHEMA_VERSION,
        "created_utc": created_utc or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "software": {"name": SOFTWARE_NAME, "version": __version__},
        "units": {"length": "mm", "angle": "deg"},
        "coordinate_frame": frame_entry,
        "image_frame": {"name": IMAGE_FRAME, "coordinate_system": "LPS"},
        "registration": None if registration is None else _registration_entry(registration),
        "tool_axis_convention": TOOL_AXIS_CONVENTION,
        "source_image": _source_image(case, volume_id),
        "case_name": case.name,
        **_plan_items(case.plan, to_frame),
    }
    document["digest"] = {"algorithm": "sha256", "value": digest_of(document)}
    return document


def sign_document(document: dict[str, Any], key: bytes) -> dict[str, Any]:
    """A copy of ``document`` with a fresh digest and an HMAC-SHA256 ``signature`` made with ``key``."""
    if len(key) < MIN_KEY_BYTES:
        raise InputError(f"site key: at least {MIN_KEY_BYTES} bytes needed, got {len(key)}")
    signed = {k: v for k, v in document.items() if k not in ("digest", "signature")}
    signed["digest"] = {"algorithm": "sha256", "value": digest_of(signed)}
    signed["signature"] = {"algorithm": "hmac-sha256", "key_id": key_id_of(key), "value": signature_of(signed, key)}
    return signed


_NUMBER_ARRAY = re.compile(r"\[\s*(-?[0-9][-+0-9.eE]*(?:,\s*-?[0-9][-+0-9.eE]*)*)\s*\]")


def plan_json_text(document: dict[str, Any]) -> str:
    """The file text: indented, sorted keys, ASCII, number arrays on one line (the digest does not
    depend on layout: it is computed on the canonical form)."""
    text = json.dumps(document, indent=1, sort_keys=True, ensure_ascii=True, allow_nan=False)
    return _NUMBER_ARRAY.sub(lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text) + "\n"


def write_plan(document: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``document`` atomically to ``path``."""
    write_text_atomic(path, plan_json_text(document))


def export_plan(case: Case, path: str | os.PathLike[str], *, frame: str = "image", key: bytes | None = None,
                registration_id: str | None = None, volume_id: str | None = None) -> dict[str, Any]:
    """Build, optionally sign, check against the schema and write the plan; returns the document."""
    document = build_plan_document(case, frame=frame, registration_id=registration_id, volume_id=volume_id)
    if key is not None:
        document = sign_document(document, key)
    problem = schema_problem(document)
    if problem:
        raise InputError(f"plan of case {case.name!r} does not satisfy the plan schema: {problem}")
    write_plan(document, path)
    return document


# ---------------------------------------------------------------------------------------------- verify
@dataclass(frozen=True)
class PlanVerification:
    """Outcome of :func:`verify_plan`; ``verified`` is True only when every applicable check passed.

    ``signature`` is one of ``"valid"``, ``"invalid"``, ``"absent"``, ``"not verified (no key)"``,
    ``"not checked"``.
    """

    verified: bool
    reason: str
    schema_ok: bool | None = None
    digest_ok: bool | None = None
    geometry_ok: bool | None = None
    signature: str = "not checked"
    key_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def schema_problem(document: Any) -> str | None:
    """None when ``document`` satisfies the plan schema, else a one-line description of the first problem."""
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(document))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    message = " ".join(error.message.split())
    return f"{where}: {message[:200]}"


def geometry_problem(document: dict[str, Any]) -> str | None:
    """None when each trajectory's pose and length agree with its entry and target (the stated convention)."""
    for t in document.get("trajectories", []):
        expected = trajectory_pose(t["entry_mm"], t["target_mm"])
        if not np.allclose(np.asarray(t["pose"], dtype=float), expected, rtol=0, atol=_GEOMETRY_TOLERANCE_MM):
            return f"trajectory {t['name']!r}: pose does not match entry/target under the tool-axis convention"
        if abs(float(np.linalg.norm(np.subtract(t["target_mm"], t["entry_mm"]))) - t["length_mm"]) > 1e-6:
            return f"trajectory {t['name']!r}: length_mm does not match entry/target"
    return None


def _parse_plan_text(text: str, source: str) -> tuple[dict[str, Any], list[str]]:
    """The document and the numbers whose spelling is not Python's shortest round-trip ``repr``.

    The exporter writes every float with ``repr``; another spelling of a number (such as a changed
    17th digit that parses to the same double) means the file text was edited.
    """
    odd: list[str] = []

    def parse_float(token: str) -> float:
        value = float(token)
        if repr(value) != token:
            odd.append(token)
        return value

    try:
        document = json.loads(text, parse_float=parse_float, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        raise InputError(f"{source}: not valid JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise InputError(f"{source}: a plan must be a JSON object")
    return document, odd


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text") from exc


def read_plan_document(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a plan file (InputError when unreadable or not a JSON object)."""
    return _parse_plan_text(_read_text(Path(path)), str(path))[0]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def verify_plan(plan: str | os.PathLike[str] | dict[str, Any], key: bytes | None = None) -> PlanVerification:
    """Check a plan's schema, digest, geometry and signature.

    ``plan`` is a path or a parsed document; from a path, a number spelled otherwise than the
    exporter's ``repr`` also counts as a change. Without ``key`` a signed plan is NOT verified
    (its signature cannot be checked) and an unsigned plan is verified on schema, digest and
    geometry only. With ``key`` the plan must be
    signed with that key. Unreadable files raise :class:`InputError`; every other failure is a
    result with ``verified=False`` and a one-line ``reason``.
    """
    if isinstance(plan, dict):
        document, odd_numbers = plan, []
    else:
        document, odd_numbers = _parse_plan_text(_read_text(Path(plan)), str(plan))
    problem = schema_problem(document)
    if problem:
        return PlanVerification(False, f"schema: {problem}", schema_ok=False)
    if not hmac.compare_digest(digest_of(document), str(document["digest"]["value"])):
        return PlanVerification(False, "digest mismatch: the plan was changed after export", schema_ok=True,
                                digest_ok=False)
    if odd_numbers:
        return PlanVerification(False, f"the file text was changed: number {odd_numbers[0]!r} is not written as the "
                                       "exporter writes it", schema_ok=True, digest_ok=False)
    problem = geometry_problem(document)
    if problem:
        return PlanVerification(False, f"geometry: {problem}", schema_ok=True, digest_ok=True, geometry_ok=False)
    checked = {"schema_ok": True, "digest_ok": True, "geometry_ok": True}
    signature = document.get("signature")
    if signature is None:
        if key is not None:
            return PlanVerification(False, "the plan is not signed, but a key was given: its origin cannot be "
                                           "confirmed", signature="absent", key_id=key_id_of(key), **checked)
        return PlanVerification(True, "unsigned plan: schema, digest and geometry ok (integrity only, no signature)",
                                signature="absent", **checked)
    if key is None:
        return PlanVerification(False, f"signed plan (key_id {signature['key_id']}) but no key given: signature "
                                       "not verified", signature="not verified (no key)",
                                key_id=signature["key_id"], **checked)
    if not hmac.compare_digest(signature["key_id"], key_id_of(key)):
        return PlanVerification(False, f"signed with another key (key_id {signature['key_id']}, given key "
                                       f"{key_id_of(key)})", signature="invalid", key_id=signature["key_id"],
                                **checked)
    if not hmac.compare_digest(signature_of(document, key), str(signature["value"])):
        return PlanVerification(False, "signature mismatch: the plan or its signature was changed",
                                signature="invalid", key_id=signature["key_id"], **checked)
    return PlanVerification(True, f"signed plan verified: schema, digest, geometry and signature (key_id "
                                  f"{signature['key_id']}) ok", signature="valid", key_id=signature["key_id"],
                            **checked)


# ---------------------------------------------------------------------------------------------- import
def plan_from_document(document: dict[str, Any]) -> Plan:
    """The :class:`Plan` (image LPS mm) a document describes; robot-frame documents are mapped back
    with the inverse of their registration. Does not verify: call :func:`verify_plan` first."""
    problem = schema_problem(document)
    if problem:
        raise InputError(f"plan: {problem}")
    to_image = np.eye(4)
    if document["coordinate_frame"]["name"] != IMAGE_FRAME:
        registration = document.get("registration")
        if not registration or registration["to_frame"] != document["coordinate_frame"]["name"]:
            raise InputError(f"plan: frame {document['coordinate_frame']['name']!r} has no registration back to "
                             "the image frame")
        to_image = np.linalg.inv(np.asarray(registration["matrix"], dtype=float))
    rotation = to_image[:3, :3]

    def point(p: ArrayLike) -> NDArray[np.float64]:
        return apply_affine(to_image, np.asarray(p, dtype=float))

    try:
        return Plan(
            trajectories=tuple(Trajectory(t["name"], point(t["entry_mm"]), point(t["target_mm"]),
                                          tool_diameter_mm=t["tool_diameter_mm"]) for t in document["trajectories"]),
            implants=tuple(Implant(i["name"], i["kind"], to_image @ np.asarray(i["pose"], dtype=float),
                                   i["diameter_mm"], i["length_mm"]) for i in document["implants"]),
            landmarks=tuple(Landmark(lm["name"], point(lm["position_mm"])) for lm in document["landmarks"]),
            resection_planes=tuple(ResectionPlane(p["name"], point(p["origin_mm"]), rotation @ np.asarray(p["normal"]),
                                                  kept_side=p["kept_side"]) for p in document["resection_planes"]),
            measurements=tuple(Measurement(m["name"], m["kind"], tuple(point(q) for q in m["points_mm"]))
                               for m in document["measurements"]),
        )
    except ValueError as exc:
        raise InputError(f"plan: {exc}") from exc
