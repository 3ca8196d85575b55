"""Bad input through the command line: exit code 3, one line on stderr naming what and why, nothing written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless

from tests.workstation.dicom.synthetic import save, write_axial, write_series
from workstation.errors import EXIT_BAD_INPUT

TWIN = Path(sys.executable).with_name("twin")


def run_import(source: Path, out: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    return subprocess.run([str(TWIN), "import", str(source), "-o", str(out)], capture_output=True, text=True,
                          timeout=120, env=env, check=False)


def empty_folder(root: Path) -> Path:
    (root / "empty").mkdir()
    return root / "empty"


def random_bytes(root: Path) -> Path:
    folder = root / "random"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for n in range(4):
        (folder / f"file{n}.dcm").write_bytes(rng.bytes(1000 + 500 * n))
    return folder


def truncated(root: Path) -> Path:
    series = write_axial(root / "truncated", n=3, rows=64, cols=64)
    for path in series.files:
        path.write_bytes(path.read_bytes()[:-3000])
    return root / "truncated"


def no_pixel_data(root: Path) -> Path:
    series = write_axial(root / "nopixels", n=3)
    for path in series.files:
        ds = pydicom.dcmread(path)
        del ds.PixelData
        save(ds, path)
    return root / "nopixels"


def single_slice(root: Path) -> Path:
    return write_axial(root / "single", n=1).files[0]


def mixed_orientations_only(root: Path) -> Path:
    folder = root / "mixed"
    for prefix, row, col in (("AX", (1, 0, 0), (0, 1, 0)), ("SAG", (0, 1, 0), (0, 0, -1)),
                             ("COR", (1, 0, 0), (0, 0, -1))):
        write_series(folder, [(0.0, 0.0, 0.0)], row_dir=row, col_dir=col, series_uid="1.2.3.4.5", prefix=prefix)
    return folder


def repeated_positions(root: Path) -> Path:
    folder = root / "repeated"
    positions = [(0.0, 0.0, 2.0 * n) for n in range(4)]
    for prefix in ("A", "B"):
        write_series(folder, positions, series_uid="1.2.3.4.6", study_uid="1.2.3.4", prefix=prefix)
    return folder


def undecodable_jpeg2000(root: Path) -> Path:
    """A 3-slice series declaring JPEG 2000 whose encapsulated fragments are garbage."""
    series = write_axial(root / "j2k", n=3, rows=32, cols=32)
    rng = np.random.default_rng(9)
    for path in series.files:
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
        ds.PixelData = encapsulate([rng.bytes(400)])
        ds["PixelData"].VR = "OB"
        save(ds, path)
    return root / "j2k"


def missing_path(root: Path) -> Path:
    return root / "does-not-exist"


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "empty folder": (empty_folder, r"no files found"),
    "random bytes": (random_bytes, r"not a DICOM file \(4 files\)"),
    "truncated": (truncated, r"truncated file: pixel data needs 8192 bytes, 5192 present \(3 files\)"),
    "no pixel data": (no_pixel_data, r"no pixel data"),
    "single slice": (single_slice, r"single slice: a volume needs at least 2 parallel slices"),
    "mixed orientations only": (mixed_orientations_only, r"no series forms a volume among 3 files.*single slice"),
    "repeated positions": (repeated_positions, r"positions repeat.*refusing to stack them into one volume"),
    "missing path": (missing_path, r"no such file or folder"),
}


def assert_clean_refusal(result: subprocess.CompletedProcess[str], source: Path, out: Path) -> str:
    """Exit 3, no traceback, the input named on stderr, nothing written; returns stderr."""
    assert result.returncode == EXIT_BAD_INPUT, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert result.stderr.startswith("twin import: error: ")
    assert str(source) in result.stderr
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")] == []
    return result.stderr


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_3_with_one_line_and_writes_nothing(tmp_path: Path, case: str) -> None:
    make, reason = CASES[case]
    source = make(tmp_path)
    out = tmp_path / "case"
    stderr = assert_clean_refusal(run_import(source, out), source, out)
    assert stderr.endswith("\n") and stderr.count("\n") == 1, f"not one line: {stderr!r}"
    assert re.search(reason, stderr), stderr


def test_undecodable_compression_exits_3_naming_the_file(tmp_path: Path) -> None:
    source = undecodable_jpeg2000(tmp_path)
    out = tmp_path / "case"
    stderr = assert_clean_refusal(run_import(source, out), source, out)
    first_line = stderr.splitlines()[0]
    assert "cannot decode pixel data (JPEG 2000 Image Compression (Lossless Only))" in first_line
    assert any(f"{source / name}:" in first_line for name in ("IM0000.dcm", "IM0001.dcm", "IM0002.dcm"))


def test_undecodable_compression_error_is_one_line(tmp_path: Path) -> None:
    source = undecodable_jpeg2000(tmp_path)
    out = tmp_path / "case"
    stderr = assert_clean_refusal(run_import(source, out), source, out)
    assert stderr.count("\n") == 1, f"not one line: {stderr!r}"


def test_good_input_imports_with_exit_0(tmp_path: Path) -> None:
    """The same command on a good series succeeds: the refusals above are about their input."""
    source = write_axial(tmp_path / "good", n=4).folder
    out = tmp_path / "case"
    result = run_import(source, out)
    assert result.returncode == 0, result.stderr
    assert (out / "manifest.json").is_file()
    assert "CT 32x32x4 voxels" in result.stdout
