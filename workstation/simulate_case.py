"""Tissue mechanics on a case: what ``twin tetmesh | simulate | results`` and the app call.

A segment's tetrahedral mesh is stored in ``case.tet_meshes`` under ``tet-<segment>`` (several
segments: ``tet-<a>+<b>``) with its provenance (segment, label map, size, mesher, quality);
simulation results are ``Record(kind="simulation")`` (see :mod:`mechanics.results`) that name the
tet mesh they refer to. Re-meshing a segment drops the results computed on the old mesh.

Boundary conditions, all in LPS mm:

* ``fix``: a segment name (the mesh's surface nodes within ``contact_mm`` of that segment's
  surface, e.g. where the liver rests on bone) or ``plane:x,y,z:nx,ny,nz`` (the nodes on the side
  the normal points to).
* ``pushes``: ``(point_lps, displacement_mm)``: the surface nodes within ``push_radius_mm`` of the
  point move by the displacement (a retractor or probe pushing the tissue); where a push and a fix select the
  same node, the push wins.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from workstation import segment_case
from workstation.errors import InputError
from workstation.io.atomic import output_file
from workstation.model import Case, LabelMap, Record, TetMesh
from workstation.progress import ProgressCallback

DEFAULT_SIZE_MM = 6.0
DEFAULT_CONTACT_MM = 3.0
DEFAULT_PUSH_RADIUS_MM = 10.0
_MIN_SURFACE_REDUCTION, _MAX_SURFACE_REDUCTION = 0.5, 0.95
MESHERS = ("auto", "tetgen", "ftetwild")


def tet_mesh_id(segments: str | Sequence[str]) -> str:
    names = [segments] if isinstance(segments, str) else list(segments)
    return "tet-" + "+".join(names)


def _segment_value(label_map: LabelMap, name: str) -> int:
    try:
        value = label_map.segment(name).value
    except KeyError as exc:
        raise InputError(f"--segment {name}: {exc.args[0]}") from None
    if not (label_map.array == value).any():
        raise InputError(f"--segment {name}: the segment is empty")
    return value


def _surface_reduction(label_map: LabelMap, size_mm: float) -> float:
    spacing = label_map.spacing_mm
    face = float(np.prod(spacing)) ** (2.0 / 3.0)
    # Two triangles per voxel face before decimation; aim at triangles with edges of about size_mm.
    wanted = 1.0 - 2.0 * face / (np.sqrt(3.0) / 4.0 * size_mm ** 2)
    return float(np.clip(wanted, _MIN_SURFACE_REDUCTION, _MAX_SURFACE_REDUCTION))


def _store_tet_mesh(case: Case, mesh: TetMesh) -> TetMesh:
    stale = [r.id for r in case.records_of("simulation") if r.meta.get("tet_mesh_id") == mesh.id]
    for record_id in stale:
        case.remove_record(record_id)
    case.tet_meshes.pop(mesh.id, None)
    stored = case.add_tet_mesh(mesh)
    if stale:
        case.log.append(f"re-meshed {mesh.id}: dropped {len(stale)} simulation result(s) computed on the old mesh")
    return stored


def _envelope_mm(label_map: LabelMap) -> float:
    """fTetWild's envelope: half the largest voxel spacing, mm."""
    return 0.5 * float(label_map.spacing_mm.max())


