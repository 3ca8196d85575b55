"""Paired-point registration: recovery of known transforms, FRE/TRE against Monte Carlo, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from workstation.errors import InputError
from workstation.registration.paired_point import (
    fitzpatrick_west_tre,
    register_paired_points,
    rigid_fit,
)


def rotation(axis: list[float], degrees: float) -> np.ndarray:
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    t = np.radians(degrees)
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


R_TRUE = rotation([0.3, -0.5, 0.8], 35.0)
T_TRUE = np.array([412.0, -37.5, 950.0])


def test_recovers_a_known_transform_from_noisy_fiducials() -> None:
    rng = np.random.default_rng(11)
    image = rng.uniform(-100, 100, (20, 3)) + [0, -250, -800]
    patient = image @ R_TRUE.T + T_TRUE + rng.normal(0, 0.1, image.shape)  # 0.1 mm per axis
    targets = rng.uniform(-50, 50, (10, 3)) + [0, -250, -800]
    r = register_paired_points(image, patient, targets=targets)
    mapped = targets @ r.matrix[:3, :3].T + r.matrix[:3, 3]
    error = np.linalg.norm(mapped - (targets @ R_TRUE.T + T_TRUE), axis=1)
    assert error.max() < 0.1
    assert np.linalg.det(r.matrix[:3, :3]) == pytest.approx(1.0)
    # FRE: RMS of the per-point residuals, about sqrt(1 - 2/N) * FLE with FLE = sqrt(3) * 0.1
    assert r.fre_mm == pytest.approx(np.sqrt(np.mean(r.fre_per_point_mm**2)))
    assert 0.6 * np.sqrt(0.03 * 18 / 20) < r.fre_mm < 1.4 * np.sqrt(0.03 * 18 / 20)
    assert r.predicted_tre_mm.shape == (10,) and np.all(r.predicted_tre_mm < 0.1)
    # noise-free: exact
    exact = register_paired_points(image, image @ R_TRUE.T + T_TRUE)
    np.testing.assert_allclose(exact.matrix[:3, :3], R_TRUE, atol=1e-10)
    np.testing.assert_allclose(exact.matrix[:3, 3], T_TRUE, atol=1e-8)
    assert exact.fre_mm < 1e-8


def test_reflection_is_never_returned() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(0, 50, (6, 3))
    mirrored = a * [-1, 1, 1]  # only a reflection maps a onto this exactly
    m = rigid_fit(a, mirrored)
    assert np.linalg.det(m[:3, :3]) == pytest.approx(1.0)
    np.testing.assert_allclose(m[:3, :3].T @ m[:3, :3], np.eye(3), atol=1e-12)


def test_predicted_tre_matches_monte_carlo() -> None:
    """Fitzpatrick-West RMS TRE vs the RMS error of 3000 simulated registrations, at near and far targets."""
    rng = np.random.default_rng(7)
    fiducials = np.array([[0, 0, 0], [80, 5, 0], [10, 60, 5], [70, 70, 30], [35, 20, 60], [5, 40, 40.0]])
    targets = np.array([[40, 30, 20], [120, 100, 10], [-60, 0, 80], [40, -80, -40.0]])
    sigma = 0.5  # per axis, in both spaces together: FLE^2 = 3 sigma^2
    n_trials = 3000
    errors = np.empty((n_trials, len(targets)))
    predicted = np.empty((n_trials, len(targets)))
    for n in range(n_trials):
        moved = fiducials @ R_TRUE.T + T_TRUE + rng.normal(0, sigma, fiducials.shape)
        r = register_paired_points(fiducials, moved, targets=targets)
        mapped = targets @ r.matrix[:3, :3].T + r.matrix[:3, 3]
        errors[n] = np.linalg.norm(mapped - (targets @ R_TRUE.T + T_TRUE), axis=1)
        predicted[n] = r.predicted_tre_mm
    mc_rms = np.sqrt(np.mean(errors**2, axis=0))
    with_true_fle = fitzpatrick_west_tre(fiducials, targets, fle_mm=np.sqrt(3) * sigma)
    with_fre_estimate = np.sqrt(np.mean(predicted**2, axis=0))  # each trial's own FLE estimate from its FRE
    assert np.all(np.abs(with_true_fle / mc_rms - 1) < 0.25), (with_true_fle, mc_rms)
    assert np.all(np.abs(with_fre_estimate / mc_rms - 1) < 0.25), (with_fre_estimate, mc_rms)
    assert mc_rms[1] > 1.5 * mc_rms[0]  # far targets are worse, as predicted


@pytest.mark.parametrize(("moving", "fixed", "message"), [
    ([[0, 0, 0], [1, 0, 0]], [[0, 0, 0], [1, 0, 0]], "at least 3"),
    ([[0, 0, 0], [1, 0, 0], [2, 0, 0], [5, 0, 0]], [[0, 0, 0], [0, 1, 0], [0, 2, 0], [0, 5, 0]], "collinear"),
    ([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], "paired by order"),
    ([[0, 0, 0], [1, 0, np.nan], [0, 1, 0]], [[0, 0, 0], [1, 0, 0], [0, 1, 0]], "non-finite"),
    ([[0, 0], [1, 0], [0, 1]], [[0, 0], [1, 0], [0, 1]], "N x 3"),
    ([[1, 1, 1], [1, 1, 1], [1, 1, 1]], [[0, 0, 0], [1, 0, 0], [0, 1, 0]], "collinear"),
])
def test_degenerate_inputs_are_refused(moving: list, fixed: list, message: str) -> None:
    with pytest.raises(InputError, match=message):
        register_paired_points(moving, fixed)


def test_given_fle_and_bad_fle() -> None:
    pts = np.array([[0, 0, 0], [50, 0, 0], [0, 50, 0], [0, 0, 50.0]])
    r = register_paired_points(pts, pts, targets=[[0, 0, 0]], fle_mm=1.0)
    assert r.fle_source == "given"
    assert r.predicted_tre_mm[0] == pytest.approx(float(fitzpatrick_west_tre(pts, [[0, 0, 0]], fle_mm=1.0)[0]))
    with pytest.raises(InputError, match="fle_mm"):
        register_paired_points(pts, pts, fle_mm=float("nan"))
