"""Label map -> voxel tetrahedra: exact volumes, orientation, conformity, regions, coarsening, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from mechanics.selection import boundary_faces
from mechanics.voxel_tets import voxel_tetrahedra
from workstation.errors import InputError
from workstation.model import LabelMap, Segment


def oblique_affine(flip: bool) -> np.ndarray:
    angle = 0.3
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    direction = rot @ np.diag([0.7, 0.9, 2.0])
    if flip:
        direction[:, 2] *= -1
    affine = np.eye(4)
    affine[:3, :3] = direction
    affine[:3, 3] = (-10.0, 5.0, 30.0)
    return affine


@pytest.mark.parametrize("flip", [False, True])
def test_volume_is_voxel_count_times_voxel_volume_exactly(flip: bool) -> None:
    rng = np.random.default_rng(1)
    array = rng.choice([0, 0, 3, 5], size=(7, 9, 8)).astype(np.uint8)
    affine = oblique_affine(flip)
    labels = LabelMap(array, affine, segments=(Segment(3, "a"), Segment(5, "b")))
    mesh = voxel_tetrahedra(labels)
    volumes = mesh.signed_volumes_mm3()
    voxel = abs(np.linalg.det(affine[:3, :3]))
    assert volumes.min() > 0
    for value in (3, 5):
        assert volumes[mesh.region_ids == value].sum() == pytest.approx(np.sum(array == value) * voxel, rel=1e-12)
    assert mesh.n_tets == 6 * np.count_nonzero(array)
    only_a = voxel_tetrahedra(labels, labels=["a"])
    assert set(np.unique(only_a.region_ids)) == {3}


def test_mesh_is_conforming_with_shared_nodes() -> None:
    array = np.zeros((5, 6, 7), np.uint8)
    array[1:4, 1:5, 1:6] = 1
    labels = LabelMap(array, np.eye(4), segments=(Segment(1, "block"),))
    mesh = voxel_tetrahedra(labels)
    assert mesh.n_points == 4 * 5 * 6  # corners of the 3 x 4 x 5 block, shared
    # Only the outer faces are used once: 2 triangles per outer voxel face.
    assert len(boundary_faces(mesh)) == 2 * 2 * (3 * 4 + 4 * 5 + 3 * 5)
    # Voxel (i, j, k) spans i +- 1/2 in index space, mapped by ijk_to_lps.
    np.testing.assert_allclose(mesh.points_lps.min(axis=0), [0.5, 0.5, 0.5])
    np.testing.assert_allclose(mesh.points_lps.max(axis=0), [5.5, 4.5, 3.5])


def test_stride_coarsens_by_majority() -> None:
    array = np.zeros((8, 8, 8), np.uint8)
    array[:4, :4, :4] = 2
    array[0, 0, 0] = 0  # still a majority of 2 in the first block
    labels = LabelMap(array, np.diag([1.0, 1.0, 1.0, 1.0]), segments=(Segment(2, "a"),))
    coarse = voxel_tetrahedra(labels, stride=2)
    assert coarse.n_tets == 6 * 8
    assert coarse.signed_volumes_mm3().sum() == pytest.approx(64.0)
    assert coarse.provenance["stride"] == 2


def test_bad_input() -> None:
    labels = LabelMap(np.zeros((3, 3, 3), np.uint8), np.eye(4), segments=(Segment(1, "a"),))
    with pytest.raises(InputError, match="no voxels"):
        voxel_tetrahedra(labels)
    with pytest.raises(InputError, match="stride"):
        voxel_tetrahedra(labels, stride=0)
    with pytest.raises(InputError, match="'nope'"):
        voxel_tetrahedra(labels, labels=["nope"])
