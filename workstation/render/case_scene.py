"""Build a rehearsal scene from a case: surfaces (built from the label map when missing), volume rendering,
MPR slices, the plan, mechanics results and clearance maps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from workstation.errors import InputError
from workstation.model.case import Case, CaseEvents
from workstation.model.mesh import SurfaceMesh
from workstation.progress import ProgressCallback, report
from workstation.render.cameras import CameraPose, find_trajectory, probe_view, standard_view
from workstation.render.mechanics_view import QUANTITIES, deformed_surface, field_range, simulation_result
from workstation.render.mpr import oblique_plane, standard_plane
from workstation.render.presets import WINDOW_LEVELS, volume_preset
from workstation.render.scene import RehearsalScene


@dataclass(frozen=True)
class SceneOptions:
    """What to show. Names refer to the case: segments, trajectories, simulation records.

    Attributes
    ----------
    segments : surfaces to draw (default: every segment and every stored surface).
    surfaces : draw segment surfaces at all.
    volume_preset : ``"bone"``, ``"soft_tissue"`` or ``"vessels"`` for volume rendering, or None.
    mpr : ``"axial"``, ``"coronal"``, ``"sagittal"`` or ``"oblique:<trajectory>"``, or None.
    window_level : (width, level) HU for the slice (default soft tissue, bone for the bone preset).
    plan : draw plan items.
    hide_tools : trajectories whose tool cylinder is not drawn (e.g. the one the camera looks down).
    simulation : a simulation record name, ``"latest"``, or None.
    color_by : ``"displacement"`` or ``"von_mises"``.
    clearance : a trajectory name: colour the surfaces by distance to its tool (mm).
    opacity : per segment name, overriding the defaults.
    """

    segments: Sequence[str] | None = None
    surfaces: bool = True
    volume_preset: str | None = None
    mpr: str | None = None
    window_level: tuple[float, float] | None = None
    plan: bool = True
    hide_tools: Sequence[str] = ()
    simulation: str | None = None
    color_by: str = "displacement"
    clearance: str | None = None
    opacity: dict[str, float] = field(default_factory=dict)


def case_surfaces(case: Case, *, segments: Sequence[str] | None = None,
                  progress: ProgressCallback | None = None) -> list[SurfaceMesh]:
    """The case's surfaces to draw, building missing segment surfaces from the label map.

    Built surfaces go into a shallow copy of the case: ``case`` itself is not changed.
    """
    from workstation import segment_case

    present = {m.segment or m.name for m in case.meshes.values()}
    wanted: list[str] = []
    for label_map in case.label_maps.values():
        for seg in label_map.segments:
            if (segments is None or seg.name in segments) and seg.name not in present and seg.name not in wanted \
                    and (label_map.array == seg.value).any():
                wanted.append(seg.name)
    meshes = [m for m in case.meshes.values() if segments is None or (m.segment or m.name) in segments]
    if wanted:
        work = replace(case, meshes=dict(case.meshes), events=CaseEvents())
        report(progress, 0, 1, f"building surfaces of {', '.join(wanted)}")
        meshes += segment_case.build_surfaces(work, segments=wanted, progress=progress)
        report(progress, 1, 1, "surfaces built")
    if segments is not None:
        missing = set(segments) - {m.segment or m.name for m in meshes}
        if missing:
            raise InputError(f"--segment: no segment or surface called {sorted(missing)}")
    return meshes


def with_surfaces(case: Case, *, progress: ProgressCallback | None = None) -> Case:
    """A shallow copy of ``case`` whose every non-empty segment has a surface (``case`` is not changed)."""
    meshes = case_surfaces(case, progress=progress)
    work = replace(case, meshes=dict(case.meshes), events=CaseEvents())
    for mesh in meshes:
        work.meshes[mesh.id] = mesh
    return work


def build_case_scene(case: Case, options: SceneOptions = SceneOptions(), *, size: tuple[int, int] = (800, 600),
                     progress: ProgressCallback | None = None) -> RehearsalScene:
    """A :class:`RehearsalScene` of ``case`` showing what ``options`` asks for."""
    scene = RehearsalScene(size=size)
    try:
        _fill(scene, case, options, progress)
    except BaseException:
        scene.close()
        raise
    return scene


def _fill(scene: RehearsalScene, case: Case, options: SceneOptions, progress: ProgressCallback | None) -> None:
    clearance_traj = find_trajectory(case.plan.trajectories, options.clearance) if options.clearance else None
    if options.simulation:
        result = simulation_result(case, None if options.simulation == "latest" else options.simulation)
        if options.color_by not in QUANTITIES:
            raise InputError(f"--color-by {options.color_by!r}: expected one of {', '.join(QUANTITIES)}")
        key, title, cmap = QUANTITIES[options.color_by]
        clim = field_range(result, options.color_by)
        scene.add_field_surface(deformed_surface(result), scalars=key, title=title, cmap=cmap, clim=clim,
                                name="simulation")
    if options.surfaces and (case.meshes or case.label_maps):
        for mesh in case_surfaces(case, segments=options.segments, progress=progress):
            if clearance_traj is not None:
                scene.add_clearance_map(mesh, clearance_traj)
            else:
                scene.add_surface(mesh, opacity=options.opacity.get(mesh.segment or mesh.name))
    if options.volume_preset:
        scene.add_volume(case.volume(), volume_preset(options.volume_preset))
    if options.mpr:
        volume = case.volume()
        if options.mpr.startswith("oblique:"):
            plane = oblique_plane(find_trajectory(case.plan.trajectories, options.mpr.split(":", 1)[1]))
        else:
            plane = standard_plane(volume, options.mpr)
        wl = options.window_level or (WINDOW_LEVELS["bone"] if options.volume_preset == "bone"
                                      else WINDOW_LEVELS["soft_tissue"])
        scene.add_slice(volume, plane, window_level=wl)
    if scene.is_empty and case.volumes:  # nothing drawn yet: show the bones of the volume
        scene.add_volume(case.volume(), volume_preset("bone"))
    if options.plan:
        scene.add_plan(case.plan, hide_tools=options.hide_tools)


def camera_for(scene: RehearsalScene, case: Case, view: str) -> CameraPose:
    """The camera a ``--view`` names: a standard view, ``probe:<trajectory>``, or ``camera:<saved name>``."""
    if view.startswith("probe:"):
        return probe_view(find_trajectory(case.plan.trajectories, view.split(":", 1)[1]))
    if view.startswith("camera:"):
        name = view.split(":", 1)[1]
        try:
            return CameraPose.from_meta(case.record("camera", name).meta)
        except KeyError as exc:
            raise InputError(f"--view {view}: {exc.args[0]}") from None
    return standard_view(view, scene.bounds, aspect=scene.size[0] / scene.size[1])
