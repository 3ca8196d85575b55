"""Peeling flat boundary ears off a tetrahedral mesh, on hand-built meshes with a known ear."""

from __future__ import annotations

import numpy as np
import pytest

from mechanics.boundary_slivers import peel_boundary_ears
from mechanics.meshing import _oriented, check_surface
from mechanics.quality import dihedral_angles_deg
from mechanics.selection import boundary_faces
from workstation.model import TetMesh

LIFT_MM = 0.1


def ear_mesh(lift_mm: float = LIFT_MM) -> tuple[np.ndarray, np.ndarray]:
    """Two tets under a 10 mm square ABCD (C lifted ``lift_mm``) and the flat ear (A, B, C, D) on top.

    The ear's faces ABC and ACD are boundary faces meeting at AC at nearly 180 deg; its other two
    faces ABD and BCD are shared with the tets below (apex E, 8 mm down).
    """
    points = np.array([[0.0, 0, 0], [10, 0, 0], [10, 10, lift_mm], [0, 10, 0], [5, 5, -8]])
    tets = np.array([[0, 1, 3, 4], [1, 2, 3, 4], [0, 1, 2, 3]])
    return points, _oriented(points, tets)


def test_the_flat_ear_is_removed_and_the_boundary_stays_closed() -> None:
    points, tets = ear_mesh()
    angles = dihedral_angles_deg(points, tets)
    assert angles[2].min() < 1.0 and angles[:2].min() > 20.0  # only the ear is a sliver
    result = peel_boundary_ears(points, tets, below_deg=5.0)
    assert result.keep.tolist() == [True, True, False] and result.n_removed == 1
    ear = TetMesh(points, tets[2:]).signed_volumes_mm3()[0]
    assert result.removed_volume_mm3 == pytest.approx(ear)  # 10 * 10 * 0.1 / 6
    assert ear == pytest.approx(10 * 10 * LIFT_MM / 6)
    # The boundary moved by at most the lift (the ear's height over its boundary faces).
    assert 0 < result.max_thickness_mm <= LIFT_MM
    before = boundary_faces(TetMesh(points, tets))
    after = boundary_faces(TetMesh(points, tets[result.keep]))
    assert check_surface(points, before).closed and check_surface(points, after).closed
    assert len(after) == len(before)  # ABC + ACD replaced by ABD + BCD


def test_an_ear_above_the_threshold_is_kept() -> None:
    points, tets = ear_mesh(lift_mm=2.0)
    worst = dihedral_angles_deg(points, tets)[2].min()
    assert peel_boundary_ears(points, tets, below_deg=worst - 0.1).n_removed == 0
    assert peel_boundary_ears(points, tets, below_deg=worst + 0.1).n_removed == 1


def test_a_lone_sliver_is_never_removed() -> None:
    """A flat tet alone has four boundary faces: deleting it would leave nothing, not a closed boundary."""
    points, tets = ear_mesh()
    result = peel_boundary_ears(points, tets[2:], below_deg=5.0)
    assert result.n_removed == 0 and result.keep.all()


def test_a_sharp_ridge_is_not_peeled() -> None:
    """A tet whose two boundary faces meet at a sharp ridge (11 deg) is a feature, not a flat ear.

    X = (a, b, c, d): ridge ab 10 mm above the 2 mm edge cd; its faces acd and bcd are shared with
    the tets Y and Z below, so X has exactly two boundary faces (abc, abd). Removing it would cut the
    ridge off and pinch the boundary at cd (already a boundary edge of Y and Z): it is kept.
    """
    a, b, c, d, p, q = [0.0, 0, 10], [10.0, 0, 10], [5.0, -1, 0], [5.0, 1, 0], [-5.0, 0, 0], [15.0, 0, 0]
    points = np.array([a, b, c, d, p, q])
    tets = _oriented(points, np.array([[0, 1, 2, 3], [0, 2, 3, 4], [1, 2, 3, 5]]))
    assert TetMesh(points, tets).signed_volumes_mm3().min() > 0
    angles = dihedral_angles_deg(points, tets)
    assert angles[0, 0] == pytest.approx(2 * np.degrees(np.arctan(1 / 10)))  # at ab: 11.4 deg
    faces = boundary_faces(TetMesh(points, tets))
    assert check_surface(points, faces).closed and len(faces) == 8  # X contributes abc and abd
    result = peel_boundary_ears(points, tets, below_deg=20.0)
    assert result.n_removed == 0 and result.keep.all()