def _multi_region_mesh(label_map: LabelMap, segments: Sequence[str], values: list[int], *, size_mm: float,
                       mesher: str, progress: ProgressCallback | None) -> TetMesh:
    """A conforming mesh of the segments' shared-interface surfaces at element size (fTetWild, see
    :mod:`mechanics.envelope_meshing`; the envelope is half the largest voxel spacing). When that
    fails, TetGen on the same surfaces (conforming too, but it keeps their finer triangles); when
    TetGen refuses them as well (smoothed real segmentations often touch themselves), the union's
    surface is meshed and each tet takes the label at its centroid (interfaces then follow tet
    faces; provenance says so)."""
    from dataclasses import replace as replace_field

    from mechanics import meshing
    from mechanics.envelope_meshing import tetrahedralize_regions_envelope
    from segmentation.surface import label_map_surfaces, label_to_surface

    surfaces = label_map_surfaces(label_map, segments=list(segments),
                                  target_reduction=_surface_reduction(label_map, size_mm), progress=progress)
    chosen = [surfaces[name] for name in segments]
    envelope_failure = "not tried (--mesher tetgen)"
    if mesher != "tetgen":
        try:
            return tetrahedralize_regions_envelope(chosen, values, size_mm=size_mm, epsilon_mm=_envelope_mm(label_map),
                                                   name="+".join(segments), progress=progress)
        except InputError as exc:
            if mesher == "ftetwild":
                raise InputError(f"--segment {'+'.join(segments)}: {exc}") from None
            envelope_failure = str(exc)
    try:
        mesh = meshing.tetrahedralize_regions(chosen, values, size_mm=size_mm, name="+".join(segments),
                                              progress=progress)
        return replace_field(mesh, provenance={**mesh.provenance, "envelope_mesh_failed": envelope_failure})
    except InputError as exc:
        reason = str(exc)
    union = label_map.with_array(np.where(np.isin(label_map.array, values), values[0], 0).astype(label_map.array.dtype))
    surface = label_to_surface(union, values[0], progress=progress)
    try:
        mesh = meshing.tetrahedralize(surface, size_mm=size_mm, repair=True, region_id=values[0],
                                      name="+".join(segments), progress=progress)
    except InputError as exc:
        raise InputError(f"--segment {'+'.join(segments)}: {exc}") from None
    mesh = meshing.regions_from_labels(mesh, label_map, values)
    return replace_field(mesh, provenance={**mesh.provenance, "envelope_mesh_failed": envelope_failure,
                                           "conforming_mesh_failed": reason})


def tetmesh_segments(case: Case, segments: Sequence[str], *, size_mm: float = DEFAULT_SIZE_MM,
                     from_labels: bool = False, repair: bool = True, mesher: str = "auto",
                     volume_id: str | None = None, progress: ProgressCallback | None = None) -> TetMesh:
    """Tetrahedral mesh of one segment or of several touching segments (one conforming mesh, region
    id = label value), stored in ``case.tet_meshes`` as ``tet-<names>``.

    Parameters
    ----------
    segments : segment names.
    size_mm : target element edge length, mm.
    from_labels : mesh the voxels (6 tets per block of ``round(size_mm / voxel size)`` voxels) instead of the
        surface: the fallback for surfaces that cannot be meshed.
    repair : repair a one-segment surface that is not watertight or intersects itself (pymeshfix) instead of
        refusing it; several segments are never repaired (that would break their shared interfaces).
    mesher : ``"auto"``: TetGen for one segment (it keeps the surface exactly and is reproducible),
        fTetWild for several (:mod:`mechanics.envelope_meshing`; TetGen as the fallback); ``"tetgen"`` or
        ``"ftetwild"``: that mesher only (fTetWild gives better-shaped tets, but not the same ones twice).

    Raises
    ------
    InputError
        Unknown or empty segment, bad size, a surface that cannot be meshed (the message suggests
        ``--from-labels``).
    """
    from mechanics import meshing, voxel_tets
    from mechanics.quality import tet_quality

    if not segments:
        raise InputError("--segment: name at least one segment")
    if len(set(segments)) != len(segments):
        raise InputError(f"--segment {list(segments)}: a segment is named twice")
    if not (isinstance(size_mm, (int, float)) and np.isfinite(size_mm) and size_mm > 0):
        raise InputError(f"--size-mm {size_mm!r}: must be a positive number of millimetres")
    if mesher not in MESHERS:
        raise InputError(f"--mesher {mesher!r}: one of {', '.join(MESHERS)}")
    label_map = segment_case.segmented_label_map(case, volume_id)
    values = [_segment_value(label_map, name) for name in segments]
    mesh_id = tet_mesh_id(segments)
    if from_labels:
        spacing = label_map.spacing_mm
        stride = max(1, int(round(size_mm / float(np.prod(spacing)) ** (1.0 / 3.0))))
        mesh = voxel_tets.voxel_tetrahedra(label_map, labels=values, stride=stride, name="+".join(segments),
                                           progress=progress)
    elif len(segments) == 1:
        surface = segment_case.segment_surface(case, segments[0], volume_id=volume_id, progress=progress)
        try:
            if mesher == "ftetwild":
                from mechanics.envelope_meshing import tetrahedralize_regions_envelope

                coarse = meshing.coarsen_surface(surface, float(size_mm))  # fTetWild's time grows with its input
                mesh = tetrahedralize_regions_envelope([coarse], values, size_mm=float(size_mm),
                                                       epsilon_mm=_envelope_mm(label_map), name=segments[0],
                                                       progress=progress)
            else:
                mesh = meshing.tetrahedralize(surface, size_mm=float(size_mm), repair=repair, region_id=values[0],
                                              name=segments[0], progress=progress)
        except InputError as exc:
            raise InputError(f"--segment {segments[0]}: {exc}") from None
    else:
        mesh = _multi_region_mesh(label_map, segments, values, size_mm=float(size_mm), mesher=mesher,
                                  progress=progress)
    quality = tet_quality(mesh)
    mesh = replace(mesh, id=mesh_id, provenance={
        **mesh.provenance, "segments": list(segments), "label_values": values, "label_map_id": label_map.id,
        "size_mm": float(size_mm), "source": "labels" if from_labels else "surface", "quality": quality.to_dict()})
    return _store_tet_mesh(case, mesh)


