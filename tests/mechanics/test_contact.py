"""A rigid spherical probe pressed into a block: contact active set and tool force against travel."""

from __future__ import annotations

import numpy as np
import pytest

import mechanics
from mechanics.fem.verification import mirrored_box_mesh
from workstation.errors import InputError


def _block() -> tuple[mechanics.TetMesh, np.ndarray]:
    box = mirrored_box_mesh((8, 8, 4), (40.0, 40.0, 20.0))  # symmetric about the probe axis
    mesh = mechanics.TetMesh(box.points_lps - [20.0, 20.0, 0.0], box.tets)
    fixed = np.zeros((mesh.n_points, 3), dtype=bool)
    fixed[mesh.points_lps[:, 2] < 1e-9] = True
    return mesh, fixed


def test_probe_force_grows_with_indentation_and_pushes_back() -> None:
    mesh, fixed = _block()
    radius = 6.0
    path = np.array([[0.0, 0.0, 20.0 + radius + 1.0 - d] for d in np.linspace(0.0, 4.0, 6)])  # 1 mm gap first
    result = mechanics.probe_path(mesh, mechanics.material("liver"), fixed_dofs=fixed, tip_path_mm=path,
                                  tip_radius_mm=radius)
    assert result.converged
    force = result.tool_force_n
    assert result.tool_displacement_mm == pytest.approx(np.linspace(0.0, 4.0, 6))
    assert np.all(force[0] == 0.0)  # not yet touching
    assert np.all(np.diff(force[1:, 2]) > 0) and force[-1, 2] > 0  # the tissue pushes the tool back up
    assert np.abs(force[-1, :2]).max() < 1e-6 * force[-1, 2]  # centred push on a symmetric mesh: no side force
    # no node of the deformed tissue is left inside the tip
    deformed = result.deformed_points_mm(mesh)
    assert np.linalg.norm(deformed - path[-1], axis=1).min() > radius * (1 - 1e-6)
    # equilibrium: the supports carry what the tool pushes
    support = result.reaction_forces_n[fixed.all(axis=1)].sum(axis=0)
    assert support == pytest.approx(force[-1], rel=1e-6, abs=1e-9)


def test_probe_rejects_bad_paths() -> None:
    mesh, fixed = _block()
    with pytest.raises(InputError, match="tip_path_mm"):
        mechanics.probe_path(mesh, mechanics.material("liver"), fixed_dofs=fixed, tip_path_mm=[1.0, 2.0],
                             tip_radius_mm=3.0)
    with pytest.raises(InputError, match="tip_radius_mm"):
        mechanics.probe_path(mesh, mechanics.material("liver"), fixed_dofs=fixed, tip_path_mm=[[0.0, 0.0, 30.0]],
                             tip_radius_mm=0.0)
