"""The multi-threaded Gaussian filters against scipy.ndimage (their reference) on random 3-D images."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import ndimage

from segmentation.gaussian_filters import correlation_weights, gaussian_filter, gradient_magnitude

# (shape, sigma in voxels, inner region): anisotropic sigmas, halos, single-voxel axes, a skipped axis
CASES = [
    ((12, 30, 40), (0.75, 1.54, 1.54), (slice(2, 10), slice(5, 25), slice(6, 33))),
    ((1, 20, 17), (0.5, 1.0, 2.3), (slice(0, 1), slice(0, 20), slice(3, 10))),
    ((9, 1, 25), (1.2, 0.7, 0.3), (slice(1, 8), slice(0, 1), slice(0, 25))),
    ((3, 4, 5), (3.0, 2.0, 1e-20), (slice(0, 3), slice(1, 3), slice(0, 5))),
    ((7, 9, 2), (2.5, 0.0, 4.0), (slice(0, 7), slice(0, 9), slice(0, 2))),
]
SPACING = (2.0, 0.98, 0.77)


def image(shape: tuple[int, int, int], seed: int = 0) -> NDArray[np.float32]:
    """CT-like values: noise around a few plateaus."""
    rng = np.random.default_rng(seed)
    plateaus = rng.choice([-1000.0, 40.0, 300.0], size=shape)
    return (ndimage.uniform_filter(plateaus, 3) + rng.normal(0, 20, shape)).astype(np.float32)


def scipy_gradient(block: NDArray[np.float32], sigma, spacing, inner, truncate: float) -> NDArray[np.float32]:
    """The numpy/scipy code that :func:`gradient_magnitude` replaces in grow-from-seeds."""
    squared = np.zeros(tuple(len(range(*s.indices(n))) for s, n in zip(inner, block.shape, strict=True)), np.float32)
    for axis in range(3):
        if block.shape[axis] < 2:
            continue
        order = [0, 0, 0]
        order[axis] = 1
        derivative = ndimage.gaussian_filter(block, sigma, order=order, mode="nearest", truncate=truncate)[inner]
        derivative /= np.float32(spacing[axis])
        squared += derivative * derivative
    return np.sqrt(squared)


def ulps(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    """Largest difference in units of the float32 spacing at the larger magnitude."""
    scale = np.spacing(np.maximum(np.abs(a), np.abs(b)).astype(np.float32))
    return float((np.abs(a.astype(np.float64) - b) / scale).max()) if a.size else 0.0


@pytest.mark.parametrize(("shape", "sigma", "inner"), CASES)
@pytest.mark.parametrize("truncate", [3.0, 4.0])
def test_smoothing_equals_scipy(shape, sigma, inner, truncate) -> None:
    block = image(shape)
    before = block.copy()
    expected = ndimage.gaussian_filter(block, sigma, mode="nearest", truncate=truncate)[inner]
    got = gaussian_filter(block, sigma, truncate=truncate, inner=inner)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert ulps(got, expected) <= 2.0
    # same operations in the same order: in practice equal to the last bit
    assert np.count_nonzero(got != expected) <= got.size // 1000
    np.testing.assert_array_equal(block, before)


@pytest.mark.parametrize(("shape", "sigma", "inner"), CASES)
def test_gradient_magnitude_equals_scipy(shape, sigma, inner) -> None:
    block = image(shape, seed=1)
    expected = scipy_gradient(block, sigma, SPACING, inner, truncate=3.0)
    got = gradient_magnitude(block, sigma, SPACING, truncate=3.0, inner=inner)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert ulps(got, expected) <= 2.0
    assert np.count_nonzero(got != expected) <= got.size // 1000


def test_gradient_of_a_linear_ramp_is_its_slope() -> None:
    """Known truth: intensity 3 per mm along i (0.5 mm voxels) and -2 per mm along k (2 mm voxels)."""
    k, _j, i = np.mgrid[0:20, 0:16, 0:32].astype(np.float32)
    ramp = (3.0 * 0.5 * i - 2.0 * 2.0 * k).astype(np.float32)
    inner = (slice(6, 14), slice(0, 16), slice(10, 22))  # beyond the filters' reach of the borders along k, i
    got = gradient_magnitude(ramp, (1.0, 2.0, 2.0), (2.0, 1.0, 0.5), truncate=4.0, inner=inner)
    # a derivative-of-Gaussian truncated at 4 sigma underestimates a slope by < 0.1 %
    np.testing.assert_allclose(got, np.hypot(3.0, 2.0), rtol=1e-3)


def test_weights_are_scipys() -> None:
    for order, symmetry in ((0, 1), (1, -1)):
        weights, found = correlation_weights(1.3, order, 3.0)
        assert found == symmetry and weights.size == 2 * int(3.0 * 1.3 + 0.5) + 1
        impulse = np.zeros(21)
        impulse[10] = 1.0
        response = ndimage.gaussian_filter1d(impulse, 1.3, order=order, mode="constant", truncate=3.0)
        np.testing.assert_array_equal(response[::-1][6:15], weights)
    weights, symmetry = correlation_weights(1e-20, 1, 3.0)  # scipy skips such an axis
    assert weights.tolist() == [1.0] and symmetry == 1


def test_rejects_other_dimensions_and_strided_regions() -> None:
    with pytest.raises(ValueError, match="3-D"):
        gaussian_filter(np.zeros((4, 4), np.float32), (1.0, 1.0))
    with pytest.raises(ValueError, match="contiguous"):
        gaussian_filter(np.zeros((4, 4, 4), np.float32), (1.0, 1.0, 1.0), inner=(slice(0, 4, 2),) * 3)
