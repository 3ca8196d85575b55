"""The HTML rehearsal report: one self-contained file (pictures embedded as base64 PNG).

Sections: de-identified summary, views (standard, probe's-eye, slice, clearance, mechanics), segment
statistics, the plan with its safety analysis, mechanics results with a force-displacement plot, and the
plan's digest. No PHI: only de-identified identifiers and what de-identification did.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from workstation import __version__
from workstation.errors import OutputError
from workstation.io.atomic import output_file, write_text_atomic
from workstation.label_journal import KIND as JOURNAL_KIND
from workstation.model.case import Case
from workstation.progress import ProgressCallback, report
from workstation.report.plots import force_displacement_png
from workstation.report.template import REPORT_TEMPLATE

MAX_PROBE_VIEWS = 4


def _png_src(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _image_src(picture: np.ndarray) -> str:
    import imageio.v3 as iio

    return _png_src(iio.imwrite("<bytes>", picture, extension=".png"))


def _pt(p: Any) -> str:
    return "(" + ", ".join(f"{float(x):.1f}" for x in p) + ")"


def summary_of(case: Case) -> dict[str, Any]:
    """De-identified summary: what de-identification did, volume geometry, what the case holds."""
    deid = case.deidentification or {}
    volumes = []
    for v in case.volumes.values():
        extent = v.corners_lps().max(0) - v.corners_lps().min(0)
        volumes.append({"id": v.id, "modality": v.modality, "size": "x".join(str(n) for n in v.size_ijk),
                        "spacing": "x".join(f"{s:.3g}" for s in v.spacing_mm),
                        "extent": "x".join(f"{e:.0f}" for e in extent)})
    counts = {"volumes": len(case.volumes), "label maps": len(case.label_maps), "surfaces": len(case.meshes),
              "tetrahedral meshes": len(case.tet_meshes), "registrations": len(case.registrations),
              "records": sum(r.kind != JOURNAL_KIND for r in case.records.values()),
              "label-map edits (journal)": len(case.records_of(JOURNAL_KIND))}
    removed = deid.get("removed_attributes")
    return {"case_name": case.name, "created_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "software_version": __version__,
            "deidentified": "yes" if deid.get("deidentified") else "no (or unknown)",
            "deid_method": deid.get("method", ""),
            "removed_count": len(removed) if isinstance(removed, list) else None, "volumes": volumes,
            "counts": ", ".join(f"{n} {k}" for k, n in counts.items())}


def plan_of(case: Case) -> dict[str, Any]:
    plan = case.plan
    trajectories = [{"name": t.name, "entry": _pt(t.entry_lps), "target": _pt(t.target_lps),
                     "length_mm": t.length_mm, "tool_diameter_mm": t.tool_diameter_mm} for t in plan.trajectories]
    other: list[tuple[str, list[list[str]]]] = []
    if plan.landmarks:
        other.append(("Landmarks", [["name", "position (LPS mm)"]] +
                      [[lm.name, _pt(lm.position_lps)] for lm in plan.landmarks]))
    if plan.resection_planes:
        other.append(("Resection planes", [["name", "origin (LPS mm)", "normal", "kept side"]] +
                      [[p.name, _pt(p.origin_lps), _pt(p.normal_lps), f"{p.kept_side:+d}"]
                       for p in plan.resection_planes]))
    if plan.implants:
        other.append(("Implants", [["name", "kind", "position (LPS mm)", "diameter (mm)", "length (mm)"]] +
                      [[i.name, i.kind, _pt(np.asarray(i.pose_lps)[:3, 3]), f"{i.diameter_mm:.1f}",
                        f"{i.length_mm:.1f}"] for i in plan.implants]))
    if plan.measurements:
        other.append(("Measurements", [["name", "kind", "value"]] +
                      [[m.name, m.kind, f"{m.value:.1f} {'mm' if m.kind == 'distance' else 'deg'}"]
                       for m in plan.measurements]))
    return {"trajectories": trajectories, "other": other}


def safety_of(case: Case) -> list[dict[str, Any]]:
    """The stored safety analyses (``Record(kind="safety")``), one per trajectory."""
    out = []
    for record in case.records_of("safety"):
        meta = record.meta
        structures = [s for s in meta.get("structures", []) if isinstance(s, dict)]
        out.append({"trajectory": meta.get("trajectory", record.name), "margin_mm": meta.get("margin_mm"),
                    "entry_angle_deg": meta.get("entry_angle_deg"),
                    "structures": [{"segment": s.get("segment", "?"),
                                    "min_distance_mm": float(s.get("min_distance_mm", float("nan"))),
                                    "clearance_mm": float(s.get("clearance_mm", float("nan"))),
                                    "violated": bool(s.get("violated", False))} for s in structures],
                    "violated": [s.get("segment", "?") for s in structures if s.get("violated")]})
    return out


def plan_digest(case: Case) -> dict[str, str]:
    """SHA-256 digest of the plan: the exported plan document's digest when the exporter is available,
    otherwise of the canonical plan JSON (labelled as such)."""
    try:
        from workstation.export.plan_json import build_plan_document
    except ImportError:
        build_plan_document = None
    if build_plan_document is not None:
        created = "1970-01-01T00:00:00Z"  # fixed so that the digest depends on the plan only
        document = build_plan_document(case, frame="image", created_utc=created)
        digest = document["digest"]
        return {"algorithm": digest.get("algorithm", "sha256"), "value": digest["value"],
                "description": "digest of the exported plan document (twin export-plan, image LPS frame, "
                               f"created_utc set to {created}); recompute it from that export to check the plan."}
    canonical = json.dumps(case.plan.to_dict(), sort_keys=True, separators=(",", ":"))
    return {"algorithm": "sha256", "value": hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
            "description": "SHA-256 of the canonical plan JSON: json.dumps(plan.to_dict(), sort_keys=True, "
                           "separators=(',', ':')) (the plan exporter is not available)."}


def mechanics_of(case: Case) -> list[dict[str, Any]]:
    """Numbers and the force-displacement plot of each simulation record."""
    out = []
    for record in case.records_of("simulation"):
        meta, arrays = record.meta, record.arrays
        disp = np.asarray(arrays.get("displacement_mm", np.zeros((0, 3))), dtype=float)
        vm = arrays.get("von_mises_pa")
        mesh = case.tet_meshes.get(meta.get("tet_mesh_id", ""))
        entry: dict[str, Any] = {
            "name": record.name or record.id, "model": meta.get("model", "not stated"),
            "status": meta.get("status", "not stated") + (f": {meta['message']}" if meta.get("message") else ""),
            "mesh": f"{mesh.n_points} nodes, {mesh.n_tets} tetrahedra" if mesh is not None else
                    f"tet mesh {meta.get('tet_mesh_id')!r} missing from the case",
            "max_displacement_mm": float(np.linalg.norm(disp.reshape(-1, 3), axis=1).max()) if disp.size else 0.0,
            "max_von_mises_kpa": float(np.max(vm)) / 1000.0 if vm is not None and np.size(vm) else None,
            "max_tool_force_n": None, "images": []}
        if "tool_force_n" in arrays and "tool_displacement_mm" in arrays:
            force = np.asarray(arrays["tool_force_n"], dtype=float)
            magnitude = np.linalg.norm(force, axis=1) if force.ndim == 2 else np.abs(force)
            entry["max_tool_force_n"] = float(magnitude.max()) if magnitude.size else None
            try:
                png = force_displacement_png(arrays["tool_displacement_mm"], force, title=f"{entry['name']}: tool "
                                             "force against displacement")
                entry["images"].append({"src": _png_src(png), "caption": "Tool force magnitude (N) against tool "
                                        "displacement (mm) over the load steps."})
            except ValueError as exc:
                entry["status"] += f" (no force plot: {exc})"
        out.append(entry)
    return out


def render_views(case: Case, *, size: tuple[int, int], progress: ProgressCallback | None = None,
                 mechanics: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Pictures of the case as ``{"src", "caption", "width", "height"}``; mechanics views are appended to
    the matching entry of ``mechanics`` instead."""
    from workstation.render.cameras import probe_view, standard_view
    from workstation.render.case_scene import SceneOptions, build_case_scene, with_surfaces
    from workstation.render.mechanics_view import QUANTITIES, deformed_surface, field_range, simulation_result
    from workstation.render.mpr import standard_plane
    from workstation.render.presets import WINDOW_LEVELS
    from workstation.render.scene import RehearsalScene

    views: list[dict[str, Any]] = []
    trajectories = list(case.plan.trajectories)
    sims = case.records_of("simulation")
    total = 4 + min(len(trajectories), MAX_PROBE_VIEWS) + (1 if trajectories else 0) + 2 * len(sims)
    done = 0

    def add(picture: np.ndarray, caption: str) -> None:
        nonlocal done
        views.append({"src": _image_src(picture), "caption": caption, "width": size[0], "height": size[1]})
        done += 1
        report(progress, done, total, "report pictures")

    report(progress, 0, total, "report pictures")
    work = with_surfaces(case, progress=None) if case.label_maps else case
    has_anatomy = bool(work.meshes)
    with build_case_scene(work, SceneOptions(), size=size) as scene:
        what = "segment surfaces" if has_anatomy else "volume rendering (bone preset)"
        for view, caption in (("anterior", "Anterior view (camera in front of the patient)"),
                              ("left", "Left view (camera at the patient's left)"),
                              ("superior", "Superior view (looking down from the head)")):
            scene.set_camera(standard_view(view, scene.bounds, aspect=size[0] / size[1]))
            add(scene.image(), f"{caption}: {what} and plan objects.")
        for trajectory in trajectories[:MAX_PROBE_VIEWS]:
            scene.set_tool_visible(trajectory.name, False)
            scene.set_camera(probe_view(trajectory))
            add(scene.image(), f"Probe's-eye view down {trajectory.name!r}: from the entry towards the target "
                               f"(red), {trajectory.length_mm:.1f} mm away.")
            scene.set_tool_visible(trajectory.name, True)
    if case.volumes:
        volume = case.volume()
        center = trajectories[0].target_lps if trajectories else None
        with RehearsalScene(size=size) as scene:
            scene.add_slice(volume, standard_plane(volume, "axial", center_lps=center),
                            window_level=WINDOW_LEVELS["soft_tissue"])
            scene.add_plan(case.plan)
            scene.view("inferior")
            where = f"through the target of {trajectories[0].name!r}" if trajectories else "through the volume centre"
            add(scene.image(), f"Axial slice {where}, soft-tissue window (W 400, L 40 HU), radiological "
                               "convention (patient's left on the right).")
    else:
        done += 1
    if trajectories and has_anatomy:
        trajectory = trajectories[0]
        options = SceneOptions(clearance=trajectory.name, hide_tools=())
        with build_case_scene(work, options, size=size) as scene:
            direction = np.subtract(trajectory.target_lps, trajectory.entry_lps)
            side = "left" if abs(direction[0]) < abs(direction[1]) else "anterior"
            scene.set_camera(standard_view(side, scene.bounds, aspect=size[0] / size[1]))
            add(scene.image(), f"Clearance map: surfaces coloured by distance (mm) to the tool wall of "
                               f"{trajectory.name!r} (diameter {trajectory.tool_diameter_mm:g} mm); red is close.")
    for n, record in enumerate(sims):
        try:
            result = simulation_result(case, record.id)
        except Exception as exc:  # the report states why instead of failing
            if mechanics is not None and n < len(mechanics):
                mechanics[n]["status"] += f" (not drawn: {exc})"
            done += 2
            continue
        for quantity in ("displacement", "von_mises"):
            if quantity == "von_mises" and result.von_mises_pa is None:
                done += 1
                continue
            key, title, cmap = QUANTITIES[quantity]
            with RehearsalScene(size=size) as scene:
                scene.add_field_surface(deformed_surface(result), scalars=key, title=title, cmap=cmap,
                                        clim=field_range(result, quantity), name="simulation")
                scene.view("anterior")
                done += 1
                report(progress, done, total, "report pictures")
                if mechanics is not None and n < len(mechanics):
                    mechanics[n]["images"].insert(0, {"src": _image_src(scene.image()),
                                                      "caption": f"Deformed mesh (anterior view) coloured by {title}."})
    return views


def write_report(case: Case, path: str | os.PathLike[str], *, progress: ProgressCallback | None = None,
                 size: tuple[int, int] = (640, 480)) -> Path:
    """Write the self-contained HTML rehearsal report of ``case`` to ``path`` (atomically)."""
    import jinja2

    path = output_file(path)
    mechanics = mechanics_of(case)
    views_note = ""
    try:
        views = render_views(case, size=size, progress=progress, mechanics=mechanics)
    except OutputError as exc:  # no off-screen OpenGL: the report says so instead of failing
        views, views_note = [], f"pictures could not be rendered ({exc})"
    from workstation import segment_case

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    html = env.from_string(REPORT_TEMPLATE).render(
        summary=summary_of(case), views=views, views_note=views_note,
        segments=[s.to_dict() for s in segment_case.statistics(case)] if case.volumes else [],
        plan=plan_of(case), safety=safety_of(case), mechanics=mechanics, digest=plan_digest(case))
    write_text_atomic(path, html)
    return path
