"""Fill between slices (shape-based interpolation) against analytic shapes on anisotropic grids."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from segmentation.slice_interpolation import fill_between_slices, outlined_slices

SPACING = (0.8, 0.6, 2.0)  # mm along i, j, k


def _ellipsoid(shape: tuple[int, int, int], radii_mm: tuple[float, float, float]) -> np.ndarray:
    k, j, i = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    center = [(n - 1) / 2 for n in shape]
    return (((i - center[2]) * SPACING[0] / radii_mm[0]) ** 2 + ((j - center[1]) * SPACING[1] / radii_mm[1]) ** 2
            + ((k - center[0]) * SPACING[2] / radii_mm[2]) ** 2) <= 1.0


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


@pytest.mark.parametrize(("axis", "step"), [(0, 3), (0, 5), (1, 6), (2, 4)])
def test_an_ellipsoid_outlined_every_few_slices_is_filled_back(axis: int, step: int) -> None:
    truth = _ellipsoid((31, 61, 51), (16.0, 15.0, 26.0))
    outlined = np.zeros_like(truth)
    slices = [slice(None)] * 3
    nonempty = outlined_slices(truth, axis=axis)
    kept = list(range(int(nonempty[0]) + 1, int(nonempty[-1]), step))
    for index in kept:
        slices[axis] = index
        outlined[tuple(slices)] = truth[tuple(slices)]
    before = outlined.copy()
    filled = fill_between_slices(outlined, axis=axis, spacing_mm=SPACING)
    np.testing.assert_array_equal(outlined, before)  # the input is not modified
    np.testing.assert_array_equal(outlined_slices(filled, axis=axis), np.arange(kept[0], kept[-1] + 1))
    inside = [slice(None)] * 3
    inside[axis] = slice(kept[0], kept[-1] + 1)
    region = tuple(inside)
    assert _dice(filled[region], truth[region]) >= 0.95
    assert filled[region].sum() == pytest.approx(truth[region].sum(), rel=0.05)
    for index in kept:  # the outlines are kept exactly
        slices[axis] = index
        np.testing.assert_array_equal(filled[tuple(slices)], truth[tuple(slices)])


def test_two_outlines_of_a_moving_disc_give_the_shapes_in_between() -> None:
    """A disc of radius 6 mm outlined at k = 0 and k = 4, shifted by 4 mm: the middle slice is the same
    disc half-way (exactly where the linear interpolation of the two distance maps is zero)."""
    shape = (5, 40, 40)
    j, i = np.meshgrid(np.arange(40) * SPACING[1], np.arange(40) * SPACING[0], indexing="ij")
    disc = [((i - x) ** 2 + (j - 12.0) ** 2) <= 36.0 for x in (12.0, 16.0, 14.0)]
    outlined = np.zeros(shape, bool)
    outlined[0], outlined[4] = disc[0], disc[1]
    filled = fill_between_slices(outlined, axis=0, spacing_mm=SPACING)
    assert _dice(filled[2], disc[2]) >= 0.95
    assert filled[1:4].any(axis=(1, 2)).all()


def test_an_oblique_vessel_whose_outlines_do_not_overlap_moves_instead_of_splitting() -> None:
    """A tube of radius 2.5 mm whose centre moves 9 mm between outlined slices 0 and 4 (its outlines are
    4 mm apart): every slice between holds one disc of the tube's cross-section where the tube is."""
    shape = (5, 40, 50)
    j, i = np.meshgrid(np.arange(40) * SPACING[1], np.arange(50) * SPACING[0], indexing="ij")
    truth = np.stack([((i - (12.0 + 9.0 * k / 4)) ** 2 + (j - 12.0) ** 2) <= 2.5**2 for k in range(5)])
    outlined = np.zeros(shape, bool)
    outlined[[0, 4]] = truth[[0, 4]]
    assert not (truth[0] & truth[4]).any()
    filled = fill_between_slices(outlined, axis=0, spacing_mm=SPACING)
    for k in (1, 2, 3):
        assert ndimage.label(filled[k])[1] == 1
        assert _dice(filled[k], truth[k]) >= 0.85, k
    # a second, separate piece that overlaps its partner is interpolated as before
    still = np.zeros(shape, bool)
    still[[0, 4], 30:36, 40:46] = True
    both = fill_between_slices(outlined | still, axis=0, spacing_mm=SPACING)
    np.testing.assert_array_equal(both, filled | fill_between_slices(still, axis=0, spacing_mm=SPACING))


def test_nothing_to_fill_leaves_the_mask_as_it_was() -> None:
    solid = _ellipsoid((11, 21, 21), (5.0, 5.0, 8.0))
    np.testing.assert_array_equal(fill_between_slices(solid, axis=0, spacing_mm=SPACING), solid)
    with pytest.raises(ValueError, match="axis"):
        fill_between_slices(solid, axis=3, spacing_mm=SPACING)


@pytest.mark.parametrize(("value", "name", "floor"), [(5, "liver", 0.97), (1, "spleen", 0.97), (52, "aorta", 0.95),
                                                      (32, "vertebrae_T12", 0.80)])
def test_real_organs_outlined_every_third_slice(value: int, name: str, floor: float) -> None:
    """ct-abdomen-20 (2 mm slices): the reference structure outlined on every third slice (6 mm), as a user
    would draw it, is filled back; Dice in the filled slices (measured 0.990, 0.987, 0.968, 0.845)."""
    from tests.conftest import shared_path
    from workstation.io.volume_files import read_label_map

    labels = read_label_map(shared_path("ct-abdomen-20", "reference", "labels.nii.gz"))
    truth = labels.array == value
    present = outlined_slices(truth, axis=0)
    kept = sorted({*range(int(present[0]), int(present[-1]) + 1, 3), int(present[-1])})
    outlined = np.zeros_like(truth)
    outlined[kept] = truth[kept]
    filled = fill_between_slices(outlined, axis=0, spacing_mm=labels.spacing_mm)
    between = np.setdiff1d(np.arange(present[0], present[-1] + 1), kept)
    assert _dice(filled[between], truth[between]) >= floor, name
