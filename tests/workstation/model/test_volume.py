"""Volume: the [k, j, i] / ijk_to_lps contract, derived geometry, sampling, immutability."""

from __future__ import annotations

import numpy as np
import pytest

from workstation.geometry import orientation_code, plane_name
from workstation.model import Volume


def rotation(axis: np.ndarray, angle_deg: float) -> np.ndarray:
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.radians(angle_deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def test_array_index_order_and_affine_contract() -> None:
    array = np.zeros((4, 5, 6), dtype=np.int16)  # k, j, i
    array[3, 2, 1] = 7
    direction = rotation([1, 2, 3], 30)
    vol = Volume.from_geometry(array, spacing_mm=[0.5, 0.7, 2.0], origin_lps=[10, -20, 30], direction=direction)
    assert vol.shape == (4, 5, 6)
    assert vol.size_ijk == (6, 5, 4)
    expected = np.array([10, -20, 30]) + direction @ (np.array([1, 2, 3]) * [0.5, 0.7, 2.0])
    np.testing.assert_allclose(vol.ijk_to_lps @ [1, 2, 3, 1], [*expected, 1])
    np.testing.assert_allclose(vol.spacing_mm, [0.5, 0.7, 2.0])
    np.testing.assert_allclose(vol.direction, direction, atol=1e-12)
    np.testing.assert_allclose(vol.origin_lps, [10, -20, 30])
    assert vol.sample(expected[np.newaxis], order=0)[0] == 7
    np.testing.assert_allclose(vol.lps_to_ijk_points(expected), [1, 2, 3], atol=1e-9)


def test_trilinear_sampling_reproduces_a_linear_field_and_marks_outside() -> None:
    vol = Volume.from_geometry(np.zeros((6, 7, 8)), spacing_mm=[1.5, 1.0, 3.0], origin_lps=[-5, 4, 100],
                               direction=rotation([0, 1, 1], 20))
    k, j, i = np.meshgrid(*(np.arange(n) for n in vol.shape), indexing="ij")
    lps = vol.ijk_to_lps_points(np.stack([i, j, k], axis=-1))
    field = lps @ [0.3, -0.2, 0.1] + 5
    vol = vol.with_array(field)
    rng = np.random.default_rng(1)
    ijk = rng.uniform([0, 0, 0], [7, 6, 5], size=(200, 3))
    points = vol.ijk_to_lps_points(ijk)
    np.testing.assert_allclose(vol.sample(points), points @ [0.3, -0.2, 0.1] + 5, atol=1e-9)
    far = vol.ijk_to_lps_points([[20.0, 0, 0]])
    assert np.isnan(vol.sample(far)[0])


def test_volume_does_not_modify_or_alias_writable_input() -> None:
    source = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    vol = Volume.from_geometry(source, spacing_mm=[1, 1, 1])
    assert source.flags.writeable
    with pytest.raises(ValueError):
        vol.array[0, 0, 0] = 5
    changed = vol.with_array(source * 2)
    assert changed is not vol and vol.array[0, 0, 1] == 1 and changed.array[0, 0, 1] == 2


@pytest.mark.parametrize(
    ("affine", "message"),
    [(np.zeros((3, 3)), "4x4"), (np.diag([1.0, 1.0, 0.0, 1.0]), "singular"), (np.full((4, 4), np.nan), "finite")],
)
def test_invalid_geometry_is_refused(affine: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Volume(array=np.zeros((2, 2, 2)), ijk_to_lps=affine)


def test_geometry_dict_is_json_ready_and_orientation_helpers() -> None:
    vol = Volume.from_geometry(np.zeros((2, 3, 4)), spacing_mm=[1, 2, 3], modality="CT")
    info = vol.geometry_dict()
    assert info["shape"] == [2, 3, 4] and info["spacing_mm"] == [1, 2, 3] and info["modality"] == "CT"
    assert info["coordinate_system"] == "LPS"
    assert orientation_code(np.eye(3)) == "LPS"
    assert orientation_code(np.diag([-1, -1, 1])) == "RAS"
    assert plane_name([0, 0, 1]) == "axial" and plane_name([0, 1, 0]) == "coronal"
    assert plane_name([1, 0, 0]) == "sagittal" and plane_name([0, 0.3, 1]) == "oblique"
