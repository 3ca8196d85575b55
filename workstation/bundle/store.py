"""Case bundles on disk: a folder (or a .zip of it) with a versioned JSON manifest.

Layout (every path relative to the bundle)::

    manifest.json                 schema_version, frame (LPS, mm), provenance, SHA-256 of every file
    volumes/<id>.<hash>.nrrd      volumes (NRRD, space left-posterior-superior)
    labels/<id>.<hash>.nrrd       label maps on their volume's grid
    meshes/<id>.<hash>.npz        surface meshes (vertices_lps, triangles)
    tetmeshes/<id>.<hash>.npz     tetrahedral meshes (points_lps, tets, region_ids)
    dicom/<id>.<hash>.json.gz     de-identified DICOM headers of each volume's source planes
    plan/plan.<hash>.json         the plan
    records/<id>.<hash>.npz       arrays of stored results (simulations, cameras, sessions, label-map
                                  edits); meta in the manifest

Data files are named by a hash of their content, so a save writes new files beside the old
ones and then replaces ``manifest.json`` atomically: a process killed mid-save leaves the
previous manifest, and with it the previous bundle, intact. Unreferenced files are removed
after the manifest is replaced.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from workstation import __version__
from workstation.bundle.checksums import sha256_file
from workstation.errors import DamagedBundleError, InputError, OutputError
from workstation.io.atomic import atomic_path, fsync_path, write_bytes_atomic
from workstation.io.volume_files import read_label_map, read_volume, write_image
from workstation.model.case import Case
from workstation.model.labelmap import LabelMap, Segment
from workstation.model.mesh import SurfaceMesh, TetMesh
from workstation.model.plan import Plan
from workstation.model.record import Record
from workstation.model.registration import Registration
from workstation.model.volume import SeriesIdentity, Volume
from workstation.progress import ProgressCallback, report

SCHEMA_VERSION = 1
FORMAT = "twin-case"
MANIFEST = "manifest.json"
DATA_FOLDERS = ("volumes", "labels", "meshes", "tetmeshes", "dicom", "plan", "records")


def _array_hash(*parts: Any) -> str:
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(str((part.dtype.str, part.shape)).encode())
            digest.update(np.ascontiguousarray(part).data)
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Writer:
    """Writes content-addressed data files into ``root``, skipping files already there."""

    def __init__(self, root: Path, previous: dict[str, Any]) -> None:
        self.root = root
        self.previous = previous
        self.files: dict[str, dict[str, Any]] = {}

    def put(self, rel: str, write: Any) -> str:
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not (target.is_file() and rel in self.previous):
            write(target)
        known = self.previous.get(rel)
        sha = known["sha256"] if known and target.is_file() else sha256_file(target)
        self.files[rel] = {"sha256": sha, "bytes": target.stat().st_size}
        return rel


def _write_npz(arrays: dict[str, np.ndarray]) -> Any:
    def write(target: Path) -> None:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        write_bytes_atomic(target, buffer.getvalue())
    return write


def _write_json_gz(payload: Any) -> Any:
    def write(target: Path) -> None:
        data = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        write_bytes_atomic(target, gzip.compress(data, compresslevel=6, mtime=0))
    return write


def _write_json(payload: Any) -> Any:
    def write(target: Path) -> None:
        write_bytes_atomic(target, json.dumps(payload, indent=1, sort_keys=True).encode())
    return write


def _manifest(case: Case, writer: _Writer, created: str | None,
              progress: ProgressCallback | None) -> dict[str, Any]:
    steps = len(case.volumes) + len(case.label_maps) + len(case.meshes) + len(case.tet_meshes) + len(case.records) + 1
    done = 0
    volumes = []
    for vid, volume in case.volumes.items():
        report(progress, done, steps, f"saving volume {vid}")
        h = _array_hash(volume.array, volume.ijk_to_lps)
        entry = volume.geometry_dict()
        entry.update(series=volume.series.to_dict(), provenance=volume.provenance,
                     file=writer.put(f"volumes/{vid}.{h}.nrrd",
                                     lambda t, v=volume: write_image(v.array, v.ijk_to_lps, t)))
        headers = case.source_headers.get(vid)
        if headers:
            entry["dicom_headers"] = writer.put(f"dicom/{vid}.{_array_hash(headers)}.json.gz",
                                                _write_json_gz({"headers": headers}))
        volumes.append(entry)
        done += 1
    label_maps = []
    for lid, lm in case.label_maps.items():
        report(progress, done, steps, f"saving label map {lid}")
        h = _array_hash(lm.array, lm.ijk_to_lps)
        label_maps.append({"id": lid, "name": lm.name, "source_volume_id": lm.source_volume_id,
                           "shape": list(lm.array.shape), "ijk_to_lps": lm.ijk_to_lps.tolist(),
                           "segments": [s.to_dict() for s in lm.segments], "provenance": lm.provenance,
                           "file": writer.put(f"labels/{lid}.{h}.nrrd",
                                              lambda t, m=lm: write_image(m.array, m.ijk_to_lps, t))})
        done += 1
    meshes = []
    for mid, mesh in case.meshes.items():
        arrays = {"vertices_lps": np.asarray(mesh.vertices_lps), "triangles": np.asarray(mesh.triangles)}
        meshes.append({"id": mid, "name": mesh.name, "segment": mesh.segment, "color_rgb": list(mesh.color_rgb),
                       "provenance": mesh.provenance, "n_vertices": mesh.n_vertices,
                       "n_triangles": mesh.n_triangles,
                       "file": writer.put(f"meshes/{mid}.{_array_hash(*arrays.values())}.npz", _write_npz(arrays))})
        done += 1
    tet_meshes = []
    for tid, tm in case.tet_meshes.items():
        arrays = {"points_lps": np.asarray(tm.points_lps), "tets": np.asarray(tm.tets),
                  "region_ids": np.asarray(tm.region_ids)}
        tet_meshes.append({"id": tid, "name": tm.name, "provenance": tm.provenance, "n_points": tm.n_points,
                           "n_tets": tm.n_tets,
                           "file": writer.put(f"tetmeshes/{tid}.{_array_hash(*arrays.values())}.npz",
                                              _write_npz(arrays))})
        done += 1
    records = []
    for rid, record in case.records.items():
        report(progress, done, steps, f"saving {record.kind} {record.name or rid}")
        entry = {"id": rid, "kind": record.kind, "name": record.name, "meta": record.meta,
                 "coordinate_system": record.coordinate_system}
        if record.arrays:
            entry["file"] = writer.put(f"records/{rid}.{_array_hash(*record.arrays.values(), list(record.arrays))}.npz",
                                       _write_npz(dict(record.arrays)))
        records.append(entry)
        done += 1
    plan = case.plan.to_dict()
    report(progress, steps, steps, "saving manifest")
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "coordinate_system": "LPS",
        "units": "mm",
        "name": case.name,
        "created_utc": created or _now(),
        "saved_utc": _now(),
        "software": {"name": "surgical-twin", "version": __version__},
        "deidentification": case.deidentification,
        "log": list(case.log),
        "volumes": volumes,
        "label_maps": label_maps,
        "meshes": meshes,
        "tet_meshes": tet_meshes,
        "registrations": [r.to_dict() for r in case.registrations.values()],
        "records": records,
        "plan": writer.put(f"plan/plan.{_array_hash(plan)}.json", _write_json(plan)),
        "files": dict(sorted(writer.files.items())),
    }


def _read_manifest(root: Path, label: str) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        raise InputError(f"{label}: not a case bundle (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DamagedBundleError(f"{label}: {MANIFEST} is damaged ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise InputError(f"{label}: {MANIFEST} is not a twin case manifest")
    version = manifest.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise InputError(f"{label}: case schema_version {version!r} is newer than this software reads "
                         f"({SCHEMA_VERSION}); upgrade surgical-twin")
    return manifest


def save_case(case: Case, path: str | os.PathLike[str], *, progress: ProgressCallback | None = None) -> Path:
    """Save ``case`` as a bundle folder, or a zip when ``path`` ends in ``.zip``; atomic either way.

    Raises :class:`OutputError` when ``path`` exists and is not a case bundle.
    """
    path = Path(path)
    if path.suffix.lower() == ".zip":
        return _save_zip(case, path, progress)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not (path / MANIFEST).is_file():
        raise OutputError(f"{path}: folder exists, is not empty and is not a case bundle; refusing to write there")
    if not path.parent.is_dir():
        raise OutputError(f"{path}: folder {path.parent} does not exist")
    if not (path / MANIFEST).is_file():
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        try:
            _write_into(case, tmp, {}, None, progress)
            if path.is_dir():
                path.rmdir()  # the empty folder the user made for it
            os.rename(tmp, path)
            fsync_path(path.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path
    previous = _read_manifest(path, str(path))
    _write_into(case, path, previous.get("files", {}), previous.get("created_utc"), progress)
    return path


def _write_into(case: Case, root: Path, previous_files: dict[str, Any], created: str | None,
                progress: ProgressCallback | None) -> None:
    writer = _Writer(root, previous_files)
    try:
        manifest = _manifest(case, writer, created, progress)
    except OSError as exc:
        raise OutputError(f"{root}: cannot write the case ({exc.strerror or exc})") from None
    with atomic_path(root / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    # The new manifest is in place: files only the old one referenced can go.
    for folder in DATA_FOLDERS:
        for file in (root / folder).glob("*") if (root / folder).is_dir() else []:
            rel = f"{folder}/{file.name}"
            if rel not in manifest["files"]:
                file.unlink(missing_ok=True)


def _save_zip(case: Case, path: Path, progress: ProgressCallback | None) -> Path:
    if path.exists() and not zipfile.is_zipfile(path):
        raise OutputError(f"{path}: exists and is not a zip case bundle")
    with tempfile.TemporaryDirectory(prefix="twin-case-") as tmp:
        root = Path(tmp) / "case"
        root.mkdir()
        _write_into(case, root, {}, None, progress)
        with atomic_path(path) as out, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
            for file in sorted(root.rglob("*")):
                if file.is_file():
                    zf.write(file, file.relative_to(root).as_posix())
    return path


def verify_bundle(root: Path, manifest: dict[str, Any], label: str) -> None:
    """Raise :class:`DamagedBundleError` naming the first missing or altered file."""
    for rel, info in manifest.get("files", {}).items():
        file = root / rel
        if not file.is_file():
            raise DamagedBundleError(f"{label}: file {rel} is missing")
        if sha256_file(file) != info.get("sha256"):
            raise DamagedBundleError(f"{label}: file {rel} is damaged (SHA-256 does not match the manifest)")


def load_case(path: str | os.PathLike[str], *, verify: bool = True) -> Case:
    """Load a case bundle (folder or .zip), checking every file's SHA-256 first."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such case")
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise InputError(f"{path}: not a case bundle (neither a folder nor a zip)")
        with tempfile.TemporaryDirectory(prefix="twin-case-") as tmp:
            try:
                with zipfile.ZipFile(path) as zf:
                    zf.extractall(tmp)
            except (zipfile.BadZipFile, OSError) as exc:
                raise DamagedBundleError(f"{path}: the zip is damaged ({exc})") from None
            return _load_root(Path(tmp), str(path), verify)
    return _load_root(path, str(path), verify)


