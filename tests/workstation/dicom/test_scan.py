"""Scanning folders into series candidates: grouping, splitting, selecting, and reasons for what is set aside."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from numpy.typing import NDArray
from pydicom.uid import JPEG2000Lossless, generate_uid

from tests.workstation.dicom.synthetic import linear_field, save, stepped_positions, write_axial, write_series
from workstation.dicom.load import load_candidate
from workstation.dicom.scan import scan_path
from workstation.errors import CancelledError, InputError

SAGITTAL = {"row_dir": (0.0, 1.0, 0.0), "col_dir": (0.0, 0.0, -1.0)}
CORONAL = {"row_dir": (1.0, 0.0, 0.0), "col_dir": (0.0, 0.0, -1.0)}


def digest_tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_one_series_one_candidate_with_its_facts(tmp_path: Path) -> None:
    series = write_axial(tmp_path, n=9, spacing=3.0, rows=20, cols=28, pixel_spacing=(0.6, 0.75), series_number=7,
                         description="thorax")
    result = scan_path(tmp_path)
    assert result.n_files == 9 and result.rejected == []
    [candidate] = result.candidates
    assert candidate.usable and candidate.problem == ""
    assert candidate.series_instance_uid == series.series_uid
    assert candidate.study_instance_uid == series.study_uid
    assert (candidate.modality, candidate.series_number, candidate.description) == ("CT", 7, "thorax")
    assert (candidate.rows, candidate.columns, candidate.n_files) == (20, 28, 9)
    assert candidate.orientation == "axial"
    assert candidate.stacks[0].slice_spacing_mm == pytest.approx(3.0)
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["series"][0]["size"] == [28, 20, 9]
    assert summary["series"][0]["pixel_spacing_mm"] == [0.6, 0.75]
    assert summary["series"][0]["slice_spacing_mm"] == pytest.approx(3.0)
    assert "thorax" in candidate.summary() and "28x20x9" in candidate.summary()
    assert result.default() is candidate


def test_scanning_never_modifies_the_files(tmp_path: Path) -> None:
    write_axial(tmp_path / "a", n=5)
    before = digest_tree(tmp_path)
    load_candidate(scan_path(tmp_path).default())
    assert digest_tree(tmp_path) == before


def test_two_series_are_two_candidates_and_default_is_the_largest(tmp_path: Path) -> None:
    study = generate_uid()
    large = write_axial(tmp_path / "a", n=8, rows=40, cols=40, series_number=9, study_uid=study)
    small = write_axial(tmp_path / "b", n=5, series_number=2, study_uid=study)
    result = scan_path(tmp_path)
    # Numbered by series number within the study, whatever the folder order.
    assert [c.series_instance_uid for c in result.candidates] == [small.series_uid, large.series_uid]
    assert result.default().series_instance_uid == large.series_uid
    assert result.select("1").series_instance_uid == small.series_uid
    assert result.select(f" {large.series_uid} ").series_instance_uid == large.series_uid
    with pytest.raises(InputError, match="no such series"):
        result.select("3")
    with pytest.raises(InputError, match="no series with this UID"):
        result.select("1.2.3.4")


def test_series_with_empty_uids_are_told_apart_by_series_number(tmp_path: Path) -> None:
    write_axial(tmp_path / "a", n=6, empty_uids=True, series_number=4)
    write_axial(tmp_path / "b", n=7, empty_uids=True, series_number=5, start=(0, 0, 200))
    result = scan_path(tmp_path)
    assert [(c.series_number, len(c.frames), c.usable) for c in result.candidates] == [(4, 6, True), (5, 7, True)]
    assert all(c.series_instance_uid == "" for c in result.candidates)
    assert "(no UID)" in result.candidates[0].summary()


# Several volumes in one series ---------------------------------------------------------------------------

def write_time_series(folder: Path, n_times: int, *, tag: str | None) -> tuple[str, list[float]]:
    """``n_times`` volumes at the same positions in one series; ``tag`` tells them apart (None: nothing)."""
    series_uid, study_uid = generate_uid(), generate_uid()
    offsets = [0.0, 100.0, 250.0, 300.0][:n_times]
    positions = stepped_positions((-5, -5, 10), (0, 0, 2.0), range(6))
    for t, offset in enumerate(offsets, start=1):
        def field(p: NDArray[np.float64], offset: float = offset) -> NDArray[np.float64]:
            return linear_field(p) + offset
        per_slice = [{tag: t}] * len(positions) if tag else None
        write_series(folder, positions, series_uid=series_uid, study_uid=study_uid, values=field, prefix=f"T{t}_",
                     per_slice=per_slice, seed=t)
    return series_uid, offsets


@pytest.mark.parametrize("tag", ["TemporalPositionIdentifier", "EchoNumbers", "AcquisitionNumber"])
def test_repeated_positions_told_apart_are_split_into_volumes(tmp_path: Path, tag: str) -> None:
    _, offsets = write_time_series(tmp_path, 3, tag=tag)
    [candidate] = scan_path(tmp_path).candidates
    assert candidate.usable and len(candidate.stacks) == 3
    assert any(f"3 volumes at the same positions, told apart by {tag}" in note for note in candidate.notes)
    assert "[3 volumes]" in candidate.summary()
    volumes = load_candidate(candidate)
    assert [v.shape for v in volumes] == [(6, 32, 32)] * 3
    assert [v.name for v in volumes] == ["ct-1", "ct-2", "ct-3"]
    for volume, offset in zip(volumes, offsets, strict=True):
        assert volume.spacing_mm[2] == pytest.approx(2.0)
        k, j, i = np.meshgrid(*(np.arange(n) for n in volume.shape), indexing="ij")
        expected = np.round(linear_field(volume.ijk_to_lps_points(np.stack([i, j, k], -1)))) + offset
        np.testing.assert_allclose(volume.array, expected, atol=1e-6)
        assert any("3 volumes" in w for w in volume.provenance["warnings"])


def test_repeated_positions_with_nothing_to_tell_them_apart_are_not_a_volume(tmp_path: Path) -> None:
    write_time_series(tmp_path, 2, tag=None)
    result = scan_path(tmp_path)
    [candidate] = result.candidates
    assert not candidate.usable and candidate.stacks == []
    assert "positions repeat" in candidate.problem and "refusing to stack them into one volume" in candidate.problem
    assert "not a volume: positions repeat" in candidate.summary()
    with pytest.raises(InputError, match="positions repeat"):
        result.default()
    with pytest.raises(InputError, match="not a volume"):
        result.select("1")
    with pytest.raises(InputError, match="not a volume"):
        load_candidate(candidate)


def test_a_gap_in_one_time_point_is_noted_for_that_volume(tmp_path: Path) -> None:
    uid, study = generate_uid(), generate_uid()
    positions = stepped_positions((0, 0, 0), (0, 0, 2.0), range(8))
    write_series(tmp_path, positions, series_uid=uid, study_uid=study, prefix="A",
                 per_slice=[{"TemporalPositionIdentifier": 1}] * 8)
    write_series(tmp_path, positions[:4] + positions[5:], series_uid=uid, study_uid=study, prefix="B",
                 per_slice=[{"TemporalPositionIdentifier": 2}] * 7)
    [candidate] = scan_path(tmp_path).candidates
    assert any(note.startswith("volume 2: 1 missing slice(s) between 6.00 and 10.00 mm") for note in candidate.notes)
    assert not any(note.startswith("volume 1") for note in candidate.notes)
    first, second = load_candidate(candidate)
    assert second.same_grid(first)
    assert not any("missing" in w for w in first.provenance["warnings"])
    assert any("missing" in w for w in second.provenance["warnings"])


# Mixed orientations --------------------------------------------------------------------------------------

def test_mixed_orientations_in_one_series_are_split_with_a_note(tmp_path: Path) -> None:
    uid, study = generate_uid(), generate_uid()
    axial = write_axial(tmp_path, n=8, series_uid=uid, study_uid=study, prefix="AX")
    sagittal = write_series(tmp_path, stepped_positions((-20, -16, 60), (2.0, 0, 0), range(6)), series_uid=uid,
                            study_uid=study, prefix="SAG", **SAGITTAL)
    result = scan_path(tmp_path)
    assert len(result.candidates) == 2
    by_orientation = {c.orientation: c for c in result.candidates}
    assert set(by_orientation) == {"axial", "sagittal"}
    assert len(by_orientation["axial"].frames) == 8 and len(by_orientation["sagittal"].frames) == 6
    for candidate in result.candidates:
        assert candidate.usable and candidate.series_instance_uid == uid
        assert any("split off by geometry" in note and "2 different orientations" in note
                   for note in candidate.notes)
    with pytest.raises(InputError, match="mixes 2 orientations"):
        result.select(uid)
    chosen = result.select(str(by_orientation["sagittal"].number))
    [volume] = load_candidate(chosen)
    assert volume.shape == (6, 32, 32)
    np.testing.assert_allclose(volume.direction[:, 2], [-1, 0, 0], atol=1e-9)  # (0,1,0) x (0,0,-1)
    np.testing.assert_array_equal(volume.array[3], sagittal.slices[3].hu)
    assert result.default().orientation == "axial" and len(axial.slices) == 8


def test_single_slices_of_different_orientations_are_not_a_volume(tmp_path: Path) -> None:
    uid, study = generate_uid(), generate_uid()
    for prefix, geometry in (("AX", {}), ("SAG", SAGITTAL), ("COR", CORONAL)):
        write_series(tmp_path, [(0.0, 0.0, 0.0)], series_uid=uid, study_uid=study, prefix=prefix, **geometry)
    result = scan_path(tmp_path)
    assert len(result.candidates) == 3 and result.usable() == []
    assert all("single slice" in c.problem for c in result.candidates)
    with pytest.raises(InputError, match=r"no series forms a volume among 3 files.*single slice"):
        result.default()


def test_different_matrix_sizes_in_one_series_are_split_with_a_note(tmp_path: Path) -> None:
    uid, study = generate_uid(), generate_uid()
    write_axial(tmp_path, n=6, rows=32, cols=32, series_uid=uid, study_uid=study, prefix="A")
    write_axial(tmp_path, n=4, rows=16, cols=16, series_uid=uid, study_uid=study, prefix="B", start=(0, 0, 300))
    result = scan_path(tmp_path)
    assert sorted((c.rows, len(c.frames)) for c in result.candidates) == [(16, 4), (32, 6)]
    for candidate in result.candidates:
        assert any("split off by geometry: its series holds 2 different" in note for note in candidate.notes)
    with pytest.raises(InputError, match="mixes 2 orientations or geometries"):
        result.select(uid)


def test_slightly_different_pixel_spacing_is_another_geometry(tmp_path: Path) -> None:
    uid = generate_uid()
    write_axial(tmp_path, n=5, series_uid=uid, prefix="A", pixel_spacing=(0.5, 0.5))
    write_axial(tmp_path, n=5, series_uid=uid, prefix="B", pixel_spacing=(0.7, 0.7), start=(0, 0, 300))
    result = scan_path(tmp_path)
    assert sorted(c.frames[0].pixel_spacing_mm for c in result.candidates) == [(0.5, 0.5), (0.7, 0.7)]
    assert all(c.usable for c in result.candidates)


# What is set aside, and why ------------------------------------------------------------------------------

def test_unusable_files_are_set_aside_with_their_reason(tmp_path: Path) -> None:
    write_axial(tmp_path / "series", n=4)
    (tmp_path / "notes.txt").write_text("not an image\n")
    (tmp_path / "random.dcm").write_bytes(np.random.default_rng(0).bytes(3000))
    source = next((tmp_path / "series").iterdir())
    ds = pydicom.dcmread(source)
    del ds.PixelData
    ds.save_as(tmp_path / "nopixels.dcm")
    ds = pydicom.dcmread(source)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = bytes(32 * 32 * 3)
    ds.save_as(tmp_path / "colour.dcm")
    ds = pydicom.dcmread(source)
    del ds.ImagePositionPatient, ds.ImageOrientationPatient
    ds.ImageType = ["DERIVED", "SECONDARY", "SCREENSHOT"]
    ds.save_as(tmp_path / "nogeometry.dcm")
    data = (tmp_path / "series" / source.name).read_bytes()
    (tmp_path / "truncated.dcm").write_bytes(data[:-700])
    (tmp_path / ".hidden").write_bytes(b"ignored")
    result = scan_path(tmp_path)
    reasons = {Path(shown).name: reason for shown, reason in result.rejected}
    assert reasons.keys() == {"notes.txt", "random.dcm", "nopixels.dcm", "colour.dcm", "nogeometry.dcm",
                              "truncated.dcm"}
    assert reasons["notes.txt"] == "not a DICOM file" and reasons["random.dcm"] == "not a DICOM file"
    assert reasons["nopixels.dcm"].startswith("no pixel data")
    assert "colour image" in reasons["colour.dcm"]
    assert "no patient geometry" in reasons["nogeometry.dcm"] and "SCREENSHOT" in reasons["nogeometry.dcm"]
    assert "truncated file" in reasons["truncated.dcm"] and "1348 present" in reasons["truncated.dcm"]
    assert result.n_files == 10
    [candidate] = result.candidates
    assert candidate.usable and len(candidate.frames) == 4


def test_large_truncated_pixel_data_is_set_aside_without_reading_it(tmp_path: Path) -> None:
    """Pixel data beyond the header reader's deferral size (64x64 int16 = 8 KiB) is checked too."""
    series = write_axial(tmp_path / "s", n=3, rows=64, cols=64)
    data = series.files[0].read_bytes()
    series.files[0].write_bytes(data[:-1])
    result = scan_path(tmp_path)
    assert [(Path(f).name, r) for f, r in result.rejected] == [
        (series.files[0].name, "truncated file: pixel data needs 8192 bytes, 8191 present")]
    assert len(result.candidates[0].frames) == 2


