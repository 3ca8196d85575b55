"""De-identification of imported headers: nothing identifying reaches the bundle, sources stay untouched."""

from __future__ import annotations

import gzip
import hashlib
import re
import zlib
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from tests.workstation.dicom.synthetic import PHI, STUDY_DATE, SyntheticSeries, write_axial
from workstation.bundle import load_case, save_case
from workstation.dicom.deidentify import Deidentifier
from workstation.importer import import_path

UID_PATTERN = re.compile(r"^[0-9]+(\.[0-9]+)*$")
SERIES_UID, STUDY_UID, SOP_UID, FOR_UID = "0020000E", "0020000D", "00080018", "00200052"
PATIENT_NAME, PATIENT_ID = "00100010", "00100020"


def bundle_texts(root: Path) -> dict[str, bytes]:
    """Every file of a bundle as bytes, gzip streams (``.gz`` files, gzip-encoded NRRD data) inflated."""
    texts = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        elif path.suffix == ".nrrd" and b"\n\n" in data:
            header, _, payload = data.partition(b"\n\n")
            if b"encoding: gzip" in header:
                data = header + b"\n\n" + zlib.decompress(payload, 47)
        texts[str(path.relative_to(root))] = data
    return texts


def file_digests(series: SyntheticSeries) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in series.files}


def values(headers: list[dict[str, Any]], tag: str) -> list[str]:
    return [h[tag]["Value"][0] if "Value" in h.get(tag, {}) else "" for h in headers]


def import_and_save(folder: Path, bundle: Path, **kwargs: Any) -> Any:
    result = import_path(folder, **kwargs)
    save_case(result.case, bundle)
    return result


def test_no_identifying_value_reaches_any_file_of_the_bundle(tmp_path: Path) -> None:
    series = write_axial(tmp_path / "src", n=6, rows=16, cols=16, description="Head Zebulon protocol")
    before = file_digests(series)
    result = import_and_save(tmp_path / "src", tmp_path / "case")
    texts = bundle_texts(tmp_path / "case")
    assert any(name.startswith("dicom/") for name in texts), "no de-identified headers were stored"
    secrets = [*PHI.values(), "Zebulon", STUDY_DATE]
    for name, data in texts.items():
        for secret in secrets:
            assert secret.encode() not in data, f"{secret!r} found in {name}"
            assert secret.replace("^", " ").encode() not in data, f"{secret!r} found in {name}"
    assert file_digests(series) == before, "a source file was modified"
    summary = result.case.deidentification
    assert summary["deidentified"] and summary["dates_shifted"] and summary["uids_remapped"]
    for keyword in ("PatientBirthDate", "InstitutionName", "ReferringPhysicianName", "AccessionNumber",
                    "StudyDescription", "SeriesDescription", "StudyID"):
        assert keyword in summary["removed_attributes"]
    for entry in summary["removed_attributes"]:
        assert re.fullmatch(r"[A-Za-z]+|private tags|(private )?\(\w{4}, ?\w{4}\)", entry), entry


def test_uids_are_remapped_consistently(tmp_path: Path) -> None:
    series = write_axial(tmp_path / "src", n=5, rows=16, cols=16)
    source_sops = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in series.files}
    import_and_save(tmp_path / "src", tmp_path / "case")
    case = load_case(tmp_path / "case")
    [volume] = case.volumes.values()
    headers = case.source_headers[volume.id]
    assert len(headers) == 5
    [series_uid] = set(values(headers, SERIES_UID))
    [study_uid] = set(values(headers, STUDY_UID))
    [for_uid] = set(values(headers, FOR_UID))
    assert series_uid != series.series_uid and study_uid != series.study_uid
    assert volume.series.series_instance_uid == series_uid
    assert volume.series.study_instance_uid == study_uid
    assert volume.series.frame_of_reference_uid == for_uid
    sops = values(headers, SOP_UID)
    assert len(set(sops)) == 5 and not set(sops) & source_sops
    assert all(UID_PATTERN.match(u) and len(u) <= 64 for u in (series_uid, study_uid, for_uid, *sops))
    assert {values(headers, PATIENT_NAME)[0]} == {""}
    assert values(headers, PATIENT_ID)[0].startswith("TWIN-")
    assert volume.series.series_description == ""


def test_empty_source_uids_get_generated_ones(tmp_path: Path) -> None:
    write_axial(tmp_path / "src", n=4, rows=16, cols=16, empty_uids=True)
    import_and_save(tmp_path / "src", tmp_path / "case")
    case = load_case(tmp_path / "case")
    [volume] = case.volumes.values()
    headers = case.source_headers[volume.id]
    [series_uid] = set(values(headers, SERIES_UID))
    [study_uid] = set(values(headers, STUDY_UID))
    sops = values(headers, SOP_UID)
    assert len(set(sops)) == 4
    for uid in (series_uid, study_uid, *sops, volume.series.frame_of_reference_uid):
        assert uid and UID_PATTERN.match(uid) and len(uid) <= 64
    assert volume.series.series_instance_uid == series_uid and volume.series.study_instance_uid == study_uid