def _load_root(root: Path, label: str, verify: bool) -> Case:
    manifest = _read_manifest(root, label)
    if verify:
        verify_bundle(root, manifest, label)
    case = Case(name=manifest.get("name", "case"), deidentification=manifest.get("deidentification", {}),
                log=list(manifest.get("log", [])))
    try:
        for entry in manifest.get("volumes", []):
            vol = read_volume(root / entry["file"], modality=entry.get("modality", "OT"))
            case.add_volume(Volume(array=vol.array, ijk_to_lps=vol.ijk_to_lps, modality=vol.modality,
                                   id=entry["id"], name=entry.get("name", ""),
                                   series=SeriesIdentity.from_dict(entry.get("series", {})),
                                   provenance=entry.get("provenance", {})))
            if entry.get("dicom_headers"):
                with gzip.open(root / entry["dicom_headers"], "rt", encoding="utf-8") as fh:
                    case.source_headers[entry["id"]] = json.load(fh)["headers"]
        for entry in manifest.get("label_maps", []):
            lm = read_label_map(root / entry["file"])
            case.add_label_map(LabelMap(array=lm.array, ijk_to_lps=lm.ijk_to_lps, id=entry["id"],
                                        name=entry.get("name", ""),
                                        segments=tuple(Segment.from_dict(s) for s in entry.get("segments", [])),
                                        source_volume_id=entry.get("source_volume_id", ""),
                                        provenance=entry.get("provenance", {})))
        for entry in manifest.get("meshes", []):
            with np.load(root / entry["file"]) as npz:
                case.add_mesh(SurfaceMesh(vertices_lps=npz["vertices_lps"], triangles=npz["triangles"],
                                          id=entry["id"], name=entry.get("name", ""),
                                          segment=entry.get("segment", ""),
                                          color_rgb=tuple(entry.get("color_rgb", (0.9, 0.8, 0.6))),
                                          provenance=entry.get("provenance", {})))
        for entry in manifest.get("tet_meshes", []):
            with np.load(root / entry["file"]) as npz:
                case.add_tet_mesh(TetMesh(points_lps=npz["points_lps"], tets=npz["tets"],
                                          region_ids=npz["region_ids"], id=entry["id"],
                                          name=entry.get("name", ""), provenance=entry.get("provenance", {})))
        for entry in manifest.get("registrations", []):
            case.add_registration(Registration.from_dict(entry))
        for entry in manifest.get("records", []):
            arrays: dict[str, np.ndarray] = {}
            if entry.get("file"):
                with np.load(root / entry["file"]) as npz:
                    arrays = {key: npz[key] for key in npz.files}
            case.add_record(Record(kind=entry["kind"], meta=entry.get("meta", {}), arrays=arrays, id=entry["id"],
                                   name=entry.get("name", ""),
                                   coordinate_system=entry.get("coordinate_system", "LPS")))
        if manifest.get("plan"):
            case.set_plan(Plan.from_dict(json.loads((root / manifest["plan"]).read_text(encoding="utf-8"))))
    except (KeyError, ValueError, OSError) as exc:
        raise DamagedBundleError(f"{label}: manifest and files disagree ({type(exc).__name__}: {exc})") from None
    return case


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a bundle folder or zip, without loading (or verifying) its data."""
    path = Path(path)
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            try:
                data = zf.read(MANIFEST)
            except KeyError:
                raise InputError(f"{path}: not a case bundle (no {MANIFEST})") from None
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / MANIFEST).write_bytes(data)
            return _read_manifest(Path(tmp), str(path))
    if not path.exists():
        raise InputError(f"{path}: no such case")
    return _read_manifest(path, str(path))
