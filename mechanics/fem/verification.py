"""Reference problems with published answers, shared by the tests and ``benchmarks/convergence_study.py``.

* Cantilever (Timoshenko): square section a x a, length L, tip shear load P, clamped root.
  w = P L^3 / (3 E I) + P L / (kappa G A), kappa = 5/6 (see ../shared/data/README.md).
* Cook's membrane (Cook 1989): trapezoid (0,0), (48,44), (48,60), (0,44) mm, left edge clamped, total
  shear 1 N on the right edge, E = 1 MPa, nu = 1/3, plate thickness 1 mm (thin 3-D plate ~ plane
  stress): vertical displacement of the corner (48, 60) about 23.96 mm.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np

from mechanics.fem.loads import area_force_n, boundary_faces
from mechanics.fem.static import solve_static
from mechanics.materials import Material
from workstation.model import TetMesh

COOK_REFERENCE_MM = 23.96


def mirrored_box_mesh(shape: tuple[int, int, int], size_mm: tuple[float, float, float]) -> TetMesh:
    """A box split into 6 tetrahedra per cell, the split mirrored in alternate cells (less directional bias)."""
    nx, ny, nz = shape
    xs, ys, zs = (np.linspace(0, s, k + 1) for s, k in zip(size_mm, shape, strict=True))
    gx, gy, gz = np.meshgrid(xs, ys, zs, indexing="ij")
    points = np.stack([gx.ravel(), gy.ravel(), gz.ravel()], axis=1)
    ci, cj, ck = (a.ravel() for a in np.meshgrid(np.arange(nx), np.arange(ny), np.arange(nz), indexing="ij"))
    fx, fy, fz = ci % 2, cj % 2, ck % 2
    corners = np.stack([((ci + ((b & 1) ^ fx)) * (ny + 1) + cj + (((b >> 1) & 1) ^ fy)) * (nz + 1)
                        + ck + (((b >> 2) & 1) ^ fz) for b in range(8)], axis=1)
    local = []
    for perm in permutations(range(3)):
        path = [0]
        for axis in perm:
            path.append(path[-1] + (1, 2, 4)[axis])
        local.append(path)
    tets = corners[:, np.array(local)].reshape(-1, 4)
    p = points[tets]
    vol = np.einsum("ij,ij->i", np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), p[:, 3] - p[:, 0])
    tets[vol < 0] = tets[vol < 0][:, [0, 2, 1, 3]]
    return TetMesh(points, tets, name=f"mirrored box {nx}x{ny}x{nz}")


@dataclass(frozen=True)
class Comparison:
    label: str
    n_tets: int
    element_size_mm: float
    value: float
    reference: float

    @property
    def relative_error(self) -> float:
        return self.value / self.reference - 1.0


def timoshenko_tip_deflection_mm(*, length_mm: float, side_mm: float, youngs_modulus_pa: float,
                                 poisson_ratio: float, force_n: float) -> float:
    e = youngs_modulus_pa * 1e-6
    g = e / (2 * (1 + poisson_ratio))
    inertia = side_mm ** 4 / 12
    return force_n * length_mm ** 3 / (3 * e * inertia) + force_n * length_mm / (5 / 6 * g * side_mm ** 2)


def cantilever(n_through: int, *, slenderness: int = 10, poisson_ratio: float = 0.0) -> Comparison:
    """Half of the beam (symmetry plane y = a/2), n_through cells through the thickness, 10 n along L."""
    side, length, force, e = 1.0, float(slenderness), 1.0, 210e9
    mesh = mirrored_box_mesh((slenderness * n_through, max(n_through // 2, 1), n_through),
                             (length, side / 2, side))
    p = mesh.points_lps
    fixed = np.zeros((mesh.n_points, 3), dtype=bool)
    fixed[p[:, 0] < 1e-9] = True
    fixed[np.abs(p[:, 1] - side / 2) < 1e-9, 1] = True
    faces = boundary_faces(mesh)
    tip_faces = faces[np.all(np.abs(p[faces][:, :, 0] - length) < 1e-9, axis=1)]
    loads = area_force_n(mesh, tip_faces, [0.0, 0.0, -force / 2])
    result = solve_static(mesh, Material(youngs_modulus_pa=e, poisson_ratio=poisson_ratio), fixed_dofs=fixed,
                          nodal_forces_n=loads)
    tip = np.abs(p[:, 0] - length) < 1e-9
    w = -float(result.displacement_mm[tip, 2].mean())
    ref = timoshenko_tip_deflection_mm(length_mm=length, side_mm=side, youngs_modulus_pa=e,
                                       poisson_ratio=poisson_ratio, force_n=force)
    return Comparison(f"cantilever L/a={slenderness} nu={poisson_ratio} n={n_through}", mesh.n_tets,
                      side / n_through, w, ref)


def cook_membrane(n: int, *, layers: int = 1) -> Comparison:
    """Cook's membrane as a 1 mm plate: n x n cells in plane, ``layers`` through the thickness."""
    box = mirrored_box_mesh((n, n, layers), (1.0, 1.0, 1.0))
    xi, eta, zeta = box.points_lps.T
    points = np.stack([48.0 * xi, 44.0 * xi + eta * (44.0 - 28.0 * xi), zeta], axis=1)
    tets = np.array(box.tets)
    p = points[tets]
    vol = np.einsum("ij,ij->i", np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), p[:, 3] - p[:, 0])
    tets[vol < 0] = tets[vol < 0][:, [0, 2, 1, 3]]
    mesh = TetMesh(points, tets)
    fixed = np.zeros((mesh.n_points, 3), dtype=bool)
    fixed[points[:, 0] < 1e-9] = True
    faces = boundary_faces(mesh)
    right = faces[np.all(np.abs(points[faces][:, :, 0] - 48.0) < 1e-9, axis=1)]
    loads = area_force_n(mesh, right, [0.0, 1.0, 0.0])
    result = solve_static(mesh, Material(youngs_modulus_pa=1e6, poisson_ratio=1 / 3), fixed_dofs=fixed,
                          nodal_forces_n=loads)
    corner = (np.abs(points[:, 0] - 48.0) < 1e-9) & (np.abs(points[:, 1] - 60.0) < 1e-9)
    return Comparison(f"cook n={n}", mesh.n_tets, 48.0 / n, float(result.displacement_mm[corner, 1].mean()),
                      COOK_REFERENCE_MM)
