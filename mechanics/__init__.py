"""Tissue mechanics: materials, FEM solvers on tetrahedra, results (no Qt; works without a case).

Public API::

    import mechanics
    mesh = mechanics.TetMesh(points_mm, tets)
    mat = mechanics.material("liver")              # or mechanics.Material(youngs_modulus_pa=..., poisson_ratio=...)
    res = mechanics.solve_static(mesh, mat, fixed_dofs=fixed, nodal_forces_n=forces, model="linear")
    res.displacement_mm, res.von_mises_pa

The FEM core is written here on purpose (see :mod:`mechanics.fem`): interactive rates need reuse of
factorisations and numba assembly into a fixed sparse pattern, which general FEM libraries do not give.
"""

from mechanics.fem.contact import probe_path
from mechanics.fem.interactive import InteractiveSimulation, StepInfo
from mechanics.fem.loads import (
    area_force_n,
    boundary_faces,
    gravity_forces_n,
    point_force_n,
    pressure_forces_n,
    traction_forces_n,
)
from mechanics.fem.static import solve_static
from mechanics.materials import Material, library_entry, library_names, material
from mechanics.results import SimulationResult, StepHistory
from workstation.model import TetMesh

__all__ = [
    "InteractiveSimulation",
    "Material",
    "SimulationResult",
    "StepHistory",
    "StepInfo",
    "TetMesh",
    "area_force_n",
    "boundary_faces",
    "gravity_forces_n",
    "library_entry",
    "library_names",
    "material",
    "point_force_n",
    "pressure_forces_n",
    "probe_path",
    "solve_static",
    "traction_forces_n",
]