def tetmesh_segment(case: Case, segment_name: str, *, size_mm: float = DEFAULT_SIZE_MM, from_labels: bool = False,
                    repair: bool = True, mesher: str = "auto", volume_id: str | None = None,
                    progress: ProgressCallback | None = None) -> TetMesh:
    """Tetrahedral mesh of one segment (see :func:`tetmesh_segments`)."""
    return tetmesh_segments(case, [segment_name], size_mm=size_mm, from_labels=from_labels, repair=repair,
                            mesher=mesher, volume_id=volume_id, progress=progress)


_PLANE = re.compile(r"^plane:([^:]+):([^:]+)$")


def _floats(text: str, what: str) -> np.ndarray:
    try:
        values = np.array([float(v) for v in text.split(",")])
    except ValueError:
        values = np.zeros(0)
    if values.shape != (3,) or not np.all(np.isfinite(values)):
        raise InputError(f"{what} {text!r}: expected three numbers x,y,z (LPS mm)")
    return values


def fix_mask(case: Case, mesh: TetMesh, spec: str, *, contact_mm: float = DEFAULT_CONTACT_MM,
             volume_id: str | None = None) -> np.ndarray:
    """(N,) nodes fixed by one ``fix`` spec: a segment name or ``plane:x,y,z:nx,ny,nz``."""
    from mechanics import selection

    match = _PLANE.match(spec.strip())
    if match:
        point = _floats(match.group(1), "--fix plane point")
        normal = _floats(match.group(2), "--fix plane normal")
        mask = selection.nodes_beyond_plane(mesh, point, normal)
    elif spec.startswith("plane"):
        raise InputError(f"--fix {spec!r}: a plane is written plane:x,y,z:nx,ny,nz (LPS mm)")
    else:
        try:
            surface = segment_case.segment_surface(case, spec, volume_id=volume_id)
        except InputError as exc:
            raise InputError(str(exc).replace("--segment", "--fix", 1)) from None
        mask = selection.nodes_near_surface(mesh, surface, contact_mm)
    if not mask.any():
        raise InputError(f"--fix {spec}: selects no node of the mesh {mesh.id!r}")
    return mask


