"""Quality report against hand-computable tetrahedra."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mechanics.quality import dihedral_angles_deg, radius_edge_ratios, tet_quality
from workstation.model import TetMesh

REGULAR = np.array([[1.0, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]])


def test_regular_tetrahedron() -> None:
    tets = np.array([[0, 1, 2, 3]])
    mesh = TetMesh(REGULAR, tets if TetMesh(REGULAR, tets).signed_volumes_mm3()[0] > 0 else tets[:, [0, 2, 1, 3]])
    np.testing.assert_allclose(dihedral_angles_deg(mesh.points_lps, mesh.tets), math.degrees(math.acos(1 / 3)))
    np.testing.assert_allclose(radius_edge_ratios(mesh.points_lps, mesh.tets), math.sqrt(6) / 4)
    q = tet_quality(mesh)
    edge = 2 * math.sqrt(2)
    assert q.volume_mm3 == pytest.approx(edge ** 3 / (6 * math.sqrt(2)))
    assert (q.n_inverted, q.n_degenerate, q.n_slivers, q.n_tets, q.n_points) == (0, 0, 0, 1, 4)


def test_right_corner_tetrahedron_angles() -> None:
    points = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    angles = dihedral_angles_deg(points, np.array([[0, 1, 2, 3]]))[0]
    # Edges at the origin: 90 deg; the others: acos(1/sqrt(3)) = 54.74 deg.
    np.testing.assert_allclose(angles[:3], 90.0)
    np.testing.assert_allclose(angles[3:], math.degrees(math.acos(1 / math.sqrt(3))))
    # Circumradius sqrt(3)/2, shortest edge 1.
    np.testing.assert_allclose(radius_edge_ratios(points, np.array([[0, 1, 2, 3]])), math.sqrt(3) / 2)


def test_inverted_degenerate_and_sliver_are_counted() -> None:
    points = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1],      # good (positive)
                       [2, 0, 0], [3, 0, 0], [2, 1, 0], [3, 1, 0],        # flat square: degenerate
                       [5, 0, 0], [6, 0, 0], [5, 1, 0], [6, 1, 0.02]])    # nearly flat: sliver
    tets = np.array([[0, 1, 2, 3], [0, 2, 1, 3], [4, 5, 6, 7], [8, 9, 10, 11]])
    mesh = TetMesh(points, tets, region_ids=[1, 1, 2, 2])
    vol = mesh.signed_volumes_mm3()
    q = tet_quality(mesh, sliver_deg=5.0)
    assert q.n_inverted == 1 and q.n_degenerate == 1 and q.n_slivers == 1
    assert q.volume_mm3 == pytest.approx(vol.sum())
    assert q.region_volumes_mm3[1] == pytest.approx(0.0, abs=1e-12)
    d = q.to_dict()
    assert d["sliver_threshold_deg"] == 5.0 and set(d["region_volumes_mm3"]) == {"1", "2"}
    assert "inverted 1" in q.summary()
