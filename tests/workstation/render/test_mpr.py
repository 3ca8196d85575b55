"""MPR slices: values against trilinear sampling of the volume, in-place updates, oblique planes."""

from __future__ import annotations

import numpy as np
import pytest

from tests.workstation.render.phantom import TRAJECTORY, phantom_volume
from workstation.model import Volume
from workstation.render.mpr import MprSlice, oblique_plane, standard_plane


def _sampled(mpr: MprSlice) -> np.ndarray:
    points = np.asarray(mpr.grid.points)
    return mpr.volume.sample(points, order=1).reshape(mpr.shape)


def _random_volume(direction: np.ndarray | None = None) -> Volume:
    direction = np.eye(3) if direction is None else direction
    rng = np.random.default_rng(3)
    return Volume.from_geometry(rng.integers(-1000, 1500, size=(9, 11, 13)).astype(np.int16),
                                spacing_mm=(0.8, 1.1, 2.5), origin_lps=(-5.0, 7.0, 100.0), direction=direction,
                                modality="CT")


@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
@pytest.mark.parametrize("direction", [np.eye(3), np.diag([-1.0, -1.0, 1.0]), np.array([[0, 1, 0], [1, 0, 0],
                                                                                         [0, 0, -1.0]])])
def test_grid_aligned_slices_equal_trilinear_samples(plane: str, direction: np.ndarray) -> None:
    volume = _random_volume(direction)
    corners = volume.corners_lps()
    center = (corners.min(0) + corners.max(0)) / 2 + 0.3  # between voxel planes: interpolation matters
    mpr = MprSlice(volume, standard_plane(volume, plane, center_lps=center))
    assert mpr._sample_aligned(mpr.plane) is not None  # the fast path was taken
    expected = _sampled(mpr)
    np.testing.assert_allclose(mpr.values, expected, rtol=1e-5, atol=1e-2)
    assert np.isfinite(mpr.values).all()


def test_axial_slice_of_the_phantom_shows_the_bone_disc() -> None:
    volume = phantom_volume()
    mpr = MprSlice(volume, standard_plane(volume, "axial", center_lps=(0, 0, 1.0)))
    points = np.asarray(mpr.grid.points).reshape(*mpr.shape, 3)
    radius = np.hypot(points[..., 0], points[..., 1])
    assert np.all(mpr.values[radius < 8] > 500)  # bone sphere (r 12 mm) cut 1 mm above its centre
    assert np.all(mpr.values[radius > 30] < -900)  # air outside the body


def test_move_updates_the_same_grid_in_place() -> None:
    volume = _random_volume()
    mpr = MprSlice(volume, standard_plane(volume, "axial"))
    grid, before = mpr.grid, mpr.values.copy()
    mpr.move(2.5)
    assert mpr.grid is grid
    assert not np.allclose(mpr.values, before)
    fresh = MprSlice(volume, mpr.plane)
    np.testing.assert_allclose(mpr.values, fresh.values)
    np.testing.assert_allclose(np.asarray(grid.points), np.asarray(fresh.grid.points))


def test_oblique_slice_contains_the_trajectory_and_matches_sampling() -> None:
    volume = phantom_volume()
    plane = oblique_plane(TRAJECTORY)
    for point in (TRAJECTORY.entry_lps, TRAJECTORY.target_lps):
        assert abs(np.dot(np.subtract(point, plane.center_lps), plane.normal)) < 1e-9
    mpr = MprSlice(volume, plane)
    assert mpr._sample_aligned(plane) is None  # general resampling
    np.testing.assert_allclose(mpr.values, _sampled(mpr), rtol=1e-5, atol=1e-2, equal_nan=True)


def test_move_to_a_point_follows_the_normal() -> None:
    volume = _random_volume()
    mpr = MprSlice(volume, standard_plane(volume, "axial"))
    mpr.move_to((0.0, 0.0, 110.0))
    assert mpr.plane.center_lps[2] == pytest.approx(110.0)
    mpr.move(2.0)  # the axial normal points inferior, towards the viewer below the patient
    assert mpr.plane.center_lps[2] == pytest.approx(108.0)


def test_slice_outside_the_volume_is_empty() -> None:
    volume = _random_volume()
    mpr = MprSlice(volume, standard_plane(volume, "axial"))
    mpr.move(1000.0)
    assert np.isnan(mpr.values).all()
