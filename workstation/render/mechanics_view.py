"""Mechanics results as pictures: the deformed tetrahedral mesh coloured by displacement or von Mises stress.

Contract of a simulation result (``Record(kind="simulation")``):
``meta["tet_mesh_id"]`` names ``case.tet_meshes[...]``; ``arrays["displacement_mm"]`` is (N, 3) on the
mesh points (or (S, N, 3) over S load steps); ``arrays["von_mises_pa"]`` is (M,) per tetrahedron (or (S, M));
optional ``tool_displacement_mm`` and ``tool_force_n`` (S,) describe the tool's load curve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from workstation.errors import InputError
from workstation.model.case import Case
from workstation.model.mesh import TetMesh
from workstation.model.record import Record

QUANTITIES = {
    # name: (array key in the surface, scalar-bar title, colour map)
    "displacement": ("displacement_magnitude_mm", "displacement (mm)", "viridis"),
    "von_mises": ("von_mises_kpa", "von Mises stress (kPa)", "inferno"),
}


@dataclass(frozen=True)
class SimulationResult:
    """A simulation record checked against its tet mesh, with its fields as (S, ...) load steps."""

    record: Record
    tet_mesh: TetMesh
    displacement_mm: NDArray[np.float64]  # (S, N, 3)
    von_mises_pa: NDArray[np.float64] | None  # (S, M) or None
    linear_steps: bool  # True when the steps are a linear scaling of one final result

    @property
    def n_steps(self) -> int:
        return int(self.displacement_mm.shape[0])


def simulation_result(case: Case, name: str | None = None) -> SimulationResult:
    """The simulation record ``name`` (default: the latest) with its mesh, validated against the contract."""
    records = case.records_of("simulation")
    if not records:
        raise InputError("case has no simulation result: run a mechanics simulation first")
    try:
        record = case.record("simulation", name) if name else records[-1]
    except KeyError as exc:
        raise InputError(f"--simulation: {exc.args[0]}") from None
    mesh_id = record.meta.get("tet_mesh_id")
    if mesh_id not in case.tet_meshes:
        raise InputError(f"simulation {record.name!r}: its tet mesh {mesh_id!r} is not in the case")
    mesh = case.tet_meshes[mesh_id]
    if "displacement_mm" not in record.arrays:
        raise InputError(f"simulation {record.name!r}: no displacement_mm array")
    disp = np.asarray(record.arrays["displacement_mm"], dtype=float)
    linear = disp.ndim == 2
    if linear:
        disp = disp[np.newaxis]
    if disp.ndim != 3 or disp.shape[1:] != (mesh.n_points, 3):
        shape = record.arrays["displacement_mm"].shape
        raise InputError(f"simulation {record.name!r}: displacement_mm has shape {shape}, expected "
                         f"({mesh.n_points}, 3) for tet mesh {mesh_id!r}")
    vm = record.arrays.get("von_mises_pa")
    if vm is not None:
        vm = np.asarray(vm, dtype=float)
        vm = vm[np.newaxis] if vm.ndim == 1 else vm
        if vm.shape != (disp.shape[0], mesh.n_tets):
            raise InputError(f"simulation {record.name!r}: von_mises_pa has shape {record.arrays['von_mises_pa'].shape}"
                             f", expected ({mesh.n_tets},)")
    return SimulationResult(record, mesh, disp, vm, linear)


def deformed_surface(result: SimulationResult, *, fraction: float = 1.0, step: int = -1,
                     scale: float = 1.0) -> Any:
    """The outer surface of the deformed mesh (``pyvista.PolyData``) with point data
    ``displacement_magnitude_mm`` and cell data ``von_mises_kpa`` (when present).

    ``step`` picks a load step; with a single final result, ``fraction`` scales it (linear elasticity:
    the field at a fraction of the load). ``scale`` exaggerates the drawn displacement only.
    """
    grid = result.tet_mesh.to_pyvista()
    disp = result.displacement_mm[step] * (fraction if result.linear_steps else 1.0)
    grid.point_data["displacement_mm"] = disp
    grid.point_data["displacement_magnitude_mm"] = np.linalg.norm(disp, axis=1)
    if result.von_mises_pa is not None:
        vm = result.von_mises_pa[step] * (fraction if result.linear_steps else 1.0)
        grid.cell_data["von_mises_kpa"] = vm / 1000.0
    grid.points = np.asarray(grid.points) + disp * scale
    return grid.extract_surface(algorithm="dataset_surface")


def field_range(result: SimulationResult, quantity: str) -> tuple[float, float]:
    """(min, max) of a quantity over all load steps, for a colour scale that stays put in an animation."""
    if quantity == "displacement":
        mags = np.linalg.norm(result.displacement_mm, axis=2)
        return 0.0, max(float(mags.max()), 1e-9)
    if quantity == "von_mises":
        if result.von_mises_pa is None:
            raise InputError(f"simulation {result.record.name!r}: no von_mises_pa array to colour by")
        return 0.0, max(float(result.von_mises_pa.max()) / 1000.0, 1e-9)
    raise InputError(f"--color-by {quantity!r}: expected one of {', '.join(QUANTITIES)}")
