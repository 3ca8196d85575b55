"""``twin edit``: the segment editor's tools on a case bundle, with the exit codes and messages users see."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from segmentation.threshold import threshold
from workstation import segment_edits as edits
from workstation.bundle import load_case
from workstation.cli import main as cli
from workstation.io.volume_files import write_volume
from workstation.model import Volume

SPACING = (0.8, 0.8, 2.0)


def phantom() -> Volume:
    """Soft tissue (40 HU) with a bone cylinder (700 HU) and a small bright bead (700 HU) in air."""
    shape = (24, 60, 64)
    vol = Volume.from_geometry(np.full(shape, -1000, np.int16), spacing_mm=SPACING, origin_lps=(-25, -24, -20),
                               modality="CT")
    k, j, i = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    lps = vol.ijk_to_lps_points(np.stack([i, j, k], -1))
    x, y, z = lps[..., 0], lps[..., 1], lps[..., 2]
    hu = np.where(np.hypot(x, y) <= 20, 40, -1000)
    hu = np.where(np.hypot(x - 5, y) <= 6, 700, hu)
    hu = np.where(np.sqrt((x + 10) ** 2 + (y + 8) ** 2 + (z - 4) ** 2) <= 2.5, 700, hu)
    return vol.with_array(hu.astype(np.int16))


@pytest.fixture()
def case(tmp_path: Path) -> Path:
    write_volume(phantom(), tmp_path / "ct.nii.gz")
    out = tmp_path / "case"
    assert cli.main(["import", str(tmp_path / "ct.nii.gz"), "-o", str(out), "-q"]) == 0
    return out


def _labels(case: Path):  # type: ignore[no-untyped-def]
    loaded = load_case(case)
    return loaded.label_maps[f"{loaded.volume(None).id}-labels"]


def _digest(folder: Path) -> str:
    sha = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            sha.update(path.name.encode() + path.read_bytes())
    return sha.hexdigest()


def test_a_session_of_edits_matches_the_core_functions(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    volume = load_case(case).volume(None)
    steps = [
        ["threshold", "bone", "--lower", "300", "--upper", "3000"],
        ["keep-largest", "bone"],
        ["add", "lesion", "--rgb", "0.2,0.8,0.2"],
        ["paint", "lesion", "--point", "-8,6,0", "--point", "-6,6,0", "--radius-mm", "3"],
        ["grow", "bone", "--mm", "1.5", "--keep-others"],
        ["subtract", "bone", "--with", "lesion", "--margin-mm", "2"],
        ["cut-plane", "bone", "--origin", "0,0,10", "--normal", "0,0,1"],
        ["rename", "bone", "--to", "femur"],
    ]
    for step in steps:
        assert cli.main(["edit", str(case), *step]) == 0
    out = capsys.readouterr().out
    assert "segment 'femur' (label 1):" in out and "saved case" in out
    # the same edits through the core module give the same label map
    labels = edits.threshold_segment(edits.add_segment(_empty(volume), "bone"), volume, "bone", lower=300,
                                     upper=3000)
    labels = edits.keep_largest(labels, "bone")
    labels = edits.add_segment(labels, "lesion", color_rgb=(0.2, 0.8, 0.2))
    for point in ([-8, 6, 0], [-6, 6, 0]):
        labels = edits.paint(labels, "lesion", center_lps=point, radius_mm=3)
    labels = edits.morph(labels, "bone", operation="grow", mm=1.5, overwrite=False)
    labels = edits.combine(labels, "bone", operation="subtract", others=["lesion"], margin_mm=2)
    labels = edits.cut_plane(labels, "bone", origin_lps=[0, 0, 10], normal_lps=[0, 0, 1])
    stored = _labels(case)
    assert np.array_equal(stored.array == stored.segment("femur").value, labels.mask("bone"))
    assert np.array_equal(stored.mask("lesion"), labels.mask("lesion"))
    assert stored.segment("lesion").color_rgb == (0.2, 0.8, 0.2)
    # the bead was a separate piece: the largest island is the cylinder alone
    assert not stored.mask("femur")[threshold(volume, lower=300, upper=3000) & ~_cylinder(volume)].any()


def _empty(volume: Volume):  # type: ignore[no-untyped-def]
    from segmentation.labels import empty_label_map

    return empty_label_map(volume)


def _cylinder(volume: Volume) -> np.ndarray:
    k, j, i = np.meshgrid(*(np.arange(n) for n in volume.shape), indexing="ij")
    lps = volume.ijk_to_lps_points(np.stack([i, j, k], -1))
    return np.hypot(lps[..., 0] - 5, lps[..., 1]) <= 6.5


def test_an_edit_drops_the_surfaces_of_the_old_labels(case: Path) -> None:
    assert cli.main(["segment", str(case), "--preset", "bone", "-q"]) == 0
    assert cli.main(["mesh", str(case), "-o", str(case.parent / "bone.stl"), "-q"]) == 0
    assert load_case(case).meshes
    assert cli.main(["edit", str(case), "smooth", "bone", "--mm", "1", "-q"]) == 0
    assert not load_case(case).meshes


@pytest.mark.parametrize(("args", "message"), [
    (["grow", "liver", "--mm", "2"], "segment 'liver': not in the label map"),
    (["grow", "bone", "--mm", "-2"], "--mm: must be a finite number > 0"),
    (["paint", "bone", "--point", "500,0,0"], "--point (500.0, 0.0, 0.0): outside the volume"),
    (["paint", "bone", "--point", "1,2"], "--point '1,2': expected x,y,z"),
    (["color", "bone", "--rgb", "1,1"], "--rgb '1,1': expected R,G,B"),
    (["region-grow", "vessel", "--point", "0,0,0", "--lower", "100"], "give both --lower and --upper"),
    (["cut-cylinder", "bone", "--start", "0,0,0", "--end", "0,0,0", "--radius-mm", "2"], "must differ"),
])
def test_bad_edits_exit_3_with_one_line_and_leave_the_case_alone(case: Path, capsys: pytest.CaptureFixture[str],
                                                                 args: list[str], message: str) -> None:
    assert cli.main(["segment", str(case), "--preset", "bone", "-q"]) == 0
    before = _digest(case)
    capsys.readouterr()
    assert cli.main(["edit", str(case), *args]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("twin edit: error:") and message in err and "\n" not in err, err
    assert _digest(case) == before


def test_undo_redo_and_history_walk_the_journal_saved_with_the_case(case: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["segment", str(case), "--preset", "bone", "-q"]) == 0
    first = _labels(case)
    assert cli.main(["edit", str(case), "grow", "bone", "--mm", "1.5", "-q"]) == 0
    grown = _labels(case)
    assert cli.main(["edit", str(case), "rename", "bone", "--to", "femur", "-q"]) == 0
    capsys.readouterr()
    assert cli.main(["edit", str(case), "history"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(None, 5)[-1] for line in lines] == ["preset bone -> bone", "grow bone --mm 1.5",
                                                          "rename bone --to femur"]
    assert all(" done " in line for line in lines)
    assert cli.main(["edit", str(case), "undo"]) == 0
    assert "undid edit 3 (rename bone --to femur)" in capsys.readouterr().out
    assert [s.name for s in _labels(case).segments] == ["bone"]
    np.testing.assert_array_equal(_labels(case).array, grown.array)
    assert cli.main(["info", str(case)]) == 0
    assert "2 edits to undo, 1 to redo" in capsys.readouterr().out
    assert cli.main(["edit", str(case), "undo", "-q"]) == 0
    np.testing.assert_array_equal(_labels(case).array, first.array)
    assert cli.main(["edit", str(case), "redo", "-q"]) == 0
    np.testing.assert_array_equal(_labels(case).array, grown.array)
    capsys.readouterr()
    assert cli.main(["edit", str(case), "history", "--json"]) == 0
    assert [e["done"] for e in json.loads(capsys.readouterr().out)] == [True, True, False]
    # a new edit ends the redo chain: redo is refused with one line and the case is left alone
    assert cli.main(["edit", str(case), "shrink", "bone", "--mm", "1", "-q"]) == 0
    before = _digest(case)
    capsys.readouterr()
    assert cli.main(["edit", str(case), "redo"]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("twin edit: error:") and "nothing to redo" in err and "\n" not in err, err
    assert _digest(case) == before


def test_outlines_painted_with_a_2d_brush_are_filled_between_slices(case: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["edit", str(case), "add", "lesion", "-q"]) == 0
    assert cli.main(["edit", str(case), "paint", "lesion", "--point", "-8,6,-4", "--point", "-8,6,4",
                     "--radius-mm", "4", "--plane", "axial", "-q"]) == 0
    outlined = _labels(case)
    assert np.flatnonzero(outlined.mask("lesion").any(axis=(1, 2))).tolist() == [8, 12]  # z = -20 + 2 k
    assert cli.main(["edit", str(case), "fill-between-slices", "lesion"]) == 0
    assert "segment 'lesion' (label 1):" in capsys.readouterr().out
    filled = _labels(case)
    np.testing.assert_array_equal(filled.array, edits.fill_between_slices(outlined, "lesion").array)
    assert np.flatnonzero(filled.mask("lesion").any(axis=(1, 2))).tolist() == [8, 9, 10, 11, 12]
    assert cli.main(["edit", str(case), "history"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].endswith("fill-between-slices lesion --plane auto")
    assert cli.main(["edit", str(case), "fill-between-slices", "lesion"]) == 3
    err = capsys.readouterr().err.strip()
    assert "no empty slices between outlined" in err and "\n" not in err, err


def test_an_outline_is_drawn_and_erased_like_the_core_function(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["edit", str(case), "add", "lesion", "-q"]) == 0
    before = _labels(case)
    corners = ["-12,0,4", "-4,0,4", "-4,8,4", "-12,8,4"]
    args = [arg for corner in corners for arg in ("--point", corner)]
    assert cli.main(["edit", str(case), "draw", "lesion", *args, "--plane", "axial"]) == 0
    assert "segment 'lesion' (label 1): 0.1 ml (was 0.0 ml)" in capsys.readouterr().out  # 10 x 10 voxels of 0.8 mm
    drawn = _labels(case)
    points = [[float(c) for c in corner.split(",")] for corner in corners]
    np.testing.assert_array_equal(drawn.array, edits.draw(before, "lesion", points_lps=points, plane="axial").array)
    assert np.flatnonzero(drawn.mask("lesion").any(axis=(1, 2))).tolist() == [12]  # z = -20 + 2 k
    assert cli.main(["edit", str(case), "draw", "lesion", *args[:4], "--point", "-4,8,4", "--plane", "axial", "--erase",
                     "-q"]) == 0
    left = _labels(case).mask("lesion")
    assert 0 < left.sum() < drawn.mask("lesion").sum()  # the triangle under the diagonal is gone
    assert cli.main(["edit", str(case), "history"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].endswith("--plane axial --erase")
    assert cli.main(["edit", str(case), "draw", "lesion", *args[:4], "--plane", "axial"]) == 3
    err = capsys.readouterr().err.strip()
    assert "at least 3" in err and "\n" not in err, err


def test_scissors_cut_the_bone_through_every_slice(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["segment", str(case), "--preset", "bone", "-q"]) == 0
    before = _labels(case)
    corners = ["5,-10,0", "15,-10,0", "15,10,0", "5,10,0"]  # the half x > 5 mm of the bone cylinder at x = 5
    args = [arg for corner in corners for arg in ("--point", corner)]
    assert cli.main(["edit", str(case), "scissors", "bone", *args, "--plane", "axial", "-q"]) == 0
    cut = _labels(case)
    points = [[float(c) for c in corner.split(",")] for corner in corners]
    np.testing.assert_array_equal(cut.array, edits.scissors(before, "bone", points_lps=points, plane="axial").array)
    removed = before.mask("bone") & ~cut.mask("bone")
    assert set(np.flatnonzero(removed.any(axis=(1, 2)))) == set(np.flatnonzero(before.mask("bone").any(axis=(1, 2))))
    assert 0.3 < removed.sum() / before.mask("bone").sum() < 0.6
    assert cli.main(["edit", str(case), "undo", "-q"]) == 0
    assert cli.main(["edit", str(case), "scissors", "bone", *args, "--plane", "axial", "--keep-inside", "-q"]) == 0
    np.testing.assert_array_equal(_labels(case).mask("bone"), removed)
    capsys.readouterr()
    assert cli.main(["edit", str(case), "history"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].endswith("--plane axial --keep-inside")
    # --normal sweeps along another direction (a view showing an oblique volume in its own slices)
    assert cli.main(["edit", str(case), "undo", "-q"]) == 0
    tilted = ["--normal", "0.3,0,1"]
    assert cli.main(["edit", str(case), "scissors", "bone", *args, "--plane", "axial", *tilted, "-q"]) == 0
    expected = edits.scissors(before, "bone", points_lps=points, plane="axial", normal_lps=[0.3, 0.0, 1.0])
    np.testing.assert_array_equal(_labels(case).array, expected.array)
    assert np.any(expected.array != cut.array)
    assert cli.main(["edit", str(case), "undo", "-q"]) == 0
    capsys.readouterr()
    assert cli.main(["edit", str(case), "scissors", "bone", *args, "--plane", "axial", "--normal", "0,0,0"]) == 3
    err = capsys.readouterr().err.strip()
    assert "--normal" in err and "non-zero" in err and "\n" not in err, err
    np.testing.assert_array_equal(_labels(case).array, before.array)


def test_level_tracing_a_slice_of_the_bone(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["edit", str(case), "add", "bone", "-q"]) == 0
    before = _labels(case)
    assert cli.main(["edit", str(case), "level-trace", "bone", "--point", "5,0,4", "--plane", "axial", "-q"]) == 0
    traced = _labels(case)
    np.testing.assert_array_equal(
        traced.array, edits.level_trace(before, phantom(), "bone", point_lps=[5, 0, 4], plane="axial").array)
    bone = phantom().array >= 700
    cylinder = bone[12] & (np.arange(64) > 25)  # x > -5 mm: the cylinder, not the bead in the same slice
    np.testing.assert_array_equal(traced.mask("bone")[12], cylinder)
    assert not traced.mask("bone")[11].any()
    capsys.readouterr()
    assert cli.main(["edit", str(case), "history"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].endswith("level-trace bone --point 5,0,4 --plane axial")
