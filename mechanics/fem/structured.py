"""Structured tetrahedral meshes of boxes (each hexahedron split into 6 tetrahedra, Kuhn split).

Used by the verification tests and the benchmarks: the split is the same in every cell, so the mesh is
conforming, and every tetrahedron is positively oriented.
"""

from __future__ import annotations

from itertools import permutations

import numpy as np

from workstation.model import TetMesh

_AXIS_BIT = (1, 2, 4)


def box_tet_mesh(shape: tuple[int, int, int], size_mm: tuple[float, float, float],
                 origin_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> TetMesh:
    """A box of ``shape`` = (nx, ny, nz) cells, ``size_mm`` = (lx, ly, lz), 6 * nx * ny * nz tetrahedra."""
    nx, ny, nz = (int(s) for s in shape)
    xs = np.linspace(0, size_mm[0], nx + 1) + origin_mm[0]
    ys = np.linspace(0, size_mm[1], ny + 1) + origin_mm[1]
    zs = np.linspace(0, size_mm[2], nz + 1) + origin_mm[2]
    gx, gy, gz = np.meshgrid(xs, ys, zs, indexing="ij")
    points = np.stack([gx.ravel(), gy.ravel(), gz.ravel()], axis=1)

    def node(i: np.ndarray, j: np.ndarray, k: np.ndarray) -> np.ndarray:
        return (i * (ny + 1) + j) * (nz + 1) + k

    ci, cj, ck = (a.ravel() for a in np.meshgrid(np.arange(nx), np.arange(ny), np.arange(nz), indexing="ij"))
    corners = np.stack([node(ci + (b & 1), cj + ((b >> 1) & 1), ck + ((b >> 2) & 1)) for b in range(8)], axis=1)
    local = []
    for perm in permutations(range(3)):
        path = [0]
        for axis in perm:
            path.append(path[-1] + _AXIS_BIT[axis])
        local.append(path)
    tets = corners[:, np.array(local)].reshape(-1, 4)
    p = points[tets]
    vol = np.einsum("ij,ij->i", np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), p[:, 3] - p[:, 0])
    tets[vol < 0] = tets[vol < 0][:, [0, 2, 1, 3]]
    return TetMesh(points, tets, name=f"box {nx}x{ny}x{nz}")