def simulate(case: Case, *, segment: str | Sequence[str], material: str, fix: Sequence[str],
             pushes: Sequence[tuple[ArrayLike, ArrayLike]], model: str = "linear", load_steps: int = 1,
             name: str | None = None, size_mm: float = DEFAULT_SIZE_MM, push_radius_mm: float = DEFAULT_PUSH_RADIUS_MM,
             contact_mm: float = DEFAULT_CONTACT_MM, volume_id: str | None = None,
             progress: ProgressCallback | None = None) -> tuple[Record, Any]:
    """Solve a static load case on a segment's tet mesh (meshed first when missing) and store the result.

    Returns
    -------
    (Record, SimulationResult)
        The stored ``Record(kind="simulation")`` and the result object.

    Raises
    ------
    InputError
        Unknown segment or material, a fix or push that selects no node, no fix at all, or a
        solver refusal (e.g. a model free to move as a rigid body).
    """
    import mechanics
    from mechanics import selection

    segments = [segment] if isinstance(segment, str) else list(segment)
    if not fix:
        raise InputError("--fix: give at least one support (a segment name or plane:x,y,z:nx,ny,nz)")
    if not (np.isfinite(push_radius_mm) and push_radius_mm > 0):
        raise InputError(f"--push-radius-mm {push_radius_mm!r}: must be > 0")
    try:
        mat = mechanics.material(material)
    except KeyError:
        raise InputError(f"--material {material}: unknown; library: {', '.join(mechanics.library_names())}") from None
    mesh = case.tet_meshes.get(tet_mesh_id(segments))
    if mesh is None:
        mesh = tetmesh_segments(case, segments, size_mm=size_mm, volume_id=volume_id, progress=progress)
    fixed = np.zeros(mesh.n_points, dtype=bool)
    for spec in fix:
        fixed |= fix_mask(case, mesh, spec, contact_mm=contact_mm, volume_id=volume_id)
    prescribed = np.zeros((mesh.n_points, 3))
    pushed = np.zeros(mesh.n_points, dtype=bool)
    push_meta = []
    for point, displacement in pushes:
        point, displacement = np.asarray(point, dtype=float), np.asarray(displacement, dtype=float)
        if point.shape != (3,) or displacement.shape != (3,) or not (np.isfinite(point).all()
                                                                     and np.isfinite(displacement).all()):
            raise InputError(f"--push {point}:{displacement}: expected x,y,z:dx,dy,dz (LPS mm)")
        mask = selection.nodes_near_point(mesh, point, push_radius_mm, boundary_only=True)
        if not mask.any():
            raise InputError(f"--push {','.join(f'{v:g}' for v in point)}: no surface node of {mesh.id!r} within "
                             f"{push_radius_mm:g} mm of the point")
        prescribed[mask] = displacement
        pushed |= mask
        push_meta.append({"point_lps": point.tolist(), "displacement_mm": displacement.tolist(),
                          "n_nodes": int(mask.sum())})
    fixed_dofs = selection.fixed_dofs(fixed | pushed)
    result = mechanics.solve_static(mesh, mat, fixed_dofs=fixed_dofs, prescribed_displacement_mm=prescribed,
                                    model=model, load_steps=load_steps, progress=progress)
    extra = {"segments": segments, "fix": list(fix), "n_fixed_nodes": int(fixed.sum()), "pushes": push_meta,
             "push_radius_mm": float(push_radius_mm), "contact_mm": float(contact_mm)}
    record = result.to_record(name or f"{'+'.join(segments)}-{model}", mesh.id, extra=extra)
    return case.add_record(record, replace_same_name=True), result


