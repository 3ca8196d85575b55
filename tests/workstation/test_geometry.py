"""Geometry helpers (``workstation.geometry``): patient letters and the volume axes nearest the patient's."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from workstation.geometry import direction_letters, nearest_axes


def test_direction_letters_name_the_strongest_patient_directions_first() -> None:
    assert [direction_letters(v) for v in np.eye(3)] == ["L", "P", "S"]
    assert [direction_letters(-v) for v in np.eye(3)] == ["R", "A", "I"]
    assert direction_letters([0.0, 3.0, 4.0]) == "SP"  # any length: superior 0.8, posterior 0.6
    assert direction_letters([0.1, -0.2, -1.0]) == "I"  # 0.1 and 0.2 of the length: below the floor
    assert direction_letters([1.0, -1.0, 0.9], most=3) == "LAS"


def test_nearest_axes_give_each_patient_axis_its_own_volume_axis() -> None:
    assert nearest_axes(np.eye(3)) == [(0, 1.0), (1, 1.0), (2, 1.0)]
    sagittal_stack = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # i: P, j: I, k: L
    assert nearest_axes(sagittal_stack) == [(2, 1.0), (0, 1.0), (1, -1.0)]
    rng = np.random.default_rng(3)
    for rotation in Rotation.random(200, random_state=rng).as_matrix():
        axes = nearest_axes(rotation)
        assert sorted(a for a, _ in axes) == [0, 1, 2]  # a permutation, even where per-axis picks collide
        total = sum(abs(rotation[x, a]) for x, (a, _) in enumerate(axes))
        for perm in ([0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]):
            assert total >= sum(abs(rotation[x, perm[x]]) for x in range(3)) - 1e-12
        assert all(np.sign(rotation[x, a]) == s for x, (a, s) in enumerate(axes))
