"""NIfTI and NRRD: LPS in memory, RAS only on NIfTI disk files; label maps onto a volume's grid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_path
from workstation.errors import InputError, OutputError
from workstation.io.volume_files import read_label_map, read_volume, write_volume
from workstation.model import Volume


def oblique_volume() -> Volume:
    angle = np.radians(25)
    direction = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    rng = np.random.default_rng(0)
    return Volume.from_geometry(rng.integers(-1000, 2000, (6, 7, 8)).astype(np.int16), spacing_mm=[0.6, 0.9, 2.2],
                                origin_lps=[12.5, -40.0, 310.0], direction=direction, modality="CT")


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd"])
def test_round_trip_keeps_voxels_and_lps_geometry(tmp_path: Path, suffix: str) -> None:
    vol = oblique_volume()
    path = tmp_path / f"v{suffix}"
    write_volume(vol, path)
    back = read_volume(path, modality="CT")
    np.testing.assert_array_equal(back.array, vol.array)
    np.testing.assert_allclose(back.ijk_to_lps, vol.ijk_to_lps, atol=1e-4)


def test_nifti_on_disk_is_ras_and_nrrd_is_lps(tmp_path: Path) -> None:
    nib = pytest.importorskip("nibabel")
    vol = oblique_volume()
    write_volume(vol, tmp_path / "v.nii.gz")
    write_volume(vol, tmp_path / "v.nrrd")
    ras_affine = nib.load(tmp_path / "v.nii.gz").affine
    np.testing.assert_allclose(ras_affine, np.diag([-1, -1, 1, 1]) @ vol.ijk_to_lps, atol=1e-4)
    header = (tmp_path / "v.nrrd").read_bytes()[:1000].decode("latin-1")
    assert "space: left-posterior-superior" in header


def test_bad_files_and_formats(tmp_path: Path) -> None:
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(InputError, match=r"junk\.nii\.gz"):
        read_volume(junk)
    with pytest.raises(InputError, match="no such file"):
        read_volume(tmp_path / "absent.nrrd")
    with pytest.raises(OutputError, match="unknown volume format"):
        write_volume(oblique_volume(), tmp_path / "v.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.nii.gz"]


def test_label_map_resampled_onto_another_grid_by_position(tmp_path: Path) -> None:
    vol = Volume.from_geometry(np.zeros((4, 10, 10), np.int16), spacing_mm=[1, 1, 1])
    labels = np.zeros((4, 10, 10), np.uint8)
    labels[1:3, 2:5, 6:9] = 3
    flipped = Volume.from_geometry(labels[:, ::-1, :], spacing_mm=[1, 1, 1], origin_lps=[0, 9, 0],
                                   direction=np.diag([1.0, -1.0, 1.0]))
    write_volume(flipped, tmp_path / "labels.nii.gz")
    lm = read_label_map(tmp_path / "labels.nii.gz", reference=vol)
    np.testing.assert_array_equal(lm.array, labels)
    np.testing.assert_allclose(lm.ijk_to_lps, vol.ijk_to_lps)
    far = Volume.from_geometry(np.zeros((4, 10, 10), np.int16), spacing_mm=[1, 1, 1], origin_lps=[500, 0, 0])
    with pytest.raises(InputError, match="do not overlap"):
        read_label_map(tmp_path / "labels.nii.gz", reference=far)


def test_reference_labels_land_on_the_dicom_ct_grid() -> None:
    """The RAS reference labels of ct-abdomen-20 line up with its DICOM CT: liver on the right, bone bright."""
    from workstation.dicom.load import load_candidate
    from workstation.dicom.scan import scan_path

    root = shared_path("ct-abdomen-20")
    ct = load_candidate(scan_path(root / "dicom").default())[0]
    names = {int(k): v for k, v in json.loads((root / "reference" / "label_names.json").read_text()).items()}
    lm = read_label_map(root / "reference" / "labels.nii.gz", reference=ct)
    assert lm.array.shape == ct.shape
    value = {v: k for k, v in names.items()}
    liver = lm.array == value["liver"]
    spleen = lm.array == value["spleen"]
    assert liver.sum() > 100_000
    hu = ct.array
    assert 60 < hu[liver].mean() < 200  # contrast-enhanced liver parenchyma
    vertebra = lm.array == value["vertebrae_T12"]
    assert hu[vertebra].mean() > 150
    k, j, i = np.nonzero(liver)
    liver_x = ct.ijk_to_lps_points(np.array([i.mean(), j.mean(), k.mean()]))[0]
    k, j, i = np.nonzero(spleen)
    spleen_x = ct.ijk_to_lps_points(np.array([i.mean(), j.mean(), k.mean()]))[0]
    assert liver_x < spleen_x - 50  # LPS: +x is the patient's left; the liver lies on the right


def test_small_nifti_ct_and_labels_share_a_grid() -> None:
    root = shared_path("ct-abdomen-small")
    ct = read_volume(root / "ct.nii.gz", modality="CT")
    lm = read_label_map(root / "labels.nii.gz", reference=ct)
    assert ct.shape == (30, 101, 122) and lm.array.shape == ct.shape
    np.testing.assert_allclose(ct.spacing_mm, [3, 3, 3], atol=1e-3)
    assert lm.present_values().size > 20
