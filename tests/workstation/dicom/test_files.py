"""Where files come from: folders (recursive), zip archives and DICOMDIR media."""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.fileset import FileSet

from tests.workstation.dicom.synthetic import SyntheticSeries, write_axial, write_tilted
from workstation.dicom.files import dicom_source
from workstation.dicom.load import load_candidate
from workstation.dicom.scan import scan_path
from workstation.errors import InputError
from workstation.importer import import_path


def zip_series(series: SyntheticSeries, archive: Path, *, folder: str = "study/series") -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in series.files:
            zf.write(path, f"{folder}/{path.name}")
    return archive


def write_dicomdir(series: SyntheticSeries, media: Path) -> Path:
    """Copy ``series`` onto DICOM media (PT*/ST*/SE*/IM* files) with a DICOMDIR."""
    fileset = FileSet()
    for path in series.files:
        fileset.add(pydicom.dcmread(path))
    fileset.write(media)
    return media / "DICOMDIR"


@pytest.mark.parametrize("make", [write_axial, write_tilted], ids=["axial", "tilted"])
def test_zip_imports_the_same_volume_as_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   make: Callable[..., SyntheticSeries]) -> None:
    """64x64 planes: pixel data larger than the header reader defers, read after the scan."""
    series = make(tmp_path / "folder", n=8, rows=64, cols=64)
    archive = zip_series(series, tmp_path / "series.zip")
    extract_root = tmp_path / "tmp"
    extract_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(extract_root))
    from_folder = import_path(tmp_path / "folder").case
    from_zip = import_path(archive).case
    [a], [b] = from_folder.volumes.values(), from_zip.volumes.values()
    np.testing.assert_array_equal(a.array, b.array)
    np.testing.assert_allclose(a.ijk_to_lps, b.ijk_to_lps)
    assert a.provenance["warnings"] == b.provenance["warnings"]
    assert list(extract_root.iterdir()) == [], "the extracted copy of the zip was left behind"


def test_zip_members_are_shown_under_the_archive_name(tmp_path: Path) -> None:
    series = write_axial(tmp_path / "folder", n=4)
    archive = zip_series(series, tmp_path / "upload.zip")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("study/readme.txt", "hello")
    result = scan_path(archive)
    assert result.rejected == [(str(archive / "study" / "readme.txt"), "not a DICOM file")]
    assert result.candidates[0].frames[0].display.startswith(str(archive / "study" / "series"))
    assert result.source == str(archive)


def test_zip_member_escaping_the_archive_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok/a.txt", "a")
        zf.writestr("../../escaped.txt", "b")
    with pytest.raises(InputError, match="points outside the archive"):
        scan_path(archive)
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_damaged_zip_is_an_input_error(tmp_path: Path) -> None:
    series = write_axial(tmp_path / "folder", n=3)
    archive = tmp_path / "damaged.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.write(series.files[0], "a.dcm")
    data = bytearray(archive.read_bytes())
    data[400:420] = bytes(20)  # inside the stored member: its CRC no longer matches
    archive.write_bytes(bytes(data))
    assert zipfile.is_zipfile(archive)
    with pytest.raises(InputError, match=r"damaged\.zip: not a readable zip archive"):
        scan_path(archive)


def test_folders_are_searched_recursively_skipping_hidden_entries(tmp_path: Path) -> None:
    write_axial(tmp_path / "a" / "b" / "c", n=5)
    write_axial(tmp_path / ".cache", n=5)
    (tmp_path / "a" / ".DS_Store").write_bytes(b"junk")
    with dicom_source(tmp_path) as (source, root):
        assert len(source.paths) == 5 and root == tmp_path
        assert all(".cache" not in str(p) for p in source.paths)
    result = scan_path(tmp_path)
    assert result.n_files == 5 and result.rejected == [] and result.default().usable


def test_dicomdir_lists_the_media_files(tmp_path: Path) -> None:
    series = write_axial(tmp_path / "src", n=6, rows=24, cols=24)
    dicomdir = write_dicomdir(series, tmp_path / "media")
    (tmp_path / "media" / "unlisted.dcm").write_bytes(series.files[0].read_bytes())  # not in the DICOMDIR
    with dicom_source(dicomdir) as (source, root):
        assert source.from_dicomdir and source.problems == [] and root == tmp_path / "media"
        assert len(source.paths) == 6 and all(p.name.startswith("IM") for p in source.paths)
    result = scan_path(dicomdir)
    assert result.rejected == [] and result.n_files == 6
    [volume] = load_candidate(result.default())
    [reference] = load_candidate(scan_path(tmp_path / "src").default())
    np.testing.assert_array_equal(volume.array, reference.array)
    np.testing.assert_allclose(volume.ijk_to_lps, reference.ijk_to_lps)


def test_dicomdir_with_missing_files_falls_back_to_its_folder(tmp_path: Path) -> None:
    series = write_axial(tmp_path / "src", n=6)
    dicomdir = write_dicomdir(series, tmp_path / "media")
    images = sorted(p for p in (tmp_path / "media").rglob("IM*"))
    images[0].unlink()
    result = scan_path(dicomdir)
    assert len(result.rejected) == 1
    shown, reason = result.rejected[0]
    assert shown == str(dicomdir) and "1 missing file(s)" in reason and "scanned its folder instead" in reason
    assert len(result.default().frames) == 5


def test_unreadable_dicomdir_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "DICOMDIR").write_bytes(b"\0" * 10)
    with pytest.raises(InputError, match="DICOMDIR: not a readable DICOMDIR"):
        scan_path(tmp_path / "DICOMDIR")
