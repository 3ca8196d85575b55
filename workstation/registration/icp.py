"""Surface ICP: rigidly align a point cloud (e.g. digitised patient skin or bone) to a SurfaceMesh.

Point-to-plane ICP (Chen & Medioni 1992) with exact closest points on the triangles
(:class:`workstation.planning.surface_index.SurfaceIndex`) and robust trimming: pairs farther than
``median + 3 * 1.4826 * MAD`` of the current distances are left out of each step, so stray points
(table, drapes, outliers) do not pull the fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from workstation.errors import InputError
from workstation.model.mesh import SurfaceMesh
from workstation.planning.surface_index import SurfaceIndex
from workstation.progress import ProgressCallback, report


@dataclass(frozen=True)
class IcpResult:
    """Result of :func:`icp_to_surface`.

    Attributes
    ----------
    matrix : (4, 4) rigid transform mapping the cloud's frame onto the mesh's (LPS mm).
    rms_mm : RMS distance of the inlier points to the surface after the fit.
    rms_all_mm : RMS distance of all points to the surface after the fit.
    iterations : iterations run.
    converged : the last step moved every point less than the tolerance.
    inlier_fraction : share of points used by the last step.
    """

    matrix: NDArray[np.float64]
    rms_mm: float
    rms_all_mm: float
    iterations: int
    converged: bool
    inlier_fraction: float


def _rotation(rx: float, ry: float, rz: float) -> NDArray[np.float64]:
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    return (np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]]) @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
            @ np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]]))


def _inliers(distance: NDArray[np.float64]) -> NDArray[np.bool_]:
    median = float(np.median(distance))
    mad = float(np.median(np.abs(distance - median)))
    keep = distance <= median + 3.0 * 1.4826 * mad + 1e-9
    return keep if keep.sum() >= 6 else np.ones(len(distance), dtype=bool)


def icp_to_surface(points: ArrayLike, mesh: SurfaceMesh | SurfaceIndex, *, initial: ArrayLike | None = None,
                   max_iterations: int = 100, tolerance_mm: float = 1e-4,
                   progress: ProgressCallback | None = None) -> IcpResult:
    """Rigidly align ``points`` (N, 3) to the surface ``mesh``.

    Parameters
    ----------
    points : (N, 3) cloud in its own frame (mm); N >= 6 and not all on a line.
    mesh : target surface (LPS mm), or a prepared :class:`SurfaceIndex` to reuse.
    initial : (4, 4) starting transform cloud -> mesh (identity by default). ICP finds the nearest
        local optimum: start within a few centimetres / tens of degrees (e.g. from paired points).
    max_iterations, tolerance_mm : stop when every point moves less than ``tolerance_mm`` in a step.
    """
    p = np.asarray(points, dtype=float)
    if p.ndim != 2 or p.shape[1] != 3 or not np.all(np.isfinite(p)):
        raise InputError("points: expected a finite N x 3 point cloud (mm)")
    if len(p) < 6:
        raise InputError(f"points: surface ICP needs at least 6 points, got {len(p)}")
    sv = np.linalg.svd(p - p.mean(axis=0), compute_uv=False)
    if sv[1] <= 1e-6 * max(float(sv[0]), 1e-12):
        raise InputError("points: the cloud is collinear; it cannot fix a rigid pose")
    index = mesh if isinstance(mesh, SurfaceIndex) else SurfaceIndex(mesh)
    m = np.eye(4) if initial is None else np.asarray(initial, dtype=float).copy()
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        raise InputError("initial: expected a finite 4 x 4 transform")
    converged = False
    iterations = 0
    keep = np.ones(len(p), dtype=bool)
    for iterations in range(1, max_iterations + 1):
        moved = p @ m[:3, :3].T + m[:3, 3]
        dist, closest, tri = index.closest_points(moved)
        keep = _inliers(dist)
        x, q, n = moved[keep], closest[keep], index.normals[tri[keep]]
        # linearised point-to-plane step: minimise sum(((I + [w]x) x + t - q) . n)^2 over w, t
        a = np.hstack([np.cross(x, n), n])
        b = np.einsum("ij,ij->i", q - x, n)
        step, *_ = np.linalg.lstsq(a, b, rcond=None)
        delta = np.eye(4)
        delta[:3, :3] = _rotation(*step[:3])
        delta[:3, 3] = step[3:]
        m = delta @ m
        movement = float(np.max(np.linalg.norm(moved @ delta[:3, :3].T + delta[:3, 3] - moved, axis=1)))
        report(progress, iterations, max_iterations, f"ICP iteration {iterations}")
        if movement < tolerance_mm:
            converged = True
            break
    u, _, vt = np.linalg.svd(m[:3, :3])  # re-orthonormalise the accumulated rotation
    m[:3, :3] = u @ vt
    dist, _, _ = index.closest_points(p @ m[:3, :3].T + m[:3, 3])
    keep = _inliers(dist)
    return IcpResult(matrix=m, rms_mm=float(np.sqrt(np.mean(dist[keep] ** 2))),
                     rms_all_mm=float(np.sqrt(np.mean(dist**2))), iterations=iterations, converged=converged,
                     inlier_fraction=float(keep.mean()))
