"""Node selection for boundary conditions on a voxel-tet box whose geometry is known exactly."""

from __future__ import annotations

import numpy as np
import pytest
import pyvista as pv

from mechanics.selection import (
    boundary_faces,
    boundary_nodes,
    distances_to_surface_mm,
    fixed_dofs,
    interface_faces,
    nodes_beyond_plane,
    nodes_near_plane,
    nodes_near_point,
    nodes_near_surface,
    region_nodes,
)
from mechanics.voxel_tets import voxel_tetrahedra
from workstation.errors import InputError
from workstation.model import LabelMap, Segment, SurfaceMesh


@pytest.fixture(scope="module")
def two_blocks():
    """Corner grid x 0..10, y 0..4, z 0..4 (unit voxels); region 1 for x < 5, region 2 for x > 5."""
    array = np.zeros((4, 4, 10), np.uint8)
    array[:, :, :5] = 1
    array[:, :, 5:] = 2
    affine = np.eye(4)
    affine[:3, 3] = 0.5
    return voxel_tetrahedra(LabelMap(array, affine, segments=(Segment(1, "a"), Segment(2, "b"))))


def test_boundary_nodes_are_the_box_surface(two_blocks) -> None:
    p = two_blocks.points_lps
    on_surface = (np.isclose(p, 0).any(axis=1) | np.isclose(p[:, 0], 10) | np.isclose(p[:, 1:], 4).any(axis=1))
    np.testing.assert_array_equal(boundary_nodes(two_blocks), on_surface)
    faces = boundary_faces(two_blocks)
    # Outward winding: the faces enclose the box volume with positive sign.
    tri = p[faces]
    assert np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6 == pytest.approx(160.0)


def test_regions_and_interface(two_blocks) -> None:
    p = two_blocks.points_lps
    np.testing.assert_array_equal(region_nodes(two_blocks, 1), p[:, 0] <= 5)
    np.testing.assert_array_equal(region_nodes(two_blocks, [1, 2]), np.ones(len(p), bool))
    assert len(interface_faces(two_blocks, 1, 2)) == 2 * 16
    with pytest.raises(InputError, match="not in the mesh"):
        region_nodes(two_blocks, 9)


def test_planes_points_and_dofs(two_blocks) -> None:
    p = two_blocks.points_lps
    np.testing.assert_array_equal(nodes_beyond_plane(two_blocks, (8, 0, 0), (2, 0, 0)), p[:, 0] >= 8)
    np.testing.assert_array_equal(nodes_near_plane(two_blocks, (0, 0, 2), (0, 0, 1), 1.0), np.abs(p[:, 2] - 2) <= 1)
    near = nodes_near_point(two_blocks, (10, 2, 2), 1.5, boundary_only=True)
    within = np.linalg.norm(p - (10, 2, 2), axis=1) <= 1.5
    np.testing.assert_array_equal(near, within & boundary_nodes(two_blocks))
    assert (within & ~near).sum() == 5  # the interior nodes at x = 9 are not on the surface
    dofs = fixed_dofs(near, components=(False, True, True))
    assert dofs.shape == (len(p), 3) and not dofs[:, 0].any() and (dofs[:, 1] == near).all()
    with pytest.raises(InputError, match="normal"):
        nodes_beyond_plane(two_blocks, (0, 0, 0), (0, 0, 0))


def test_nodes_near_another_surface(two_blocks) -> None:
    # A "bone" plate below the box at z = -1.
    plate = SurfaceMesh.from_pyvista(pv.Plane(center=(5, 2, -1), direction=(0, 0, 1), i_size=30, j_size=30))
    np.testing.assert_allclose(distances_to_surface_mm(np.array([[5.0, 2, 3], [1, 1, -1]]), plate), [4.0, 0.0],
                               atol=1e-9)
    mask = nodes_near_surface(two_blocks, plate, 1.0)
    np.testing.assert_array_equal(mask, np.isclose(two_blocks.points_lps[:, 2], 0))
    assert not nodes_near_surface(two_blocks, plate, 0.5).any()
