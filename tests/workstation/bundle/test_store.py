"""Case bundles: round trip, checksums, atomic saves (also when the process is killed), zip form."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from workstation.bundle import load_case, read_manifest, save_case
from workstation.errors import DamagedBundleError, InputError, OutputError
from workstation.model import (
    Case,
    LabelMap,
    Plan,
    Record,
    Registration,
    Segment,
    SurfaceMesh,
    TetMesh,
    Trajectory,
    Volume,
)


def make_case(seed: int = 0) -> Case:
    rng = np.random.default_rng(seed)
    case = Case(name="phantom")
    direction = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    direction *= np.sign(np.linalg.det(direction))
    vol = case.add_volume(Volume.from_geometry(rng.integers(-1000, 1000, (5, 6, 7)).astype(np.int16),
                                               spacing_mm=[0.7, 0.8, 2.5], origin_lps=[-10, 20, 300],
                                               direction=direction, modality="CT", name="ct"))
    case.source_headers[vol.id] = [{"00080060": {"vr": "CS", "Value": ["CT"]}}]
    case.add_label_map(LabelMap(array=(vol.array > 0).astype(np.uint8), ijk_to_lps=vol.ijk_to_lps,
                                segments=(Segment(1, "bone", (0.9, 0.9, 0.8)),), name="labels",
                                source_volume_id=vol.id))
    case.add_mesh(SurfaceMesh(vertices_lps=rng.normal(size=(4, 3)), triangles=[[0, 1, 2], [0, 2, 3]], name="m"))
    case.add_tet_mesh(TetMesh(points_lps=[[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], tets=[[0, 1, 2, 3]],
                              region_ids=[5], name="t"))
    case.add_registration(Registration(matrix=np.eye(4), fre_mm=0.4, predicted_tre_mm=(0.7,)))
    case.set_plan(Plan().with_item(Trajectory("t1", (0, 0, 0), (10, 0, 0), tool_diameter_mm=3)))
    case.add_record(Record(kind="simulation", name="push", meta={"max_displacement_mm": 1.5},
                           arrays={"displacement_mm": rng.normal(size=(4, 3))}))
    case.add_record(Record(kind="camera", name="view", meta={"position_lps": [0, -500, 0]}))
    case.log.append("made by a test")
    return case


def assert_same(a: Case, b: Case) -> None:
    assert list(a.volumes) == list(b.volumes)
    for vid in a.volumes:
        np.testing.assert_array_equal(a.volumes[vid].array, b.volumes[vid].array)
        np.testing.assert_allclose(a.volumes[vid].ijk_to_lps, b.volumes[vid].ijk_to_lps, atol=1e-9)
        assert a.volumes[vid].array.dtype == b.volumes[vid].array.dtype
    for lid in a.label_maps:
        np.testing.assert_array_equal(a.label_maps[lid].array, b.label_maps[lid].array)
        assert a.label_maps[lid].segments == b.label_maps[lid].segments
    for mid in a.meshes:
        np.testing.assert_array_equal(a.meshes[mid].vertices_lps, b.meshes[mid].vertices_lps)
    for tid in a.tet_meshes:
        np.testing.assert_array_equal(a.tet_meshes[tid].region_ids, b.tet_meshes[tid].region_ids)
    assert a.plan == b.plan
    assert [r.fre_mm for r in a.registrations.values()] == [r.fre_mm for r in b.registrations.values()]
    assert a.source_headers == b.source_headers and a.log == b.log
    assert list(a.records) == list(b.records)
    for rid, record in a.records.items():
        other = b.records[rid]
        assert (record.kind, record.name, record.meta) == (other.kind, other.name, other.meta)
        assert record.arrays.keys() == other.arrays.keys()
        for key in record.arrays:
            np.testing.assert_array_equal(record.arrays[key], other.arrays[key])


@pytest.mark.parametrize("suffix", ["", ".zip"])
def test_round_trip_folder_and_zip(tmp_path: Path, suffix: str) -> None:
    case = make_case()
    path = save_case(case, tmp_path / f"case{suffix}")
    assert_same(case, load_case(path))
    manifest = read_manifest(path)
    assert manifest["schema_version"] == 1 and manifest["coordinate_system"] == "LPS"
    assert manifest["software"]["name"] == "surgical-twin"
    assert all(len(info["sha256"]) == 64 for info in manifest["files"].values())


def test_update_replaces_and_cleans_files(tmp_path: Path) -> None:
    path = save_case(make_case(0), tmp_path / "case")
    first = set(read_manifest(path)["files"])
    second_case = make_case(1)
    save_case(second_case, path)
    files = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()} - {"manifest.json"}
    assert files == set(read_manifest(path)["files"])
    assert files != first
    assert_same(second_case, load_case(path))


def test_damaged_and_missing_files_are_named(tmp_path: Path) -> None:
    path = save_case(make_case(), tmp_path / "case")
    volume_file = next((path / "volumes").iterdir())
    data = bytearray(volume_file.read_bytes())
    data[-10] ^= 0xFF
    volume_file.write_bytes(bytes(data))
    with pytest.raises(DamagedBundleError, match=f"volumes/{volume_file.name} is damaged"):
        load_case(path)
    volume_file.unlink()
    with pytest.raises(DamagedBundleError, match="is missing"):
        load_case(path)


def test_refuses_non_bundles_and_newer_schema(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    with pytest.raises(OutputError, match="not a case bundle"):
        save_case(make_case(), other)
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    with pytest.raises(InputError, match="not a case bundle"):
        load_case(other)
    path = save_case(make_case(), tmp_path / "case")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["schema_version"] = 99
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="newer"):
        load_case(path)


def test_failed_save_leaves_previous_bundle_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = make_case(0)
    path = save_case(original, tmp_path / "case")
    import workstation.bundle.store as store

    def explode(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "write_image", explode)
    with pytest.raises(OutputError, match="cannot write"):
        save_case(make_case(1), path)
    assert_same(original, load_case(path))
    with pytest.raises(OutputError):
        save_case(make_case(1), tmp_path / "new-case")
    assert not (tmp_path / "new-case").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case"]


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, sys.argv[3])
    import workstation.bundle.store as store
    from tests.workstation.bundle.test_store import make_case
    stage = sys.argv[1]
    real_atomic, real_write = store.atomic_path, store.write_image
    def killing_atomic(target):
        if stage == "manifest" and str(target).endswith("manifest.json"):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_atomic(target)
    def killing_write(array, affine, target, **kw):
        real_write(array, affine, target, **kw)
        if stage == "data":
            os.kill(os.getpid(), signal.SIGKILL)
    store.atomic_path, store.write_image = killing_atomic, killing_write
    store.save_case(make_case(1), sys.argv[2])
""")


@pytest.mark.parametrize("stage", ["data", "manifest"])
def test_process_killed_mid_save_leaves_previous_bundle(tmp_path: Path, stage: str) -> None:
    original = make_case(0)
    path = save_case(original, tmp_path / "case")
    root = str(Path(__file__).resolve().parents[3])
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, stage, str(path), root], capture_output=True,
                          text=True, cwd=root)
    assert proc.returncode == -9, proc.stderr
    assert_same(original, load_case(path))
    # A new bundle killed mid-save never appears under its name.
    new = tmp_path / "fresh"
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, stage, str(new), root], capture_output=True,
                          text=True, cwd=root)
    assert proc.returncode == -9 and not new.exists()
