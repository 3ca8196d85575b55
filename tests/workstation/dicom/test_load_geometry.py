"""Loaded volumes against known truth: every voxel where the source pixels say it is.

Each synthetic series stores ``round(linear_field(pixel LPS))`` HU. Linear interpolation
reproduces a linear field, so after loading, every voxel inside the source's hull must hold
the field at the voxel's LPS position (``Volume.ijk_to_lps``) within 1 HU (rounding of the
source and of the output), and a volume that needed no resampling must hold the source
pixels exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from tests.workstation.dicom.synthetic import (
    SyntheticSeries,
    linear_field,
    oblique_geometry,
    stepped_positions,
    tilted_geometry,
    write_along_normal,
    write_axial,
    write_series,
    write_tilted,
)
from workstation.dicom.load import load_candidate
from workstation.dicom.scan import SeriesCandidate, scan_path
from workstation.model.volume import Volume

WRONG_THICKNESS = 7.77  # SliceThickness written into every synthetic file; never the spacing


def load_one(folder: Path) -> tuple[SeriesCandidate, Volume]:
    """Scan ``folder`` and load its default candidate, which must form exactly one volume."""
    result = scan_path(folder)
    assert len(result.candidates) == 1, [c.summary() for c in result.candidates]
    candidate = result.default()
    volumes = load_candidate(candidate)
    assert len(volumes) == 1
    return candidate, volumes[0]


def voxel_lps(volume: Volume) -> NDArray[np.float64]:
    """(K, J, I, 3) LPS position of every voxel centre."""
    k, j, i = np.meshgrid(*(np.arange(n) for n in volume.shape), indexing="ij")
    return volume.ijk_to_lps_points(np.stack([i, j, k], axis=-1))


def inside_source_hull(series: SyntheticSeries, points: NDArray[np.float64], eps: float = 1e-6) -> NDArray[np.bool_]:
    """Points lying between two source planes whose pixel grids both cover the point's projection.

    Computed from the written truth only: position along the normal, then the point's
    continuous (row, column) on each of the two planes around it.
    """
    first = series.slices[0]
    normal = first.normal
    along = points @ normal
    planes = series.positions_along_normal
    inside = (along >= planes[0] - 1e-6) & (along <= planes[-1] + 1e-6)
    lower = np.clip(np.searchsorted(planes, along, side="right") - 1, 0, len(planes) - 2)
    rows, cols = first.hu.shape
    for plane_index in (lower, lower + 1):
        origins = np.array([s.position for s in series.slices])[plane_index]
        rel = points - origins
        c = rel @ first.row_dir / first.pixel_spacing[1]
        r = rel @ first.col_dir / first.pixel_spacing[0]
        inside &= (c >= -eps) & (c <= cols - 1 + eps) & (r >= -eps) & (r <= rows - 1 + eps)
    return inside


def assert_linear_field_reproduced(volume: Volume, series: SyntheticSeries, *, min_inside: float) -> None:
    """Every voxel inside the source hull equals the field at its LPS position within 1 HU."""
    points = voxel_lps(volume)
    inside = inside_source_hull(series, points)
    assert inside.mean() >= min_inside, f"only {inside.mean():.2%} of the voxels are inside the source hull"
    error = np.abs(volume.array.astype(float) - np.round(linear_field(points)))
    worst = np.unravel_index(np.argmax(np.where(inside, error, 0)), error.shape)
    assert error[inside].max() <= 1.0, (f"voxel (k, j, i)={worst} at {points[worst]} holds {volume.array[worst]}, "
                                        f"field says {linear_field(points[worst]):.2f}")


def assert_source_pixels_sampled_back(volume: Volume, series: SyntheticSeries, *, tolerance: float,
                                      n_pixels: int = 300, seed: int = 7) -> None:
    """Random pixels of random source slices, sampled at their LPS positions, give their values back.

    Only pixels whose surrounding voxels all exist and lie inside the source hull count
    (trilinear sampling reads those 8 voxels); at least 60% of the drawn pixels must qualify.
    """
    rng = np.random.default_rng(seed)
    rows, cols = series.slices[0].hu.shape
    picks = rng.integers(0, len(series.slices), n_pixels)
    r = rng.integers(0, rows, n_pixels)
    c = rng.integers(0, cols, n_pixels)
    points = np.array([series.slices[s].pixel_lps(rr, cc) for s, rr, cc in zip(picks, r, c, strict=True)])
    expected = np.array([series.slices[s].hu[rr, cc] for s, rr, cc in zip(picks, r, c, strict=True)])
    ijk = volume.lps_to_ijk_points(points)
    low, high = np.floor(ijk + 1e-6).astype(int), np.ceil(ijk - 1e-6).astype(int)
    corners = np.array([[a, b, d] for a in (0, 1) for b in (0, 1) for d in (0, 1)])
    neighbours = np.where(corners[None] == 0, low[:, None, :], high[:, None, :])  # the voxels trilinear reads
    size = np.array(volume.size_ijk)
    on_grid = np.all((neighbours >= 0) & (neighbours <= size - 1), axis=(1, 2))
    neighbour_lps = volume.ijk_to_lps_points(neighbours.reshape(-1, 3))
    usable = on_grid & inside_source_hull(series, neighbour_lps).reshape(n_pixels, 8).all(axis=1)
    assert usable.mean() >= 0.6, f"only {usable.mean():.0%} of the random pixels are away from the hull's edge"
    sampled = volume.sample(points[usable])
    assert not np.any(np.isnan(sampled))
    np.testing.assert_allclose(sampled, expected[usable], atol=tolerance, rtol=0)


def assert_covers_every_source_pixel(volume: Volume, series: SyntheticSeries) -> None:
    """The grid holds every source pixel centre (within half a voxel of the outer centres)."""
    points = np.concatenate([s.pixel_lps().reshape(-1, 3) for s in series.slices])
    ijk = volume.lps_to_ijk_points(points)
    size = np.array(volume.size_ijk)
    assert np.all(ijk >= -0.5 - 1e-6) and np.all(ijk <= size - 0.5 + 1e-6)


def assert_exact_source_pixels(volume: Volume, series: SyntheticSeries) -> None:
    """No resampling: slice k is source plane k (true order) pixel for pixel, at the same LPS positions."""
    assert volume.shape == (len(series.slices), *series.slices[0].hu.shape)
    for k, truth in enumerate(series.slices):
        np.testing.assert_array_equal(volume.array[k], truth.hu)
        rows, cols = truth.hu.shape
        for r, c in ((0, 0), (rows - 1, 0), (0, cols - 1), (rows - 1, cols - 1)):
            np.testing.assert_allclose(volume.ijk_to_lps_points([c, r, k]), truth.pixel_lps(r, c), atol=1e-4)


# Series that need no resampling ---------------------------------------------------------------------------

@pytest.mark.parametrize("slope", [1.0, 0.5])
def test_axial_shuffled_loads_source_pixels_exactly(tmp_path: Path, slope: float) -> None:
    """Shuffled files and InstanceNumbers, non-square pixels and grid, wrong SliceThickness."""
    series = write_axial(tmp_path / "axial", n=12, spacing=2.5, rows=24, cols=32, pixel_spacing=(0.9, 0.7),
                         slope=slope)
    candidate, volume = load_one(tmp_path / "axial")
    assert volume.spacing_mm == pytest.approx([0.7, 0.9, 2.5])
    assert volume.spacing_mm[2] != pytest.approx(WRONG_THICKNESS)
    np.testing.assert_allclose(volume.direction, np.eye(3), atol=1e-9)
    assert_exact_source_pixels(volume, series)
    assert_linear_field_reproduced(volume, series, min_inside=0.999)
    assert_source_pixels_sampled_back(volume, series, tolerance=1e-3)
    assert volume.modality == "CT" and volume.provenance["values"] == "Hounsfield units"
    assert not volume.provenance["geometry"]["resampled"]
    assert volume.provenance["geometry"]["slice_thickness_mm"] == pytest.approx(WRONG_THICKNESS)
    assert candidate.notes == []


def test_oblique_orientation_loads_source_pixels_exactly(tmp_path: Path) -> None:
    row, col = oblique_geometry(25.0)
    series = write_along_normal(tmp_path / "oblique", [1.8 * n for n in range(10)], row_dir=row, col_dir=col,
                                rows=24, cols=32, pixel_spacing=(0.8, 1.1))
    candidate, volume = load_one(tmp_path / "oblique")
    assert candidate.orientation == "oblique"
    np.testing.assert_allclose(volume.direction, np.column_stack([row, col, np.cross(row, col)]), atol=1e-6)
    assert volume.spacing_mm == pytest.approx([1.1, 0.8, 1.8])
    assert_exact_source_pixels(volume, series)
    assert_linear_field_reproduced(volume, series, min_inside=0.999)
    assert_source_pixels_sampled_back(volume, series, tolerance=1e-3)


def test_feet_first_order_is_sorted_along_the_normal(tmp_path: Path) -> None:
    """Positions written with decreasing z and shuffled InstanceNumbers still load in spatial order."""
    positions = stepped_positions((-12, 4, 80), (0, 0, -2.0), range(10))
    series = write_series(tmp_path / "ff", positions, seed=3)
    _, volume = load_one(tmp_path / "ff")
    assert volume.ijk_to_lps[2, 2] == pytest.approx(2.0)  # k runs along +z, from the lowest plane
    assert volume.origin_lps[2] == pytest.approx(62.0)
    assert_exact_source_pixels(volume, series)


def test_empty_uids_still_load(tmp_path: Path) -> None:
    series = write_axial(tmp_path / "nouid", n=6, empty_uids=True)
    candidate, volume = load_one(tmp_path / "nouid")
    assert candidate.series_instance_uid == ""
    assert_exact_source_pixels(volume, series)


# Series that are resampled onto an orthogonal grid ---------------------------------------------------------

@pytest.mark.parametrize("tilt_deg", [15.0, -18.5])
def test_gantry_tilt_is_resampled_with_every_voxel_on_the_field(tmp_path: Path, tilt_deg: float) -> None:
    series = write_tilted(tmp_path / "tilt", n=12, tilt_deg=tilt_deg, table_step=3.0, rows=32, cols=28,
                          pixel_spacing=(1.0, 1.2))
    candidate, volume = load_one(tmp_path / "tilt")
    true_spacing = 3.0 * np.cos(np.radians(tilt_deg))
    assert volume.spacing_mm == pytest.approx([1.2, 1.0, true_spacing])
    assert any(f"gantry tilt {abs(tilt_deg):.2f} deg" in note for note in candidate.notes)
    assert volume.provenance["geometry"]["resampled"]
    assert volume.provenance["geometry"]["tilt_deg"] == pytest.approx(abs(tilt_deg), abs=1e-3)
    assert any("gantry tilt" in w for w in volume.provenance["warnings"])
    # Orthogonal grid: i, j, k along the planes' rows, columns and normal.
    first = series.slices[0]
    np.testing.assert_allclose(volume.direction, np.column_stack([first.row_dir, first.col_dir, first.normal]),
                               atol=1e-6)
    # The grid widened to hold the sheared planes: 11 steps of 3 mm * sin(tilt) along the columns, rounded up.
    drift_rows = 11 * 3.0 * abs(np.sin(np.radians(tilt_deg))) / 1.0
    assert volume.shape[1] == 32 + int(np.ceil(drift_rows))
    assert_covers_every_source_pixel(volume, series)
    assert_linear_field_reproduced(volume, series, min_inside=0.65)
    assert_source_pixels_sampled_back(volume, series, tolerance=1.5)


def test_sheared_oblique_stack_is_resampled(tmp_path: Path) -> None:
    """Oblique planes whose origins drift in-plane along both row and column while stepping."""
    row, col = oblique_geometry(40.0, axis=(0.3, -1.0, 0.4))
    normal = np.cross(row, col)
    step = 2.0 * normal + 0.31 * row - 0.23 * col  # drifts of 3.1 and 2.3 pixels over the stack
    series = write_series(tmp_path / "shear", stepped_positions((3, -7, 20), step, range(10)), row_dir=row,
                          col_dir=col, rows=30, cols=30, pixel_spacing=(0.9, 0.9))
    candidate, volume = load_one(tmp_path / "shear")
    assert volume.spacing_mm[2] == pytest.approx(2.0)
    assert any("gantry tilt" in note for note in candidate.notes)
    assert_covers_every_source_pixel(volume, series)
    assert_linear_field_reproduced(volume, series, min_inside=0.65)
    assert_source_pixels_sampled_back(volume, series, tolerance=1.5)


def test_uneven_spacing_is_resampled_with_every_voxel_on_the_field(tmp_path: Path) -> None:
    offsets = list(np.cumsum([0, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3]))
    series = write_series(tmp_path / "uneven", stepped_positions((-10, -5, 12), (0, 0, 1), offsets), rows=24,
                          cols=24)
    candidate, volume = load_one(tmp_path / "uneven")
    assert any("uneven slice spacing" in note for note in candidate.notes)
    assert volume.provenance["geometry"]["uneven_spacing"]
    np.testing.assert_allclose(volume.provenance["geometry"]["positions_mm"], series.positions_along_normal,
                               atol=1e-3)
    assert volume.shape[0] == 13
    assert volume.spacing_mm[2] == pytest.approx(25.0 / 12)
    assert volume.origin_lps == pytest.approx([-10, -5, 12])
    assert_covers_every_source_pixel(volume, series)
    assert_linear_field_reproduced(volume, series, min_inside=0.999)
    assert_source_pixels_sampled_back(volume, series, tolerance=1.5)


def test_missing_slice_keeps_the_true_spacing_and_interpolates_the_gap(tmp_path: Path) -> None:
    offsets = [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]  # plane 5 missing
    series = write_series(tmp_path / "gap", stepped_positions((4, 2, -30), (0, 0, 2.5), offsets), rows=24, cols=24)
    candidate, volume = load_one(tmp_path / "gap")
    assert any("1 missing slice(s)" in note for note in candidate.notes)
    assert volume.provenance["geometry"]["missing_slices"] == 1
    assert volume.shape[0] == 12
    assert volume.spacing_mm[2] == pytest.approx(2.5)
    # Source planes sit exactly on the grid: those slices are the source pixels themselves.
    for truth, k in zip(series.slices, offsets, strict=True):
        np.testing.assert_array_equal(volume.array[k], truth.hu)
    assert_linear_field_reproduced(volume, series, min_inside=0.999)
    assert_source_pixels_sampled_back(volume, series, tolerance=1e-3)


def test_missing_slice_in_a_tilted_stack(tmp_path: Path) -> None:
    tilt = 12.0
    row, col = tilted_geometry(tilt)
    offsets = [0, 1, 2, 3, 5, 6, 7, 8, 9]
    series = write_series(tmp_path / "tiltgap", stepped_positions((0, 0, 0), (0, 0, 2.0), offsets), row_dir=row,
                          col_dir=col, rows=30, cols=24)
    candidate, volume = load_one(tmp_path / "tiltgap")
    notes = " | ".join(candidate.notes)
    assert "gantry tilt 12.00 deg" in notes and "1 missing slice(s)" in notes
    assert volume.shape[0] == 10
    assert volume.spacing_mm[2] == pytest.approx(2.0 * np.cos(np.radians(tilt)))
    assert_linear_field_reproduced(volume, series, min_inside=0.65)
    assert_source_pixels_sampled_back(volume, series, tolerance=1.5)


SHEARED_CASES = {
    "uneven tilt": ([0, 2, 4, 6, 9, 12, 15, 18], (0, 0, 1.0), tilted_geometry(10.0)),
    "tilt about y": (list(range(10)), (0, 0, 2.5), oblique_geometry(20.0, axis=(0, 1, 0))),
    "coronal shear": (list(range(10)), (0.5, -2.0, 0.3), ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0))),
}


@pytest.mark.parametrize("case", list(SHEARED_CASES))
def test_other_sheared_stacks_reproduce_the_field(tmp_path: Path, case: str) -> None:
    offsets, step, (row, col) = SHEARED_CASES[case]
    series = write_series(tmp_path / "s", stepped_positions((0, 0, 0), step, offsets), row_dir=row, col_dir=col,
                          rows=24, cols=20, pixel_spacing=(1.1, 0.9))
    candidate, volume = load_one(tmp_path / "s")
    assert any("gantry tilt" in note for note in candidate.notes)
    assert volume.spacing_mm[2] <= np.diff(series.positions_along_normal).min() + 1e-6
    assert_covers_every_source_pixel(volume, series)
    assert_linear_field_reproduced(volume, series, min_inside=0.6)
    assert_source_pixels_sampled_back(volume, series, tolerance=1.5)


def test_resampled_grid_holds_every_source_pixel_centre(tmp_path: Path) -> None:
    offsets, step, (row, col) = SHEARED_CASES["coronal shear"]  # drift of 2.45 rows over the stack
    series = write_series(tmp_path / "s", stepped_positions((0, 0, 0), step, offsets), row_dir=row, col_dir=col,
                          rows=24, cols=20, pixel_spacing=(1.1, 0.9))
    _, volume = load_one(tmp_path / "s")
    points = np.concatenate([s.pixel_lps().reshape(-1, 3) for s in series.slices])
    ijk = volume.lps_to_ijk_points(points)
    assert np.all(ijk >= -1e-6) and np.all(ijk <= np.array(volume.size_ijk) - 1 + 1e-6)


def test_values_follow_the_field_not_the_file_order(tmp_path: Path) -> None:
    """A field that only varies along z exposes any slice-order mistake as a large error."""
    field: Callable[[NDArray[np.float64]], NDArray[np.float64]] = lambda p: 40.0 * p[..., 2]  # noqa: E731
    series = write_axial(tmp_path / "z", n=10, spacing=2.0, start=(0, 0, -10), values=field, seed=11)
    _, volume = load_one(tmp_path / "z")
    np.testing.assert_array_equal(volume.array[:, 5, 5], [40.0 * (-10 + 2.0 * k) for k in range(10)])
    assert_exact_source_pixels(volume, series)


def test_the_field_check_catches_misplaced_voxels(tmp_path: Path) -> None:
    """The checks above fail for a volume half a slice off, in reversed order, or on SliceThickness spacing."""
    series = write_tilted(tmp_path / "tilt", n=10, tilt_deg=15.0, table_step=3.0)
    _, volume = load_one(tmp_path / "tilt")
    half_slice = np.eye(4)
    half_slice[:3, 3] = 0.5 * volume.spacing_mm[2] * volume.direction[:, 2]
    thickness = volume.ijk_to_lps.copy()
    thickness[:3, 2] *= WRONG_THICKNESS / volume.spacing_mm[2]
    wrong = [Volume(array=volume.array, ijk_to_lps=half_slice @ volume.ijk_to_lps),
             Volume(array=volume.array[::-1], ijk_to_lps=volume.ijk_to_lps),
             Volume(array=volume.array, ijk_to_lps=thickness)]
    for bad in wrong:
        with pytest.raises(AssertionError):
            assert_linear_field_reproduced(bad, series, min_inside=0.2)
        with pytest.raises(AssertionError):
            assert_source_pixels_sampled_back(bad, series, tolerance=1.5)
