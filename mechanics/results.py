"""The outcome of a simulation: displacements, strain, stress, reactions, convergence, tool forces.

Record contract (``SimulationResult.to_record`` / ``SimulationResult.from_record``)
-----------------------------------------------------------------------------------
A result is stored in a case as ``workstation.model.Record(kind="simulation", name=..., meta=..., arrays=...)``.

``meta`` (JSON):

* ``schema``: ``"mechanics.simulation/1"``; ``coordinate_system``: ``"LPS"``; ``tet_mesh_id``: id of the
  :class:`~workstation.model.TetMesh` in the case the arrays refer to (node and tet order).
* ``model``: ``"linear"`` | ``"corotational"`` | ``"neo-hookean"`` (| ``"corotational-dynamic"``).
* ``materials``: list of ``{"region_id": int | null, "name": str, "youngs_modulus_pa": float,
  "poisson_ratio": float, "density_kg_m3": float}`` (``region_id`` null: one material everywhere).
* ``load_steps`` (int), ``load_steps_completed`` (int), ``status`` (``"converged"`` | ``"diverged"`` |
  ``"max-iterations"``), ``converged`` (bool), ``message`` (str).
* ``max_displacement_mm``, ``max_von_mises_pa`` (float).
* ``convergence``: list (one per load step) of ``{"step": int, "load_factor": float,
  "residual_norms_n": [float, ...], "converged": bool}``.
* ``strain_measure``: ``"small"`` (linear) | ``"corotated-small"`` | ``"green-lagrange"`` (neo-Hookean).
* ``tool`` (optional, present when a tool scenario ran): ``{"kind": "sphere", "radius_mm": float,
  "force_convention": "force the tissue exerts on the tool, N"}``.
* ``extra`` (optional dict): free-form solver settings (e.g. ``fixed`` description) from the caller.

``arrays``:

* ``displacement_mm`` (N, 3) float64: nodal displacement in LPS mm.
* ``von_mises_pa`` (M,) float64: von Mises (Cauchy) stress per tetrahedron in Pa.
* ``strain`` (M, 6) float64: per-tetrahedron strain tensor components
  ``(xx, yy, zz, xy, yz, xz)`` (tensor, not engineering, shear), dimensionless.
* ``reaction_forces_n`` (N, 3) float64: force the supports/prescribed displacements exert on the tissue, N
  (zero at free nodes).
* ``tool_displacement_mm`` (S,) and ``tool_force_n`` (S, 3): only when a tool scenario ran; tool travel
  along its path in mm and the force the tissue exerts on the tool in N.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from workstation.errors import InputError
from workstation.model import Record, TetMesh

SCHEMA = "mechanics.simulation/1"
STRAIN_COMPONENTS = ("xx", "yy", "zz", "xy", "yz", "xz")


@dataclass(frozen=True, eq=False)
class StepHistory:
    """Convergence of one load step: residual norm (N) after each iteration."""

    step: int
    load_factor: float
    residual_norms_n: tuple[float, ...]
    converged: bool

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "load_factor": self.load_factor,
                "residual_norms_n": [float(r) for r in self.residual_norms_n], "converged": self.converged}


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """A solved (or partially solved) load case on a tetrahedral mesh.

    Attributes
    ----------
    displacement_mm : (N, 3) nodal displacement, mm (LPS).
    von_mises_pa : (M,) von Mises stress per tetrahedron, Pa.
    strain : (M, 6) strain tensor per tetrahedron ``(xx, yy, zz, xy, yz, xz)``.
    reaction_forces_n : (N, 3) support reactions, N (zero where no displacement is prescribed).
    model : ``"linear"``, ``"corotational"``, ``"neo-hookean"`` or ``"corotational-dynamic"``.
    materials : list of material descriptions (see the module docstring).
    history : one :class:`StepHistory` per load step attempted.
    status : ``"converged"``, ``"diverged"`` or ``"max-iterations"``; ``message`` explains.
    load_steps, load_steps_completed : requested and completed load steps (a diverged solve keeps
        the displacement of the last completed step).
    tool_displacement_mm, tool_force_n : (S,) and (S, 3) for tool scenarios, else None.
    """

    displacement_mm: NDArray[np.float64]
    von_mises_pa: NDArray[np.float64]
    strain: NDArray[np.float64]
    reaction_forces_n: NDArray[np.float64]
    model: str
    materials: list[dict[str, Any]]
    history: tuple[StepHistory, ...] = ()
    status: str = "converged"
    message: str = ""
    load_steps: int = 1
    load_steps_completed: int = 1
    strain_measure: str = "small"
    tool_displacement_mm: NDArray[np.float64] | None = None
    tool_force_n: NDArray[np.float64] | None = None
    tool: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def converged(self) -> bool:
        return self.status == "converged"

    @property
    def max_displacement_mm(self) -> float:
        return float(np.linalg.norm(self.displacement_mm, axis=1).max()) if len(self.displacement_mm) else 0.0

    @property
    def max_von_mises_pa(self) -> float:
        return float(self.von_mises_pa.max()) if len(self.von_mises_pa) else 0.0

    def deformed_points_mm(self, mesh: TetMesh, *, scale: float = 1.0) -> NDArray[np.float64]:
        """(N, 3) deformed node positions, LPS mm (displacement multiplied by ``scale``)."""
        return np.asarray(mesh.points_lps) + scale * self.displacement_mm

    def to_pyvista(self, mesh: TetMesh) -> Any:
        """A ``pyvista.UnstructuredGrid`` of the undeformed mesh with the result as point/cell data."""
        grid = mesh.to_pyvista()
        grid.point_data["displacement_mm"] = np.array(self.displacement_mm)
        grid.point_data["reaction_forces_n"] = np.array(self.reaction_forces_n)
        grid.cell_data["von_mises_pa"] = np.array(self.von_mises_pa)
        grid.cell_data["strain"] = np.array(self.strain)
        return grid

    def deformed_surface(self, mesh: TetMesh, *, scale: float = 1.0) -> Any:
        """The deformed outer surface as ``pyvista.PolyData`` (LPS mm) with ``von_mises_pa`` cell data."""
        grid = self.to_pyvista(mesh)
        grid.points = self.deformed_points_mm(mesh, scale=scale)
        return grid.extract_surface(pass_pointid=True, pass_cellid=True, algorithm="dataset_surface")

    def save_vtu(self, mesh: TetMesh, path: str | os.PathLike[str]) -> None:
        """Write a ParaView ``.vtu`` file atomically (coordinates LPS mm; arrays named with units)."""
        from workstation.io.atomic import atomic_path

        if not str(path).endswith(".vtu"):
            raise InputError(f"{path}: a VTU export must end in .vtu")
        grid = self.to_pyvista(mesh)
        grid.field_data["coordinate_system"] = np.array(["LPS"])
        with atomic_path(path) as tmp:
            grid.save(str(tmp), binary=True)

    def to_record(self, name: str, tet_mesh_id: str, *, extra: Mapping[str, Any] | None = None) -> Record:
        """The case-bundle form (see the module docstring for the exact contract)."""
        meta: dict[str, Any] = {
            "schema": SCHEMA, "coordinate_system": "LPS", "tet_mesh_id": tet_mesh_id, "model": self.model,
            "materials": [dict(m) for m in self.materials], "load_steps": int(self.load_steps),
            "load_steps_completed": int(self.load_steps_completed), "status": self.status,
            "converged": self.converged, "message": self.message,
            "max_displacement_mm": self.max_displacement_mm, "max_von_mises_pa": self.max_von_mises_pa,
            "convergence": [h.to_dict() for h in self.history], "strain_measure": self.strain_measure,
        }
        merged_extra = {**self.extra, **(dict(extra) if extra else {})}
        if merged_extra:
            meta["extra"] = merged_extra
        arrays = {"displacement_mm": self.displacement_mm, "von_mises_pa": self.von_mises_pa,
                  "strain": self.strain, "reaction_forces_n": self.reaction_forces_n}
        if self.tool_displacement_mm is not None and self.tool_force_n is not None:
            arrays["tool_displacement_mm"] = self.tool_displacement_mm
            arrays["tool_force_n"] = self.tool_force_n
            meta["tool"] = dict(self.tool or {})
            meta["tool"].setdefault("force_convention", "force the tissue exerts on the tool, N")
        return Record(kind="simulation", meta=meta, arrays=arrays, name=name)

    @classmethod
    def from_record(cls, record: Record) -> SimulationResult:
        """Rebuild a result from :meth:`to_record` output."""
        meta = record.meta
        if record.kind != "simulation" or meta.get("schema") != SCHEMA:
            raise InputError(f"record {record.name!r}: not a mechanics simulation result ({meta.get('schema')!r})")
        arrays = record.arrays
        history = tuple(StepHistory(int(h["step"]), float(h["load_factor"]), tuple(h["residual_norms_n"]),
                                    bool(h["converged"])) for h in meta.get("convergence", []))
        n_points = len(arrays["displacement_mm"])
        return cls(
            displacement_mm=np.array(arrays["displacement_mm"], dtype=float),
            von_mises_pa=np.array(arrays["von_mises_pa"], dtype=float),
            strain=np.array(arrays["strain"], dtype=float),
            reaction_forces_n=np.array(arrays.get("reaction_forces_n", np.zeros((n_points, 3))), dtype=float),
            model=str(meta["model"]), materials=list(meta.get("materials", [])), history=history,
            status=str(meta["status"]), message=str(meta.get("message", "")),
            load_steps=int(meta.get("load_steps", 1)),
            load_steps_completed=int(meta.get("load_steps_completed", meta.get("load_steps", 1))),
            strain_measure=str(meta.get("strain_measure", "small")),
            tool_displacement_mm=(np.array(arrays["tool_displacement_mm"], dtype=float)
                                  if "tool_displacement_mm" in arrays else None),
            tool_force_n=np.array(arrays["tool_force_n"], dtype=float) if "tool_force_n" in arrays else None,
            tool=meta.get("tool"), extra=dict(meta.get("extra", {})))
