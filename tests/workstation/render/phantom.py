"""A small analytic CT phantom case for rendering and report tests (built in memory, LPS mm)."""

from __future__ import annotations

import numpy as np

from workstation.model import Case, LabelMap, Segment, TetMesh, Volume
from workstation.model.plan import Landmark, Trajectory
from workstation.model.record import Record

SPACING_MM = 2.0
SHAPE_KJI = (24, 32, 32)
BONE_CENTER_LPS = (0.0, 0.0, 0.0)
BONE_RADIUS_MM = 12.0


def phantom_volume() -> Volume:
    """Air (-1000 HU) with a soft-tissue cylinder (40 HU, radius 26 mm, along S-I) holding a bone sphere
    (1000 HU, radius 12 mm) at the LPS origin; voxel centres symmetric about the origin."""
    k, j, i = np.indices(SHAPE_KJI)
    origin = -SPACING_MM * (np.array(SHAPE_KJI[::-1]) - 1) / 2
    x, y, z = (origin[0] + SPACING_MM * i, origin[1] + SPACING_MM * j, origin[2] + SPACING_MM * k)
    hu = np.full(SHAPE_KJI, -1000, dtype=np.int16)
    hu[x**2 + y**2 <= 26.0**2] = 40
    hu[x**2 + y**2 + z**2 <= BONE_RADIUS_MM**2] = 1000
    return Volume.from_geometry(hu, spacing_mm=(SPACING_MM,) * 3, origin_lps=origin, modality="CT", id="ct",
                                name="phantom")


def bone_labels(volume: Volume) -> LabelMap:
    return LabelMap(array=(volume.array > 300).astype(np.uint8), ijk_to_lps=volume.ijk_to_lps,
                    segments=(Segment(1, "bone", (0.95, 0.92, 0.84)),), id=f"{volume.id}-labels",
                    source_volume_id=volume.id)


TRAJECTORY = Trajectory("posterior-path", entry_lps=(10.0, 60.0, 0.0), target_lps=(0.0, 0.0, 0.0),
                        tool_diameter_mm=3.0)


def block_tet_mesh(size_mm: float = 20.0, n: int = 4) -> TetMesh:
    """A cube of tetrahedra centred at the origin (pyvista's image grid split into tets)."""
    import pyvista as pv

    grid = pv.ImageData(dimensions=(n + 1,) * 3, spacing=(size_mm / n,) * 3, origin=(-size_mm / 2,) * 3)
    tets = grid.triangulate()
    cells = np.asarray(tets.cells).reshape(-1, 5)[:, 1:]
    return TetMesh(points_lps=np.asarray(tets.points), tets=cells, name="block", id="block")


def simulation_record(mesh: TetMesh, *, top_displacement_mm: float = 4.0) -> Record:
    """A result on ``mesh`` following the mechanics contract: displacement growing linearly with z
    (0 at the bottom, ``top_displacement_mm`` in -Y at the top), von Mises per tet and a tool load curve."""
    z = mesh.points_lps[:, 2]
    t = (z - z.min()) / (z.max() - z.min())
    displacement = np.zeros((mesh.n_points, 3))
    displacement[:, 1] = -top_displacement_mm * t
    centroid_z = mesh.points_lps[mesh.tets][:, :, 2].mean(axis=1)
    von_mises = 1000.0 + 500.0 * (centroid_z - z.min())
    travel = np.linspace(0.0, 5.0, 6)
    force = np.column_stack([np.zeros(6), 0.4 * travel, np.zeros(6)])
    return Record(kind="simulation", name="retractor", meta={"schema": "mechanics.simulation/1",
                                                            "coordinate_system": "LPS", "tet_mesh_id": mesh.id,
                                                            "model": "linear", "status": "converged",
                                                            "load_steps": 6},
                  arrays={"displacement_mm": displacement, "von_mises_pa": von_mises,
                          "tool_displacement_mm": travel, "tool_force_n": force})


def phantom_case(*, with_plan: bool = True, with_results: bool = False) -> Case:
    """A case holding the phantom volume and its bone label map (no surface yet)."""
    case = Case(name="phantom")
    volume = case.add_volume(phantom_volume())
    case.add_label_map(bone_labels(volume))
    if with_plan:
        plan = case.plan.with_item(TRAJECTORY).with_item(Landmark("tip", (0.0, -20.0, 10.0)))
        case.set_plan(plan)
    if with_results:
        mesh = case.add_tet_mesh(block_tet_mesh())
        case.add_record(simulation_record(mesh))
        case.add_record(Record(kind="safety", name="posterior-path", meta={
            "trajectory": "posterior-path", "margin_mm": 2.0, "entry_angle_deg": 12.5, "tool_diameter_mm": 3.0,
            "structures": [{"segment": "bone", "min_distance_mm": 0.0, "clearance_mm": -1.5, "violated": True},
                           {"segment": "aorta", "min_distance_mm": 14.2, "clearance_mm": 12.7, "violated": False}]}))
    return case
