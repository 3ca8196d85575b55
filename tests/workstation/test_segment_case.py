"""Segmentation through the twin command: presets, seeds, import/export, meshes, statistics, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workstation.bundle import load_case
from workstation.io.volume_files import read_label_map, write_image, write_volume
from workstation.model import Volume

TWIN = [sys.executable, "-m", "workstation.cli.main"]
SPACING = (0.8, 0.8, 1.5)


def twin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TWIN, *args], capture_output=True, text=True, timeout=300)


def phantom() -> Volume:
    """A CT-like phantom: soft-tissue body, a bone (cortex + marrow) and a contrast vessel, in air."""
    shape = (40, 80, 90)
    vol = Volume.from_geometry(np.full(shape, -1000, np.int16), spacing_mm=SPACING, origin_lps=(-36, -32, -30),
                               modality="CT")
    k, j, i = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    lps = vol.ijk_to_lps_points(np.stack([i, j, k], -1))
    x, y = lps[..., 0], lps[..., 1]
    hu = np.where((x / 30) ** 2 + (y / 26) ** 2 <= 1, 40, -1000)
    r_bone = np.hypot(x - 8, y - 5)
    hu = np.where(r_bone <= 7, 250, hu)
    hu = np.where((r_bone <= 9) & (r_bone > 7), 900, hu)
    hu = np.where(np.hypot(x + 12, y + 8) <= 4, 220, hu)
    rng = np.random.default_rng(0)
    return vol.with_array((hu + rng.normal(0, 8, shape)).astype(np.int16))


@pytest.fixture()
def case(tmp_path: Path) -> Path:
    write_volume(phantom(), tmp_path / "ct.nii.gz")
    out = tmp_path / "case"
    proc = twin("import", str(tmp_path / "ct.nii.gz"), "-o", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    return out


def test_preset_labels_stats_and_mesh(case: Path, tmp_path: Path) -> None:
    proc = twin("segment", str(case), "--preset", "bone")
    assert proc.returncode == 0, proc.stderr
    proc = twin("segment", str(case), "--preset", "vessels_contrast", "--name", "vessel", "--point", "-12,-8,0")
    assert proc.returncode == 0, proc.stderr
    assert twin("labels", str(case), "-o", str(tmp_path / "labels.nrrd")).returncode == 0
    vol = phantom()
    labels = read_label_map(tmp_path / "labels.nrrd")
    assert labels.array.shape == vol.shape and np.allclose(labels.ijk_to_lps, vol.ijk_to_lps, atol=1e-4)
    k, j, i = np.meshgrid(*(np.arange(n) for n in vol.shape), indexing="ij")
    lps = vol.ijk_to_lps_points(np.stack([i, j, k], -1))
    bone_truth = np.hypot(lps[..., 0] - 8, lps[..., 1] - 5) <= 9
    vessel_truth = np.hypot(lps[..., 0] + 12, lps[..., 1] + 8) <= 4
    bone, vessel = labels.array == 1, labels.array == 2
    assert 2 * (bone & bone_truth).sum() / (bone.sum() + bone_truth.sum()) > 0.95
    assert 2 * (vessel & vessel_truth).sum() / (vessel.sum() + vessel_truth.sum()) > 0.9
    stats = json.loads(twin("stats", str(case), "--json").stdout)
    by_name = {s["name"]: s for s in stats["segments"]}
    assert by_name["bone"]["volume_ml"] == pytest.approx(np.pi * 81 * 60 / 1000, rel=0.06)
    assert by_name["vessel"]["mean"] == pytest.approx(220, abs=15)
    assert stats["units"]["mean, std, min, max"].startswith("HU") and stats["units"]["volume_ml"] == "ml"
    proc = twin("mesh", str(case), "--segment", "bone", "--format", "stl", "-o", str(tmp_path / "bone.stl"))
    assert proc.returncode == 0, proc.stderr
    assert "watertight=True" in proc.stdout
    import trimesh

    mesh = trimesh.load(tmp_path / "bone.stl", force="mesh")
    assert mesh.is_watertight
    assert abs(mesh.volume / 1000 - by_name["bone"]["volume_ml"]) / by_name["bone"]["volume_ml"] < 0.03
    assert len(load_case(case).meshes) == 1  # the derived surface is kept in the case


def test_seeds_with_sidecar_names_and_import(case: Path, tmp_path: Path) -> None:
    vol = phantom()
    seeds = np.zeros(vol.shape, np.uint8)
    ijk = np.rint(vol.lps_to_ijk_points([[8, 5, 0], [-12, -8, 0], [20, -15, 0], [-20, 15, 0]])).astype(int)
    for value, (i, j, k) in zip((7, 9, 200, 200), ijk, strict=True):
        seeds[k - 1:k + 2, j - 1:j + 2, i - 1:i + 2] = value
    write_image(seeds, vol.ijk_to_lps, tmp_path / "seeds.nii.gz")
    (tmp_path / "seeds.json").write_text(json.dumps({"7": "marrow", "9": "vessel"}))
    proc = twin("segment", str(case), "--seeds", str(tmp_path / "seeds.nii.gz"), "--background", "200")
    assert proc.returncode == 0, proc.stderr
    labels = load_case(case).label_maps["ct-labels"]
    assert {s.name: s.value for s in labels.segments} == {"marrow": 7, "vessel": 9}
    assert 200 not in labels.array
    imported = np.zeros(vol.shape, np.uint8)
    imported[:5] = 3
    write_image(imported, vol.ijk_to_lps, tmp_path / "other.nii.gz")
    assert twin("segment", str(case), "--import", str(tmp_path / "other.nii.gz")).returncode == 0
    names = {s.name for s in load_case(case).label_maps["ct-labels"].segments}
    assert names == {"marrow", "vessel", "label_3"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--preset", "unicorn"), "unknown"),
        (("--preset", "bone", "--seeds", "x.nrrd"), "exactly one"),
        (("--seeds", "SEEDS"), "needs --background"),
        (("--seeds", "SEEDS", "--background", "99"), "no seed has that value"),
        (("--preset", "bone", "--point", "500,500,500"), "outside the volume"),
        (("--seeds", "FAR", "--background", "1"), "do not overlap"),
    ],
)
def test_bad_segment_requests_are_one_line_errors(case: Path, tmp_path: Path, args: tuple[str, ...],
                                                  message: str) -> None:
    vol = phantom()
    seeds = np.zeros(vol.shape, np.uint8)
    seeds[5, 5, 5], seeds[20, 40, 40] = 1, 2
    write_image(seeds, vol.ijk_to_lps, tmp_path / "seeds.nii.gz")
    far = vol.ijk_to_lps.copy()
    far[:3, 3] += 1000
    write_image(seeds, far, tmp_path / "far.nii.gz")
    args = tuple(str(tmp_path / "seeds.nii.gz") if a == "SEEDS" else str(tmp_path / "far.nii.gz") if a == "FAR"
                 else a for a in args)
    before = sorted(p.name for p in case.rglob("*"))
    proc = twin("segment", str(case), *args)
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr
    assert sorted(p.name for p in case.rglob("*")) == before  # the case is unchanged


def test_labels_and_mesh_need_segments(case: Path, tmp_path: Path) -> None:
    for args in (("labels", str(case), "-o", str(tmp_path / "l.nrrd")),
                 ("mesh", str(case), "-o", str(tmp_path / "m.stl"))):
        proc = twin(*args)
        assert proc.returncode == 3 and "run 'twin segment' first" in proc.stderr
    assert not (tmp_path / "l.nrrd").exists() and not (tmp_path / "m.stl").exists()
