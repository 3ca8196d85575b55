"""A load case prepared for solving: checked mesh, per-element material, constraints, loads, CSR pattern."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mechanics.fem.assembly import Pattern, build_pattern
from mechanics.fem.boundary import as_dof_array, check_rigid_body_modes, unused_nodes
from mechanics.fem.elements import check_elements, element_geometry, element_lame_mpa, material_descriptions
from mechanics.fem.loads import gravity_forces_n
from mechanics.materials import Material, MaterialSpec, check_locking
from workstation.errors import InputError
from workstation.model import TetMesh

MODELS = ("linear", "corotational", "neo-hookean")


@dataclass(frozen=True, eq=False)
class Problem:
    """Everything the solvers need, in internal units (mm, N, MPa, t/mm^3)."""

    mesh: TetMesh
    points: NDArray[np.float64]  # (N, 3) rest positions
    tets: NDArray[np.int64]
    volume: NDArray[np.float64]  # (M,)
    grads: NDArray[np.float64]  # (M, 4, 3)
    lam: NDArray[np.float64]  # (M,) MPa
    mu: NDArray[np.float64]  # (M,) MPa
    rho: NDArray[np.float64]  # (M,) t/mm^3
    fixed: NDArray[np.bool_]  # (N, 3)
    prescribed: NDArray[np.float64]  # (N, 3) mm, zero where free
    forces: NDArray[np.float64]  # (3N,) N, nodal + gravity
    pattern: Pattern
    materials: list[dict[str, Any]]

    @property
    def n_points(self) -> int:
        return len(self.points)

    @property
    def free(self) -> NDArray[np.bool_]:
        return self.pattern.free


def as_mesh(mesh: Any) -> TetMesh:
    if isinstance(mesh, TetMesh):
        return mesh
    raise InputError(f"mesh: expected a mechanics.TetMesh (points_mm, tets), got {type(mesh).__name__}")


def prepare(mesh: TetMesh, materials: MaterialSpec, *, fixed_dofs: Any, prescribed_displacement_mm: Any = None,
            nodal_forces_n: Any = None, gravity_m_s2: Any = None, allow_locking: bool = False,
            require_supports: bool = True) -> Problem:
    """Validate inputs (materials, elements, constraints) and build the free-dof pattern."""
    mesh = as_mesh(mesh)
    if not isinstance(materials, (Material, dict)) and not hasattr(materials, "items"):
        raise InputError(f"material: expected a Material or a mapping region id -> Material, got {type(materials)}")
    check_locking(materials, allow_locking=allow_locking)
    points = np.ascontiguousarray(mesh.points_lps, dtype=float)
    tets = np.ascontiguousarray(mesh.tets, dtype=np.int64)
    n = len(points)
    volume, grads, _ = element_geometry(points, tets)
    check_elements(mesh, volume)
    lam, mu, rho = element_lame_mpa(mesh, materials)
    fixed = as_dof_array(fixed_dofs, n, what="fixed_dofs", dtype=bool).copy()
    prescribed = (np.zeros((n, 3)) if prescribed_displacement_mm is None else
                  as_dof_array(prescribed_displacement_mm, n, what="prescribed_displacement_mm").copy())
    if prescribed_displacement_mm is not None and np.any(prescribed[~fixed] != 0):
        raise InputError("prescribed_displacement_mm: non-zero values where fixed_dofs is False "
                         "(mark those components as fixed)")
    forces = np.zeros((n, 3)) if nodal_forces_n is None else as_dof_array(nodal_forces_n, n, what="nodal_forces_n")
    if gravity_m_s2 is not None:
        forces = forces + gravity_forces_n(mesh, materials, gravity_m_s2)
    if require_supports:
        check_rigid_body_modes(points, tets, fixed)
    orphan = unused_nodes(n, tets)
    fixed[orphan] = True  # nodes outside every tetrahedron carry no stiffness: keep them in place
    prescribed[~fixed] = 0.0
    pattern = build_pattern(n, tets, ~fixed.ravel())
    return Problem(mesh=mesh, points=points, tets=tets, volume=volume, grads=np.ascontiguousarray(grads), lam=lam,
                   mu=mu, rho=rho, fixed=fixed, prescribed=prescribed, forces=forces.ravel().copy(), pattern=pattern,
                   materials=material_descriptions(materials))
