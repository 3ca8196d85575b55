"""Real scans from ../shared/data: facts read from their headers (see its README), checked after import.

Every test skips with a reason when the data set is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from numpy.typing import NDArray

from tests.conftest import shared_path
from tests.workstation.dicom.test_deidentify import bundle_texts
from workstation.bundle import save_case
from workstation.dicom.load import load_candidate
from workstation.dicom.pixels import decode_dataset
from workstation.dicom.scan import SeriesCandidate, scan_path
from workstation.importer import import_path
from workstation.model.volume import Volume

pytestmark = pytest.mark.shared_data

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
SEGMENTATION = "1.2.840.10008.5.1.4.1.1.66.4"
TILT_SPACING_MM = 2.371  # 2.5 mm table steps along a normal tilted by 18.5 deg


def test_ct_abdomen_with_empty_uids_and_jpeg2000_loads_on_its_true_spacing() -> None:
    folder = shared_path("ct-abdomen-20", "dicom")
    result = scan_path(folder)
    assert result.rejected == []
    [candidate] = result.candidates
    assert candidate.usable and candidate.series_instance_uid == "" and candidate.study_instance_uid == ""
    [volume] = load_candidate(candidate)
    assert volume.shape == (20, 512, 512)
    assert volume.spacing_mm == pytest.approx([0.9765625, 0.9765625, 2.0])
    assert volume.provenance["geometry"]["slice_thickness_mm"] == pytest.approx(3.0)
    assert (int(volume.array.min()), int(volume.array.max())) == (-1024, 1839)
    assert volume.provenance["source"]["transfer_syntaxes"] == ["1.2.840.10008.1.2.4.90"]
    assert not volume.provenance["geometry"]["resampled"]
    np.testing.assert_allclose(volume.direction, np.eye(3), atol=1e-6)


def tilt_candidate(candidates: list[SeriesCandidate]) -> SeriesCandidate:
    [candidate] = [c for c in candidates if c.usable]
    return candidate


def test_tilt_phantom_folder_lists_the_tilted_series_and_sets_aside_secondary_captures() -> None:
    folder = shared_path("ct-tilt-phantom")
    result = scan_path(folder)
    candidate = tilt_candidate(result.candidates)
    assert result.default() is candidate
    assert (candidate.n_files, candidate.series_number, candidate.description) == (54, 201, "STEREOTAXIS")
    assert candidate.stacks[0].slice_spacing_mm == pytest.approx(TILT_SPACING_MM, abs=1e-3)
    assert candidate.stacks[0].slice_spacing_mm != pytest.approx(2.5, abs=0.05)
    assert candidate.stacks[0].tilt_deg == pytest.approx(18.5, abs=0.05)
    assert any("gantry tilt 18.50 deg" in note for note in candidate.notes)
    # Every secondary-capture file is set aside with a reason: rejected, or in a candidate that is not a volume.
    reasons: dict[str, str] = dict(result.rejected)
    for c in result.candidates:
        if not c.usable:
            reasons.update({f.display: c.problem for f in c.frames})
    secondary = [p for p in folder.rglob("I*") if p.is_file() and str(
        pydicom.dcmread(p, stop_before_pixels=True).get("SOPClassUID", "")) == SECONDARY_CAPTURE]
    assert len(secondary) == 5
    for path in secondary:
        assert reasons.get(str(path)), f"{path} is neither rejected nor in an unusable candidate"
        assert all(f.path != path for f in candidate.frames)
    colour = {Path(shown).name: reason for shown, reason in result.rejected if "colour image" in reason}
    assert colour.keys() == {"I30", "I40", "I50"}


def test_tilt_phantom_dicomdir_gives_the_same_series() -> None:
    dicomdir = shared_path("ct-tilt-phantom", "DICOMDIR")
    from_dir = tilt_candidate(scan_path(dicomdir).candidates)
    from_folder = tilt_candidate(scan_path(dicomdir.parent).candidates)
    assert from_dir.series_instance_uid == from_folder.series_instance_uid
    assert from_dir.n_files == 54
    assert from_dir.stacks[0].slice_spacing_mm == pytest.approx(TILT_SPACING_MM, abs=1e-3)


def source_pixels(path: Path, rows: NDArray[np.int64], cols: NDArray[np.int64]) -> tuple[NDArray[np.float64],
                                                                                         NDArray[np.float64]]:
    """LPS positions and HU of pixels of one file, straight from its header (not through the loader)."""
    ds = pydicom.dcmread(path)
    ipp = np.array([float(v) for v in ds.ImagePositionPatient])
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    dr, dc = (float(v) for v in ds.PixelSpacing)
    points = ipp + cols[:, None] * dc * iop[:3] + rows[:, None] * dr * iop[3:]
    hu = ds.pixel_array[rows, cols] * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    return points, hu


def test_tilt_phantom_source_pixels_are_found_at_their_lps_positions() -> None:
    """Random pixels of random source slices, sampled from the volume at their LPS positions."""
    folder = shared_path("ct-tilt-phantom", "S21610", "S2010")
    candidate = scan_path(folder).default()
    [volume] = load_candidate(candidate)
    assert volume.provenance["geometry"]["resampled"]
    rng = np.random.default_rng(2024)
    files = sorted(p for p in folder.iterdir() if p.name != "DIRFILE")
    points, expected = [], []
    for path in rng.choice(files, size=12, replace=False):
        rows, cols = rng.integers(0, 512, 400), rng.integers(0, 512, 400)
        p, hu = source_pixels(path, rows, cols)
        points.append(p)
        expected.append(hu)
    pts, hu = np.concatenate(points), np.concatenate(expected)
    sampled = volume.sample(pts)
    inside = ~np.isnan(sampled)
    assert inside.mean() > 0.95
    correlation = np.corrcoef(sampled[inside], hu[inside])[0, 1]
    assert correlation >= 0.99, correlation
    assert np.median(np.abs(sampled[inside] - hu[inside])) <= 2.0


def assert_frames_where_their_headers_say(volumes: list[Volume], candidate: SeriesCandidate) -> None:
    """Slice k of each volume: at its frame's PlanePositionSequence position, holding its frame's pixels."""
    seen = set()
    datasets: dict[Path, pydicom.Dataset] = {}
    decoded: dict[Path, NDArray[np.generic]] = {}
    for volume, stack in zip(volumes, candidate.stacks, strict=True):
        assert volume.shape[0] == len(stack.frames)
        for k, frame in enumerate(stack.frames):
            if frame.path not in datasets:
                datasets[frame.path] = pydicom.dcmread(frame.path)
                decoded[frame.path] = decode_dataset(datasets[frame.path], str(frame.path))
            ds = datasets[frame.path]
            index = frame.frame_index
            assert index is not None
            group = ds.PerFrameFunctionalGroupsSequence[index]
            ipp = [float(v) for v in group.PlanePositionSequence[0].ImagePositionPatient]
            np.testing.assert_allclose(volume.ijk_to_lps_points([0, 0, k]), ipp, atol=1e-3)
            transform = group.get("PixelValueTransformationSequence") or ds.SharedFunctionalGroupsSequence[0].get(
                "PixelValueTransformationSequence")
            slope = float(transform[0].RescaleSlope) if transform else 1.0
            intercept = float(transform[0].RescaleIntercept) if transform else 0.0
            pixels = decoded[frame.path][index] * slope + intercept
            np.testing.assert_allclose(volume.array[k], pixels, rtol=1e-5, atol=1e-3)
            seen.add((frame.path, index))
    n_frames = sum(int(ds.NumberOfFrames) for ds in datasets.values())
    assert len(seen) == n_frames, "a frame was used twice or left out"


def test_enhanced_siemens_xa10_is_one_candidate_of_four_volumes() -> None:
    folder = shared_path("enhanced-mr", "Siemens", "XA10")
    [candidate] = scan_path(folder).candidates
    assert candidate.usable and candidate.modality == "MR" and candidate.n_files == 4
    volumes = load_candidate(candidate)
    assert [v.shape for v in volumes] == [(6, 64, 64)] * 4
    assert any("4 volumes" in note for note in candidate.notes)
    for stack in candidate.stacks:
        assert len({f.split_values.get("TemporalPositionIndex") for f in stack.frames}) == 1
    assert_frames_where_their_headers_say(volumes, candidate)


def test_enhanced_philips_is_two_volumes_of_32_slices() -> None:
    path = shared_path("enhanced-mr", "Philips", "IM_0027_fMAP.dcm")
    [candidate] = scan_path(path).candidates
    volumes = load_candidate(candidate)
    assert [v.shape for v in volumes] == [(32, 64, 64)] * 2
    assert all(v.spacing_mm == pytest.approx([4.0, 4.0, 4.0]) for v in volumes)
    assert_frames_where_their_headers_say(volumes, candidate)


@pytest.mark.parametrize("source", [("enhanced-mr", "Philips"), ("enhanced-mr", "Siemens", "XA10"),
                                    ("ct-tilt-phantom",)], ids=["philips", "siemens", "tilt"])
def test_real_identifying_values_do_not_reach_the_bundle(tmp_path: Path, source: tuple[str, ...]) -> None:
    folder = shared_path(*source)
    result = import_path(folder)
    save_case(result.case, tmp_path / "case")
    first = result.chosen.stacks[0].frames[0].path  # type: ignore[union-attr]
    ds = pydicom.dcmread(first, stop_before_pixels=True)
    secrets = [str(ds.get(k, "") or "") for k in ("PatientName", "PatientID", "InstitutionName",
                                                  "InstitutionAddress", "PatientBirthDate", "ProtocolName")]
    secrets = [s for s in secrets if len(s) >= 5]
    assert secrets, "the source holds no identifying values to look for"
    for name, data in bundle_texts(tmp_path / "case").items():
        for secret in secrets:
            assert secret.encode() not in data, f"{secret!r} found in {name}"


def test_every_transfer_syntax_decodes_to_the_same_pixels() -> None:
    folder = shared_path("transfer-syntaxes")
    arrays = {}
    for path in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        arrays[path.name] = (str(ds.file_meta.TransferSyntaxUID), decode_dataset(ds, path.name))
    assert len(arrays) == 9
    assert len({syntax for syntax, _ in arrays.values()}) >= 7
    reference = arrays["1.dcm"][1]
    assert reference.shape == (1, 384, 384) and reference.max() > 1000
    for name, (syntax, array) in arrays.items():
        assert array.shape == reference.shape, name
        np.testing.assert_array_equal(array.astype(np.int64), reference.astype(np.int64), err_msg=f"{name} {syntax}")


def test_dicom_seg_is_not_offered_as_a_volume_and_the_ct_is_the_default() -> None:
    folder = shared_path("ct-3slice-labels")
    result = scan_path(folder)
    [seg] = [c for c in result.candidates if c.modality == "SEG"]
    assert not seg.usable and "segmentation" in seg.problem
    assert str(seg.frames[0].dataset.SOPClassUID) == SEGMENTATION
    default = result.default()
    assert default.modality == "CT" and default.n_files == 3
    [volume] = load_candidate(default)
    assert volume.shape == (3, 512, 512)
    assert volume.spacing_mm == pytest.approx([0.8105, 0.8105, 1.0], abs=1e-3)
    assert {Path(f).suffix for f, _ in result.rejected} == {".nrrd"}
