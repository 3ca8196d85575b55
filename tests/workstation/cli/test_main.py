"""The twin command as a user meets it: output, JSON contract, exit codes, no tracebacks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_path
from workstation.cli import data_commands
from workstation.cli import main as cli
from workstation.io.volume_files import read_volume, write_volume
from workstation.model import Volume

TWIN = [sys.executable, "-m", "workstation.cli.main"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TWIN, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def ct_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "case"
    proc = run("import", str(shared_path("ct-abdomen-20", "dicom")), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "importing series 1" in proc.stdout and "wrote case" in proc.stdout
    return out


def test_info_json_contract(ct_case: Path) -> None:
    proc = run("info", str(ct_case), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["coordinate_system"] == "LPS" and info["units"] == "mm"
    (vol,) = info["volumes"]
    assert {"id", "shape", "spacing_mm", "origin_lps", "direction", "ijk_to_lps", "modality"} <= set(vol)
    assert vol["shape"] == [20, 512, 512] and vol["modality"] == "CT"
    np.testing.assert_allclose(vol["spacing_mm"], [0.9765625, 0.9765625, 2.0], atol=1e-6)
    affine = np.array(vol["ijk_to_lps"])
    np.testing.assert_allclose(affine[:3, :3], np.array(vol["direction"]) * vol["spacing_mm"], atol=1e-9)
    np.testing.assert_allclose(affine[:3, 3], vol["origin_lps"])
    assert info["deidentification"]["deidentified"] is True


def test_info_text_and_export(ct_case: Path, tmp_path: Path) -> None:
    proc = run("info", str(ct_case))
    assert proc.returncode == 0 and "volume ct: CT 512x512x20" in proc.stdout
    out = tmp_path / "ct.nii.gz"
    assert run("export-volume", str(ct_case), "-o", str(out)).returncode == 0
    assert read_volume(out).shape == (20, 512, 512)


def test_scan_lists_candidates_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    folder = shared_path("ct-tilt-phantom")
    assert cli.main(["scan", str(folder)]) == 0
    text = capsys.readouterr().out
    assert "gantry tilt 18.50 deg" in text and "set aside" in text and "default for 'twin import': series 1" in text
    assert cli.main(["scan", str(folder), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["series"][0]["size"] == [512, 512, 54]
    assert abs(data["series"][0]["slice_spacing_mm"] - 2.371) < 0.002
    assert any("colour" in r["reason"] for r in data["rejected"])


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_bad_series_choice_and_usage(tmp_path: Path) -> None:
    src = str(shared_path("ct-abdomen-20", "dicom"))
    proc = run("import", src, "-o", str(tmp_path / "c"), "--series", "7")
    assert proc.returncode == 3 and "--series 7" in one_line_error(proc)
    proc = run("import", src, "-o", str(tmp_path / "c"), "--series", "1.2.3.4")
    assert proc.returncode == 3 and "no series with this UID" in one_line_error(proc)
    assert not (tmp_path / "c").exists()
    assert run("import", src).returncode == 2  # -o missing: usage
    assert run("frobnicate").returncode == 2


def test_output_that_is_not_a_bundle_is_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.mkdir()
    (target / "thesis.docx").write_text("years of work")
    proc = run("import", str(shared_path("ct-abdomen-20", "dicom")), "-o", str(target))
    assert proc.returncode == 4 and "not a case bundle" in one_line_error(proc)
    assert [p.name for p in target.iterdir()] == ["thesis.docx"]


def test_damaged_bundle_exit_code(ct_case: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(ct_case, copy)
    volume_file = next((copy / "volumes").iterdir())
    volume_file.write_bytes(volume_file.read_bytes()[:-100])
    proc = run("info", str(copy))
    assert proc.returncode == 5 and volume_file.name in one_line_error(proc)


def test_nifti_import_and_zip_bundle(tmp_path: Path) -> None:
    vol = Volume.from_geometry(np.arange(60, dtype=np.int16).reshape(3, 4, 5), spacing_mm=[1, 2, 3],
                               origin_lps=[1, 2, 3])
    write_volume(vol, tmp_path / "v.nii.gz")
    proc = run("import", str(tmp_path / "v.nii.gz"), "-o", str(tmp_path / "case.zip"))
    assert proc.returncode == 0, proc.stderr
    info = json.loads(run("info", str(tmp_path / "case.zip"), "--json").stdout)
    assert info["volumes"][0]["shape"] == [3, 4, 5]
    np.testing.assert_allclose(info["volumes"][0]["origin_lps"], [1, 2, 3], atol=1e-6)


def test_internal_errors_are_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(args: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(data_commands, "cmd_info", broken)
    assert cli.main(["info", "anything"]) == 1
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: boom" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
