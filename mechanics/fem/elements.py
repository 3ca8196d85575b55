"""Linear (4-node) tetrahedron: geometry, shape-function gradients, stiffness, lumped mass, stress.

Internal units: mm, N, MPa (= N/mm^2), tonne (= N s^2/mm). Moduli arrive in Pa and are multiplied
by 1e-6; densities in kg/m^3 by 1e-12; stresses leave in Pa.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from mechanics.materials import Material, MaterialSpec
from workstation.errors import InputError
from workstation.model import TetMesh

PA_TO_MPA = 1e-6
KG_M3_TO_T_MM3 = 1e-12


def element_geometry(points: NDArray[np.float64], tets: NDArray[np.int64]) -> tuple[NDArray, NDArray, NDArray]:
    """Rest geometry per tetrahedron.

    Returns
    -------
    volume_mm3 : (M,) signed volume.
    grads : (M, 4, 3) shape-function gradients dN_a/dX (1/mm).
    dm_inv : (M, 3, 3) inverse of the rest edge matrix ``[X1-X0, X2-X0, X3-X0]`` (columns).
    """
    x = points[tets]
    dm = np.stack([x[:, 1] - x[:, 0], x[:, 2] - x[:, 0], x[:, 3] - x[:, 0]], axis=2)
    det = np.linalg.det(dm)
    safe = np.where((np.abs(det) > 0)[:, None, None], dm, np.eye(3))
    dm_inv = np.linalg.inv(safe)
    grads = np.empty((len(tets), 4, 3))
    grads[:, 1:] = dm_inv  # row a-1 of Dm^-1 is grad N_a
    grads[:, 0] = -dm_inv.sum(axis=1)
    return det / 6.0, grads, dm_inv


def check_elements(mesh: TetMesh, volume_mm3: NDArray[np.float64]) -> None:
    """Raise :class:`InputError` naming inverted and degenerate tetrahedra (before any solve)."""
    p = np.asarray(mesh.points_lps)
    t = np.asarray(mesh.tets)
    if len(t) == 0:
        raise InputError("mesh: has no tetrahedra")
    edges = p[t[:, [1, 2, 3, 2, 3, 3]]] - p[t[:, [0, 0, 0, 1, 1, 2]]]
    mean_edge = np.linalg.norm(edges, axis=2).mean(axis=1)
    scale = mean_edge ** 3 / (6 * np.sqrt(2))  # volume of a regular tet with that edge
    degenerate = np.abs(volume_mm3) <= 1e-6 * np.maximum(scale, 1e-300)
    inverted = (volume_mm3 < 0) & ~degenerate
    if degenerate.any() or inverted.any():
        bad = np.flatnonzero(degenerate | inverted)
        listed = ", ".join(str(i) for i in bad[:10]) + (", ..." if len(bad) > 10 else "")
        raise InputError(f"mesh: {int(inverted.sum())} inverted and {int(degenerate.sum())} degenerate "
                         f"tetrahedra (indices {listed}); fix or re-mesh before solving")


def element_lame_mpa(mesh: TetMesh, materials: MaterialSpec) -> tuple[NDArray, NDArray, NDArray]:
    """(M,) Lamé lambda and mu in MPa and density in t/mm^3 per tetrahedron (per-region materials)."""
    regions = np.asarray(mesh.region_ids)
    if isinstance(materials, Material):
        mats = {None: materials}
        index = np.zeros(len(regions), dtype=np.int64)
        table = [materials]
    elif isinstance(materials, Mapping):
        missing = sorted(set(np.unique(regions).tolist()) - {int(k) for k in materials})
        if missing:
            raise InputError(f"material: no material given for region id(s) {missing}")
        mats = {int(k): v for k, v in materials.items()}
        keys = sorted(mats)
        table = [mats[k] for k in keys]
        index = np.searchsorted(np.array(keys), regions)
    else:
        raise InputError(f"material: expected a Material or a mapping region id -> Material, got {type(materials)}")
    lam = np.array([m.lame_lambda_pa for m in table]) * PA_TO_MPA
    mu = np.array([m.shear_modulus_pa for m in table]) * PA_TO_MPA
    rho = np.array([m.density_kg_m3 for m in table]) * KG_M3_TO_T_MM3
    return lam[index], mu[index], rho[index]


def material_descriptions(materials: MaterialSpec) -> list[dict]:
    """JSON-ready description of the material(s), with units in the keys."""
    if isinstance(materials, Material):
        return [{"region_id": None, **materials.to_dict()}]
    return [{"region_id": int(k), **m.to_dict()} for k, m in sorted(materials.items())]


def linear_stiffness(grads: NDArray, volume: NDArray, lam: NDArray, mu: NDArray) -> NDArray[np.float64]:
    """(M, 12, 12) small-strain element stiffness (N/mm), dof order (node a, component i) -> 3a+i."""
    gg = np.einsum("mai,mbk->maibk", grads, grads)  # g_a,i g_b,k
    dot = np.einsum("mai,mbi->mab", grads, grads)
    k = lam[:, None, None, None, None] * gg + mu[:, None, None, None, None] * gg.transpose(0, 1, 4, 3, 2)
    k += (mu[:, None, None] * dot)[:, :, None, :, None] * np.eye(3)[None, None, :, None, :]
    k *= volume[:, None, None, None, None]
    return k.reshape(len(volume), 12, 12)


def lumped_mass(n_points: int, tets: NDArray[np.int64], volume: NDArray, rho: NDArray) -> NDArray[np.float64]:
    """(N,) lumped nodal mass in tonnes (a quarter of each element's mass per node)."""
    mass = np.zeros(n_points)
    np.add.at(mass, tets.ravel(), np.repeat(rho * volume / 4.0, 4))
    return mass


def small_strain(grads: NDArray, u_elem: NDArray) -> NDArray[np.float64]:
    """(M, 3, 3) symmetric small strain from (M, 4, 3) element displacements."""
    h = np.einsum("mai,maj->mij", u_elem, grads)  # du_i/dX_j
    return 0.5 * (h + h.transpose(0, 2, 1))


def linear_stress_mpa(strain: NDArray, lam: NDArray, mu: NDArray) -> NDArray[np.float64]:
    """(M, 3, 3) Hooke stress (MPa) from small strain."""
    tr = np.trace(strain, axis1=1, axis2=2)
    return lam[:, None, None] * tr[:, None, None] * np.eye(3) + 2.0 * mu[:, None, None] * strain


def von_mises(stress: NDArray) -> NDArray[np.float64]:
    """(M,) von Mises equivalent of (M, 3, 3) stresses (same unit)."""
    s = stress
    return np.sqrt(0.5 * ((s[:, 0, 0] - s[:, 1, 1]) ** 2 + (s[:, 1, 1] - s[:, 2, 2]) ** 2
                          + (s[:, 2, 2] - s[:, 0, 0]) ** 2)
                   + 3.0 * (s[:, 0, 1] ** 2 + s[:, 1, 2] ** 2 + s[:, 0, 2] ** 2))


def voigt6(tensor: NDArray) -> NDArray[np.float64]:
    """(M, 6) components (xx, yy, zz, xy, yz, xz) of (M, 3, 3) symmetric tensors."""
    t = tensor
    return np.stack([t[:, 0, 0], t[:, 1, 1], t[:, 2, 2], t[:, 0, 1], t[:, 1, 2], t[:, 0, 2]], axis=1)