def test_truncated_compressed_file_is_set_aside_as_truncated(tmp_path: Path) -> None:
    """Cut inside encapsulated (JPEG 2000) pixel data: a truncated file, not one 'without pixel data'."""
    series = write_axial(tmp_path / "s", n=3, rows=32, cols=32)
    for path in series.files:
        ds = pydicom.dcmread(path)
        ds.compress(JPEG2000Lossless, generate_instance_uid=False)
        save(ds, path)
    cut = series.files[1]
    cut.write_bytes(cut.read_bytes()[:-200])
    result = scan_path(tmp_path)
    assert [(Path(f).name, r.split(":")[0]) for f, r in result.rejected] == [(cut.name, "truncated file")]
    assert len(result.default().frames) == 2


def test_a_single_file_path_is_scanned(tmp_path: Path) -> None:
    series = write_axial(tmp_path, n=3)
    result = scan_path(series.files[0])
    assert result.n_files == 1 and "single slice" in result.candidates[0].problem


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        scan_path(tmp_path / "absent")


def test_empty_folder_says_no_files(tmp_path: Path) -> None:
    result = scan_path(tmp_path)
    assert result.n_files == 0 and result.candidates == []
    with pytest.raises(InputError, match="no files found"):
        result.default()


def test_progress_reports_and_cancels(tmp_path: Path) -> None:
    write_axial(tmp_path, n=4)
    seen: list[tuple[int, int]] = []
    scan_path(tmp_path, progress=lambda done, total, message: seen.append((done, total)) is None)
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)
    with pytest.raises(CancelledError):
        scan_path(tmp_path, progress=lambda done, total, message: done < 2)


def test_a_copied_file_is_ignored_not_stacked(tmp_path: Path) -> None:
    write_axial(tmp_path / "series", n=5)
    first = sorted((tmp_path / "series").iterdir())[0]
    (tmp_path / "copy-of-first.dcm").write_bytes(first.read_bytes())
    result = scan_path(tmp_path)
    [candidate] = result.candidates
    assert candidate.usable and candidate.stacks[0].n_output_slices == 5
    [(_shown, reason)] = result.rejected
    assert "same SOP Instance UID" in reason and "copy" in reason