def stored_result(case: Case, name: str) -> tuple[Any, TetMesh, Record]:
    """A stored simulation result, the tet mesh it refers to and its record."""
    from mechanics.results import SimulationResult

    try:
        record = case.record("simulation", name)
    except KeyError as exc:
        raise InputError(f"--result: {exc.args[0]}") from None
    mesh = case.tet_meshes.get(record.meta.get("tet_mesh_id", ""))
    if mesh is None:
        raise InputError(f"result {name!r}: its tet mesh {record.meta.get('tet_mesh_id')!r} is not in the case")
    return SimulationResult.from_record(record), mesh, record


def export_vtu(case: Case, name: str, path: str | os.PathLike[str]) -> Path:
    """Write a stored result as a ParaView ``.vtu`` (point data ``displacement_mm``, cell data ``von_mises_pa``)."""
    path = output_file(path, suffixes=(".vtu",), option="--vtu")
    result, mesh, _ = stored_result(case, name)
    result.save_vtu(mesh, path)
    return path


DEMO_RESULT = "demo-liver-retraction"


def mechanics_demo_stage(case: Case, out_dir: str | os.PathLike[str], *, progress: ProgressCallback | None,
                         say: Callable[[str], Any]) -> list[tuple[Path, str]]:
    """Liver retraction on the segmented sample case: mesh, fix, push, store, VTU and a picture.

    The liver is meshed at 10 mm (about 19k tets on the sample), held on its posterior fifth (a plane)
    and pushed 10 mm posteriorly at its most anterior point by a retractor (prescribed displacement of
    the surface nodes within 15 mm), linear elastic with the library's liver material.
    """
    import time

    from mechanics.quality import tet_quality

    out = Path(out_dir)
    start = time.perf_counter()
    mesh = tetmesh_segment(case, "liver", size_mm=10.0, progress=progress)
    quality = tet_quality(mesh)
    say(f"  liver tet mesh: {quality.summary()} ({time.perf_counter() - start:.1f} s)")
    points = np.asarray(mesh.points_lps)
    y_min, y_max = float(points[:, 1].min()), float(points[:, 1].max())
    plane_point = f"0,{y_max - 0.2 * (y_max - y_min):.2f},0"
    from mechanics.selection import boundary_nodes

    surface_points = points[boundary_nodes(mesh)]
    tip = surface_points[np.argmin(surface_points[:, 1])]
    start = time.perf_counter()
    _, result = simulate(case, segment="liver", material="liver", fix=[f"plane:{plane_point}:0,1,0"],
                              pushes=[(tip, (0.0, 10.0, 0.0))], push_radius_mm=15.0, name=DEMO_RESULT,
                              progress=progress)
    say(f"  retraction (10 mm posterior at {np.round(tip, 1).tolist()} LPS): max displacement "
        f"{result.max_displacement_mm:.1f} mm, max von Mises {result.max_von_mises_pa:.0f} Pa, "
        f"{time.perf_counter() - start:.1f} s")
    made: list[tuple[Path, str]] = []
    vtu = export_vtu(case, DEMO_RESULT, out / "liver-retraction.vtu")
    made.append((vtu, "liver retraction result for ParaView (displacement_mm, von_mises_pa; LPS mm)"))
    from workstation.render.case_scene import SceneOptions, build_case_scene, camera_for

    present = {segment.name for label_map in case.label_maps.values() for segment in label_map.segments}
    context = [name for name in ("bone", "vertebra_T12", "aorta") if name in present]
    options = SceneOptions(segments=context, surfaces=bool(context), plan=False, simulation=DEMO_RESULT)
    with build_case_scene(case, options, size=(900, 700), progress=progress) as scene:
        scene.set_camera(camera_for(scene, case, "anterior_superior"))
        scene.add_title("liver retraction 10 mm, coloured by displacement (view from anterior-superior)")
        picture = scene.save_png(out / "liver-retraction.png")
    made.append((picture, "the retracted liver coloured by displacement (mm), with bone, T12 and aorta when segmented"))
    return made
