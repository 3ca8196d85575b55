"""Dirichlet constraints: normalising ``fixed_dofs`` and refusing models free to move as a rigid body."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import connected_components

from workstation.errors import InputError

RIGID_MODE_NAMES = ("translation along x", "translation along y", "translation along z",
                    "rotation about x", "rotation about y", "rotation about z")


def as_dof_array(values: Any, n_points: int, *, what: str, dtype: type = float) -> NDArray:
    """An (N, 3) array from ``values`` ((N, 3), or (N,) broadcast to the 3 components for booleans)."""
    arr = np.asarray(values, dtype=dtype)
    if dtype is bool and arr.shape == (n_points,):
        arr = np.repeat(arr[:, None], 3, axis=1)
    if arr.shape != (n_points, 3):
        raise InputError(f"{what}: expected shape ({n_points}, 3), got {arr.shape}")
    if dtype is float and not np.all(np.isfinite(arr)):
        raise InputError(f"{what}: values must be finite")
    return arr


def unused_nodes(n_points: int, tets: NDArray[np.int64]) -> NDArray[np.bool_]:
    """(N,) True for nodes that belong to no tetrahedron (they carry no stiffness)."""
    used = np.zeros(n_points, dtype=bool)
    used[np.asarray(tets).ravel()] = True
    return ~used


def check_rigid_body_modes(points: NDArray[np.float64], tets: NDArray[np.int64], fixed: NDArray[np.bool_]) -> None:
    """Raise :class:`InputError` when a connected part of the mesh is not held against all 6 rigid modes.

    For each connected component the rigid-body modes (3 translations, 3 rotations about its centroid)
    restricted to the prescribed dofs must have rank 6; otherwise the stiffness matrix is singular.
    """
    n = len(points)
    t = np.asarray(tets)
    rows = np.repeat(t, 4, axis=1).ravel()
    cols = np.tile(t, (1, 4)).ravel()
    graph = sp.coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n)).tocsr()
    n_comp, labels = connected_components(graph, directed=False)
    used = ~unused_nodes(n, t)
    for comp in range(n_comp):
        nodes = np.flatnonzero((labels == comp) & used)
        if len(nodes) == 0:
            continue
        p = points[nodes]
        rel = p - p.mean(axis=0)
        size = max(float(np.abs(rel).max()), 1e-12)
        rel = rel / size
        phi = np.zeros((len(nodes), 3, 6))
        phi[:, 0, 0] = phi[:, 1, 1] = phi[:, 2, 2] = 1.0
        # rotation about axis k: e_k x r
        phi[:, 1, 3], phi[:, 2, 3] = -rel[:, 2], rel[:, 1]
        phi[:, 0, 4], phi[:, 2, 4] = rel[:, 2], -rel[:, 0]
        phi[:, 0, 5], phi[:, 1, 5] = -rel[:, 1], rel[:, 0]
        constrained = phi[fixed[nodes]]  # (n_c, 6)
        gram = constrained.T @ constrained
        evals, evecs = np.linalg.eigh(gram)
        free_modes = evals < 1e-10 * max(float(np.abs(phi).max()) ** 2, 1.0)
        if free_modes.any():
            names = sorted({RIGID_MODE_NAMES[int(np.argmax(np.abs(evecs[:, k])))] for k in np.flatnonzero(free_modes)})
            where = f"mesh part {comp + 1} of {n_comp} ({len(nodes)} nodes)" if n_comp > 1 else "the mesh"
            raise InputError(f"fixed_dofs: {where} is not held against rigid-body motion: {int(free_modes.sum())} "
                             f"of 6 rigid modes are free ({', '.join(names)}); fix more nodes or components")
