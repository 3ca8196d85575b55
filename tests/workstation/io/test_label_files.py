"""Label-map files: NRRD (Slicer keys), NIfTI + sidecar and DICOM SEG, on the source grid, same values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from tests.conftest import shared_path
from tests.workstation.dicom.synthetic import oblique_geometry, write_along_normal
from workstation.errors import InputError, OutputError
from workstation.importer import import_path
from workstation.io.label_files import read_label_map_file, sidecar_path, write_label_map
from workstation.model import LabelMap, Segment, Volume

LIVER_CODE = {"scheme": "SCT", "value": "10200004", "meaning": "Liver"}
SEGMENTS = (
    Segment(3, "liver", (0.87, 0.51, 0.40), LIVER_CODE),
    Segment(7, "kidney left", (0.2, 0.6, 0.9)),
    Segment(300, "vertebra T12", (0.95, 0.93, 0.85)),
)
CIELAB_TOL = 1.5 / 255  # RGB -> 16-bit CIELab -> 8-bit RGB


def oblique_affine(shape_kji: tuple[int, int, int] = (6, 7, 8)) -> np.ndarray:
    angle = np.radians(25)
    direction = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    return Volume.from_geometry(np.zeros(shape_kji, np.int16), spacing_mm=[0.6, 0.9, 2.2],
                                origin_lps=[12.5, -40.0, 310.0], direction=direction).ijk_to_lps


def labels_array(shape: tuple[int, int, int]) -> np.ndarray:
    """Values 3, 7 and 300 in blocks (uint16), including a voxel at each grid corner."""
    k, j, i = shape
    array = np.zeros(shape, np.uint16)
    array[1:k - 1, 1:j // 2, 1:i // 2] = 3
    array[1:k - 1, j // 2:j - 1, i // 2:i - 1] = 7
    array[k // 2, j // 2, 1:i - 1] = 300
    array[0, 0, 0], array[-1, -1, -1] = 7, 3
    return array


def oblique_label_map() -> LabelMap:
    return LabelMap(array=labels_array((6, 7, 8)), ijk_to_lps=oblique_affine(), segments=SEGMENTS, name="organs")


def assert_segments_match(back: tuple[Segment, ...], original: tuple[Segment, ...], *, color_tol: float) -> None:
    assert [(s.value, s.name) for s in back] == [(s.value, s.name) for s in original]
    for b, o in zip(back, original, strict=True):
        np.testing.assert_allclose(b.color_rgb, o.color_rgb, atol=color_tol)
        if o.code is None:
            assert b.code is None
        else:
            assert {k: b.code[k] for k in ("scheme", "value", "meaning")} == o.code


def synthetic_case(folder: Path, *, n_slices: int = 6, rows: int = 16, cols: int = 20) -> Any:
    """A real (synthetic) oblique DICOM series imported into a case: volume + de-identified headers."""
    row_dir, col_dir = oblique_geometry(25.0)
    write_along_normal(folder, [2.5 * n for n in range(n_slices)], row_dir=row_dir, col_dir=col_dir,
                       rows=rows, cols=cols, pixel_spacing=(0.8, 0.7))
    return import_path(folder).case


# ---- NRRD and NIfTI --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["labels.nrrd", "labels.seg.nrrd", "labels.nii.gz", "labels.nii"])
def test_nrrd_and_nifti_round_trip_values_grid_names_colours(tmp_path: Path, name: str) -> None:
    lm = oblique_label_map()
    write_label_map(lm, tmp_path / name)
    back = read_label_map_file(tmp_path / name)
    assert back.array.dtype == np.uint16
    np.testing.assert_array_equal(back.array, lm.array)
    np.testing.assert_allclose(back.ijk_to_lps, lm.ijk_to_lps, atol=1e-4)
    assert_segments_match(back.segments, lm.segments, color_tol=1e-5)
    assert back.name == "labels"


def test_nrrd_header_uses_slicer_segmentation_keys(tmp_path: Path) -> None:
    lm = oblique_label_map()
    write_label_map(lm, tmp_path / "organs.seg.nrrd")
    header = (tmp_path / "organs.seg.nrrd").read_bytes().split(b"\n\n", 1)[0].decode()
    fields = dict(line.split(":=", 1) for line in header.splitlines() if ":=" in line)
    assert "space: left-posterior-superior" in header
    assert fields["Segment0_Name"] == "liver" and fields["Segment0_LabelValue"] == "3"
    assert fields["Segment2_Name"] == "vertebra T12" and fields["Segment2_LabelValue"] == "300"
    assert fields["Segment1_Layer"] == "0" and fields["Segment1_ID"] == "Segment_7"
    assert [float(c) for c in fields["Segment1_Color"].split()] == pytest.approx([0.2, 0.6, 0.9])
    # minI maxI minJ maxJ minK maxK of each value: 3 owns the far corner, 7 the (0, 0, 0) corner.
    assert (fields["Segment0_Extent"], fields["Segment1_Extent"]) == ("1 7 1 6 1 5", "0 6 0 5 0 4")
    assert "~SCT^10200004^Liver~" in fields["Segment0_Tags"]
    assert fields["Segment1_Tags"].startswith("TerminologyEntry:") and "SCT^85756007^Tissue" in fields["Segment1_Tags"]
    assert fields["Segmentation_MasterRepresentation"] == "Binary labelmap"


def test_slicer_multi_layer_nrrd_is_merged_or_refused_on_overlap(tmp_path: Path) -> None:
    data = np.zeros((2, 3, 4, 2), np.uint8)  # [k, j, i, layer]
    data[0, 0, 0:2, 0] = 1
    data[1, 2, 3, 1] = 1
    header = ("NRRD0004\ntype: unsigned char\ndimension: 4\nspace: left-posterior-superior\nsizes: 2 4 3 2\n"
              "space directions: none (1,0,0) (0,1,0) (0,0,2)\nkinds: list domain domain domain\nencoding: raw\n"
              "space origin: (5,0,0)\nSegment0_Name:=tumour\nSegment0_LabelValue:=1\nSegment0_Layer:=0\n"
              "Segment0_Color:=1 0 0\nSegment1_Name:=liver\nSegment1_LabelValue:=1\nSegment1_Layer:=1\n\n")
    path = tmp_path / "layers.seg.nrrd"
    path.write_bytes(header.encode() + data.tobytes())
    lm = read_label_map_file(path)
    assert [(s.value, s.name) for s in lm.segments] == [(1, "tumour"), (2, "liver")]
    assert lm.segments[0].color_rgb == (1.0, 0.0, 0.0)
    assert lm.array[0, 0, 0] == 1 and lm.array[1, 2, 3] == 2 and int((lm.array > 0).sum()) == 3
    data[0, 0, 0, 1] = 1  # liver now overlaps the tumour
    path.write_bytes(header.encode() + data.tobytes())
    with pytest.raises(InputError, match=r"'tumour' and 'liver' overlap in 1 voxels"):
        read_label_map_file(path)
    assert read_label_map_file(path, overlap="last").array[0, 0, 0] == 2


def test_nifti_sidecar_lists_segments_and_a_plain_mapping_is_read(tmp_path: Path) -> None:
    lm = oblique_label_map()
    write_label_map(lm, tmp_path / "organs.nii.gz")
    assert sidecar_path(tmp_path / "organs.nii.gz") == tmp_path / "organs.json"
    sidecar = json.loads((tmp_path / "organs.json").read_text())
    assert [s["value"] for s in sidecar["segments"]] == [3, 7, 300]
    assert sidecar["segments"][0]["code"] == LIVER_CODE
    (tmp_path / "organs.json").write_text(json.dumps({"3": "liver", "7": "kidney_left", "300": "vertebrae_T12"}))
    back = read_label_map_file(tmp_path / "organs.nii.gz")
    assert [(s.value, s.name) for s in back.segments] == [(3, "liver"), (7, "kidney_left"), (300, "vertebrae_T12")]


def test_values_without_a_segment_are_written_as_named_segments(tmp_path: Path) -> None:
    lm = LabelMap(array=labels_array((6, 7, 8)), ijk_to_lps=oblique_affine(), segments=SEGMENTS[:1])
    write_label_map(lm, tmp_path / "l.nrrd")
    back = read_label_map_file(tmp_path / "l.nrrd")
    assert [(s.value, s.name) for s in back.segments] == [(3, "liver"), (7, "label 7"), (300, "label 300")]
    np.testing.assert_array_equal(back.array, lm.array)


def test_reading_onto_a_reference_grid_by_position(tmp_path: Path) -> None:
    lm = oblique_label_map()
    write_label_map(lm, tmp_path / "l.nii.gz")
    # The reference: the same grid seen with i flipped and one more column on each side.
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1, 8
    ref = Volume(array=np.zeros((6, 7, 10), np.int16), ijk_to_lps=lm.ijk_to_lps @ flip, id="ct")
    back = read_label_map_file(tmp_path / "l.nii.gz", reference=ref)
    np.testing.assert_array_equal(back.array[:, :, 1:9], lm.array[:, :, ::-1])
    assert not back.array[:, :, [0, 9]].any() and back.source_volume_id == "ct"
    far_affine = np.array(lm.ijk_to_lps)
    far_affine[:3, 3] += 900.0
    far = Volume(array=np.zeros((6, 7, 8), np.int16), ijk_to_lps=far_affine)
    with pytest.raises(InputError, match="do not overlap"):
        read_label_map_file(tmp_path / "l.nii.gz", reference=far)


def test_writing_onto_a_reference_volume_grid(tmp_path: Path) -> None:
    lm = oblique_label_map()
    bigger = Volume(array=np.zeros((8, 7, 8), np.int16), ijk_to_lps=lm.ijk_to_lps @ _shift_k(-1), id="ct")
    write_label_map(lm, tmp_path / "l.nrrd", reference_volume=bigger)
    back = read_label_map_file(tmp_path / "l.nrrd")
    assert back.array.shape == (8, 7, 8)
    np.testing.assert_allclose(back.ijk_to_lps, bigger.ijk_to_lps, atol=1e-4)
    np.testing.assert_array_equal(back.array[1:7], lm.array)


def _shift_k(dk: float) -> np.ndarray:
    shift = np.eye(4)
    shift[2, 3] = dk
    return shift


# ---- DICOM SEG -------------------------------------------------------------------------------

def test_dicom_seg_round_trip_on_an_oblique_series(tmp_path: Path) -> None:
    case = synthetic_case(tmp_path / "dicom")
    volume = case.volume()
    headers = case.source_headers[volume.id]
    lm = LabelMap(array=labels_array(volume.shape), ijk_to_lps=volume.ijk_to_lps, segments=SEGMENTS,
                  source_volume_id=volume.id, name="organs")
    write_label_map(lm, tmp_path / "organs.dcm", source_headers=headers)

    ds = pydicom.dcmread(tmp_path / "organs.dcm")
    assert ds.Modality == "SEG" and ds.SegmentationType == "BINARY"
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == volume.series.series_instance_uid
    assert ds.FrameOfReferenceUID == volume.series.frame_of_reference_uid
    assert [int(s.SegmentNumber) for s in ds.SegmentSequence] == [1, 2, 3]
    assert [s.SegmentLabel for s in ds.SegmentSequence] == ["liver", "kidney left", "vertebra T12"]
    # Every frame sits exactly (same decimal strings) on the source plane it derives from.
    source_ipp = {h["00080018"]["Value"][0]: h["00200032"]["Value"] for h in headers}
    for frame in ds.PerFrameFunctionalGroupsSequence:
        sop = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        assert [float(x) for x in frame.PlanePositionSequence[0].ImagePositionPatient] == source_ipp[sop]

    back = read_label_map_file(tmp_path / "organs.dcm", reference=volume)
    np.testing.assert_array_equal(back.array, lm.array)
    np.testing.assert_array_equal(back.ijk_to_lps, volume.ijk_to_lps)
    assert_segments_match(back.segments, lm.segments, color_tol=CIELAB_TOL)
    alone = read_label_map_file(tmp_path / "organs.dcm")  # no reference: the frames' own grid
    np.testing.assert_array_equal(alone.array, lm.array)
    np.testing.assert_allclose(alone.ijk_to_lps, volume.ijk_to_lps, atol=1e-4)


def test_dicom_seg_of_a_label_map_off_the_source_planes(tmp_path: Path) -> None:
    case = synthetic_case(tmp_path / "dicom")
    volume = case.volume()
    headers = case.source_headers[volume.id]
    full = labels_array(volume.shape)
    cropped = LabelMap(array=full[1:5], ijk_to_lps=volume.ijk_to_lps @ _shift_k(1), segments=SEGMENTS)
    expected = full.copy()
    expected[[0, 5]] = 0
    # As given: its own plane positions, in the source's frame of reference.
    write_label_map(cropped, tmp_path / "own.dcm", source_headers=headers)
    np.testing.assert_array_equal(read_label_map_file(tmp_path / "own.dcm", reference=volume).array, expected)
    # Onto the source grid first: one frame per source plane again.
    write_label_map(cropped, tmp_path / "src.dcm", source_headers=headers, reference_volume=volume)
    ds = pydicom.dcmread(tmp_path / "src.dcm")
    assert all("DerivationImageSequence" in f for f in ds.PerFrameFunctionalGroupsSequence)
    np.testing.assert_array_equal(read_label_map_file(tmp_path / "src.dcm", reference=volume).array, expected)


def test_overlapping_dicom_seg_segments_raise_or_the_higher_number_wins(tmp_path: Path) -> None:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from workstation.io.label_files import _source_dataset

    case = synthetic_case(tmp_path / "dicom", n_slices=3)
    volume = case.volume()
    sources = sorted((_source_dataset(h) for h in case.source_headers[volume.id]),
                     key=lambda d: float(volume.lps_to_ijk_points(np.array(d.ImagePositionPatient, float))[2]))
    masks = np.zeros((*volume.shape, 2), np.uint8)
    masks[1, 2:6, 2:6, 0] = 1  # liver
    masks[1, 4:8, 4:8, 1] = 1  # tumour, overlapping the liver in 4 voxels
    descriptions = [hd.seg.SegmentDescription(segment_number=n, segment_label=label,
                                              segmented_property_category=codes.SCT.Tissue,
                                              segmented_property_type=codes.SCT.Tissue, algorithm_type="MANUAL")
                    for n, label in ((1, "liver"), (2, "tumour"))]
    seg = hd.seg.Segmentation(source_images=sources, pixel_array=masks, segmentation_type="BINARY",
                              segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=9,
                              sop_instance_uid=hd.UID(), instance_number=1, manufacturer="test",
                              manufacturer_model_name="test", software_versions="1", device_serial_number="",
                              specific_character_set="ISO_IR 192")
    seg.save_as(tmp_path / "overlap.dcm")
    with pytest.raises(InputError, match=r"overlap\.dcm: segments 'liver' and 'tumour' overlap in 4 voxels"):
        read_label_map_file(tmp_path / "overlap.dcm", reference=volume)
    lm = read_label_map_file(tmp_path / "overlap.dcm", reference=volume, overlap="last")
    assert lm.array[1, 5, 5] == 2 and lm.array[1, 2, 2] == 1 and int((lm.array == 1).sum()) == 12


def test_bad_requests_fail_with_one_line_and_leave_nothing_behind(tmp_path: Path) -> None:
    lm = oblique_label_map()
    with pytest.raises(OutputError, match=r"l\.dcm: a DICOM SEG must reference its source series"):
        write_label_map(lm, tmp_path / "l.dcm")
    with pytest.raises(OutputError, match="unknown label-map format"):
        write_label_map(lm, tmp_path / "l.png")
    with pytest.raises(OutputError, match="does not exist"):
        write_label_map(lm, tmp_path / "missing" / "l.nrrd")
    with pytest.raises(InputError, match="no such file"):
        read_label_map_file(tmp_path / "absent.dcm")
    (tmp_path / "junk.dcm").write_bytes(b"not DICOM at all")
    with pytest.raises(InputError, match=r"junk\.dcm: not a readable DICOM SEG"):
        read_label_map_file(tmp_path / "junk.dcm")
    (tmp_path / "junk.nrrd").write_bytes(b"NRRD0004\nbroken")
    with pytest.raises(InputError, match=r"junk\.nrrd: not a readable label map") as err:
        read_label_map_file(tmp_path / "junk.nrrd")
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.dcm", "junk.nrrd"]


# ---- Real data: ct-3slice-labels (dcmqi DICOM SEG + NRRD on a GE CT) ------------------------------------

def test_real_dicom_seg_matches_the_nrrd_and_survives_our_own_seg(tmp_path: Path) -> None:
    root = shared_path("ct-3slice-labels")
    case = import_path(root / "dicom").case
    ct = case.volume()
    from_seg = read_label_map_file(root / "liver_seg.dcm", reference=ct)
    from_nrrd = read_label_map_file(root / "liver_seg.nrrd", reference=ct)
    assert from_seg.array.shape == ct.shape == (3, 512, 512)
    assert int((from_seg.array > 0).sum()) == 107_098
    np.testing.assert_array_equal(from_seg.array, from_nrrd.array)
    liver = from_seg.segments[0]
    assert (liver.value, liver.name, liver.code["value"], liver.code["scheme"]) == (1, "Liver", "T-62000", "SRT")

    out = tmp_path / "liver.dcm"
    write_label_map(from_seg, out, source_headers=case.source_headers[ct.id])
    again = read_label_map_file(out, reference=ct)
    np.testing.assert_array_equal(again.array, from_seg.array)
    assert [(s.value, s.name, s.code) for s in again.segments] == [(s.value, s.name, s.code) for s in from_seg.segments]
    np.testing.assert_allclose(again.segments[0].color_rgb, liver.color_rgb, atol=CIELAB_TOL)
    ds = pydicom.dcmread(out)
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == ct.series.series_instance_uid
    referenced = {i.ReferencedSOPInstanceUID for i in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == {h["00080018"]["Value"][0] for h in case.source_headers[ct.id]}
    assert ds.PatientID == case.source_headers[ct.id][0]["00100020"]["Value"][0]  # the pseudonym, no PHI


def test_dicom_seg_from_headers_without_sop_class_and_of_an_empty_label_map(tmp_path: Path) -> None:
    """Real files can carry an empty SOP Class UID (ct-abdomen-20); an empty label map still names its segments."""
    case = synthetic_case(tmp_path / "dicom", n_slices=3)
    volume = case.volume()
    headers = [{tag: v for tag, v in h.items() if tag != "00080016"} for h in case.source_headers[volume.id]]
    lm = LabelMap(array=np.zeros(volume.shape, np.uint8), ijk_to_lps=volume.ijk_to_lps, segments=SEGMENTS[:2])
    write_label_map(lm, tmp_path / "empty.dcm", source_headers=headers)
    ds = pydicom.dcmread(tmp_path / "empty.dcm")
    assert {i.ReferencedSOPClassUID for i in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence} == {
        pydicom.uid.CTImageStorage}
    back = read_label_map_file(tmp_path / "empty.dcm", reference=volume)
    assert not back.array.any() and [s.name for s in back.segments] == ["liver", "kidney left"]


@pytest.mark.parametrize("vendor", ["Siemens", "Philips"])
def test_dicom_seg_on_enhanced_multi_frame_sources(tmp_path: Path, vendor: str) -> None:
    """Enhanced MR (per-frame pixel measures on Siemens; two stacks in one file on Philips) round-trips."""
    case = import_path(shared_path("enhanced-mr", vendor)).case
    volume = case.volume()
    headers = case.source_headers[volume.id]
    lm = LabelMap(array=labels_array(volume.shape), ijk_to_lps=volume.ijk_to_lps, segments=SEGMENTS)
    write_label_map(lm, tmp_path / "mr.dcm", source_headers=headers)
    back = read_label_map_file(tmp_path / "mr.dcm", reference=volume)
    np.testing.assert_array_equal(back.array, lm.array)
    source_positions = {tuple(float(x) for x in frame.PlanePositionSequence[0].ImagePositionPatient)
                        for h in headers for frame in pydicom.Dataset.from_json(h).PerFrameFunctionalGroupsSequence}
    ds = pydicom.dcmread(tmp_path / "mr.dcm")
    assert {tuple(float(x) for x in f.PlanePositionSequence[0].ImagePositionPatient)
            for f in ds.PerFrameFunctionalGroupsSequence} <= source_positions
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == volume.series.series_instance_uid