def test_dates_are_shifted_by_one_offset(tmp_path: Path) -> None:
    series = write_axial(tmp_path / "src", n=3, rows=16, cols=16)
    deid = Deidentifier(date_offset_days=-400)
    source = pydicom.dcmread(series.files[0])
    out = deid.header(source, series_context="s", instance_context="i")
    assert out.StudyDate == out.SeriesDate == out.ContentDate == "20221211"  # 2024-01-15 minus 400 days
    assert "PatientBirthDate" not in out and "InstitutionName" not in out and "PixelData" not in out
    assert out.PatientIdentityRemoved == "YES" and out.LongitudinalTemporalInformationModified == "MODIFIED"
    assert str(source.PatientName) == PHI["PatientName"] and source.StudyDate == STUDY_DATE  # input untouched


def test_nested_names_free_text_and_private_tags_are_removed(tmp_path: Path) -> None:
    series = write_axial(tmp_path / "src", n=1, rows=8, cols=8)
    ds = pydicom.dcmread(series.files[0])
    item = Dataset()
    item.PersonName = PHI["PatientName"]  # PN inside a kept sequence
    item.FrameComments = "seen by " + PHI["ReferringPhysicianName"]  # LT
    item.FrameAcquisitionDateTime = "20240115101500"
    item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    item.add_new(0x00291010, "LO", "private nested")
    ds.SharedFunctionalGroupsSequence = Sequence([item])
    ds.add_new(0x00091001, "LO", "private top level")
    deid = Deidentifier(date_offset_days=-1)
    out = deid.header(ds, series_context="s", instance_context="i")
    nested = out.SharedFunctionalGroupsSequence[0]
    assert "PersonName" not in nested and "FrameComments" not in nested
    assert nested.FrameAcquisitionDateTime == "20240114101500"
    assert nested.ReferencedSOPInstanceUID == out.SOPInstanceUID != ds.SOPInstanceUID
    assert not any(elem.tag.is_private for elem in out) and not any(elem.tag.is_private for elem in nested)
    removed = set(deid.summary()["removed_attributes"])
    assert {"PersonName", "FrameComments", "private tags"} <= removed
    assert any(entry.startswith("private (0029") for entry in removed)
    assert not any("private nested" in entry or "Zebulon" in entry for entry in removed)


def test_keep_phi_keeps_the_patient_name(tmp_path: Path) -> None:
    series = write_axial(tmp_path / "src", n=3, rows=16, cols=16)
    result = import_and_save(tmp_path / "src", tmp_path / "case", keep_phi=True)
    assert not result.case.deidentification["deidentified"]
    case = load_case(tmp_path / "case")
    [volume] = case.volumes.values()
    headers = case.source_headers[volume.id]
    assert {h[PATIENT_NAME]["Value"][0]["Alphabetic"] for h in headers} == {PHI["PatientName"]}
    assert set(values(headers, SERIES_UID)) == {series.series_uid}
    assert volume.series.series_instance_uid == series.series_uid
    assert any(PHI["PatientName"].encode() in data for data in bundle_texts(tmp_path / "case").values())


@pytest.mark.parametrize("keep_phi", [False, True])
def test_headers_are_stored_for_every_source_file(tmp_path: Path, keep_phi: bool) -> None:
    write_axial(tmp_path / "src", n=7, rows=16, cols=16)
    result = import_path(tmp_path / "src", keep_phi=keep_phi)
    [headers] = result.case.source_headers.values()
    assert len(headers) == 7
    assert all("7FE00010" not in h for h in headers), "pixel data stored in the headers"


def test_identifying_attributes_inside_sequences_are_removed() -> None:
    ds = Dataset()
    ds.SOPInstanceUID = generate_uid()
    item = Dataset()
    item.InstitutionName = "St Elsewhere Hospital"
    item.StationName = "CT-ROOM-7"
    item.SliceThickness = 1.5
    item.ReferencedSOPInstanceUID = "1.2.3.4.5"
    ds.SharedFunctionalGroupsSequence = Sequence([item])
    out = Deidentifier().header(ds, series_context="s", instance_context="i")
    nested = out.SharedFunctionalGroupsSequence[0]
    assert "InstitutionName" not in nested and "StationName" not in nested
    assert nested.SliceThickness == 1.5 and nested.ReferencedSOPInstanceUID != "1.2.3.4.5"
    assert item.InstitutionName == "St Elsewhere Hospital"  # the source is untouched
