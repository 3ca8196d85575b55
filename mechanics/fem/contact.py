"""Tool-tissue contact: a rigid spherical probe tip moved along a path, quasi-statically.

Contact is enforced by constraints with an active set: a node whose deformed position falls inside the
sphere becomes active and is prescribed onto the sphere surface (radial projection, no slip while in
contact); an active node whose reaction pulls the tool (adhesion) is released. The active set is
iterated to a fixed point at every path position. The tool force is the force the tissue exerts on the
tool, minus the sum of the reactions at the active nodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from mechanics.fem.boundary import as_dof_array
from mechanics.fem.static import solve_static
from mechanics.materials import MaterialSpec
from mechanics.results import SimulationResult
from workstation.errors import InputError
from workstation.model import TetMesh
from workstation.progress import ProgressCallback, report


def _project(points: NDArray, center: NDArray, radius: float) -> NDArray:
    d = points - center
    n = np.linalg.norm(d, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return center + radius * d / n


def probe_path(mesh: TetMesh, material: MaterialSpec, *, fixed_dofs: Any, tip_path_mm: Any, tip_radius_mm: float,
               model: str = "linear", max_active_set_iterations: int = 20, load_steps: int = 1,
               progress: ProgressCallback | None = None) -> SimulationResult:
    """Push a rigid sphere (centre path (S, 3) mm, radius mm) into the tissue; tool force vs travel.

    Returns the result at the last path position with ``tool_displacement_mm`` (S,) (distance of the tip
    centre from its start) and ``tool_force_n`` (S, 3) (force the tissue exerts on the tool, N).
    """
    path = np.asarray(tip_path_mm, dtype=float)
    if path.ndim != 2 or path.shape[1] != 3 or len(path) < 1 or not np.all(np.isfinite(path)):
        raise InputError(f"tip_path_mm: expected (S, 3) finite positions in mm, got shape {path.shape}")
    if not tip_radius_mm > 0:
        raise InputError(f"tip_radius_mm: must be > 0 (got {tip_radius_mm})")
    n = mesh.n_points
    anchors = as_dof_array(fixed_dofs, n, what="fixed_dofs", dtype=bool)
    rest = np.asarray(mesh.points_lps)
    u = np.zeros((n, 3))
    active = np.zeros(n, dtype=bool)
    forces = np.zeros((len(path), 3))
    result: SimulationResult | None = None
    radius = float(tip_radius_mm)
    for s, center in enumerate(path):
        report(progress, s, len(path), f"probe: position {s + 1}/{len(path)}")
        targets = np.zeros((n, 3))
        for _ in range(max_active_set_iterations):
            current = rest + u
            inside = np.linalg.norm(current - center, axis=1) < radius * (1 - 1e-9)
            new_active = active | (inside & ~anchors.all(axis=1))
            # an active node keeps its contact point; newly active nodes are projected radially
            targets[new_active & ~active] = _project(current[new_active & ~active], center, radius)
            targets[active] = _project(targets[active], center, radius)
            fixed = anchors | new_active[:, None]
            prescribed = np.where(new_active[:, None], targets - rest, 0.0)
            result = solve_static(mesh, material, fixed_dofs=fixed, prescribed_displacement_mm=prescribed,
                                  model=model, load_steps=load_steps)
            if not result.converged:
                return _with_tool(result, path[: s + 1], forces[: s + 1], radius)
            u = result.displacement_mm
            outward = _project(rest[new_active] + u[new_active], center, 1.0) - center
            pulling = np.einsum("ij,ij->i", result.reaction_forces_n[new_active], outward) < 0
            released = np.flatnonzero(new_active)[pulling]
            changed = bool((new_active != active).any() or len(released))
            active = new_active
            active[released] = False
            if not changed:
                break
        assert result is not None
        forces[s] = -result.reaction_forces_n[active].sum(axis=0)
    report(progress, len(path), len(path), "probe: done")
    assert result is not None
    return _with_tool(result, path, forces, radius)


def _with_tool(result: SimulationResult, path: NDArray, forces: NDArray, radius: float) -> SimulationResult:
    from dataclasses import replace

    travel = np.linalg.norm(path - path[0], axis=1)
    return replace(result, tool_displacement_mm=travel, tool_force_n=forces,
                   tool={"kind": "sphere", "radius_mm": radius,
                         "force_convention": "force the tissue exerts on the tool, N"})
