"""The headless demo on the bundled sample case: what ``make demo`` and ``twin demo`` run."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segmentation.editing import sphere_mask
from workstation import segment_case
from workstation.bundle import save_case
from workstation.importer import import_path
from workstation.io.atomic import write_text_atomic
from workstation.model.case import Case
from workstation.model.volume import Volume
from workstation.preview import write_previews
from workstation.progress import ProgressCallback
from workstation.report.html_report import write_report
from workstation.samples import SAMPLES_DIR, sample_dicom_dir
from workstation.simulate_case import mechanics_demo_stage


def run_demo(out_dir: str | os.PathLike[str], *, progress: ProgressCallback | None = None,
             say: Callable[[str], Any] = print) -> list[tuple[Path, str]]:
    """Import the sample CT, save its case bundle, write a summary and previews into ``out_dir``.

    Returns ``(path, what it is)`` for every output.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source = sample_dicom_dir()
    say(f"importing the bundled sample CT ({source.parent.name}, 20 slices, JPEG 2000) ...")
    result = import_path(source, name="sample-ct-abdomen-20", progress=progress)
    for message in result.messages:
        say(f"  {message}")
    made: list[tuple[Path, str]] = []
    case_path = save_case(result.case, out / "case", progress=progress)
    made.append((case_path, "case bundle (manifest.json, NRRD volume, de-identified headers, SHA-256 of every file)"))
    volume = result.case.volume()
    for path in write_previews(volume, out):
        made.append((path, f"{path.stem.split('-')[-1]} preview through the volume centre, with orientation letters"))
    values = volume.array
    summary = {
        "case": str(case_path),
        "coordinate_system": "LPS",
        "units": "mm",
        "volume": volume.geometry_dict(),
        "hounsfield_units": {"min": float(values.min()), "max": float(values.max()),
                             "mean": round(float(values.mean()), 2),
                             "fraction_above_150": round(float(np.mean(values > 150)), 5)},
        "extent_mm": [round(float(x), 2) for x in (volume.corners_lps().max(0) - volume.corners_lps().min(0))],
        "deidentification": result.case.deidentification,
        "log": result.case.log,
    }
    made += _segmentation_stage(result.case, volume, out, progress=progress, say=say)
    made += _planning_stage(result.case, out, say=say)
    say("simulating a liver retraction ...")
    made += mechanics_demo_stage(result.case, out, progress=progress, say=say)
    save_case(result.case, case_path, progress=progress)
    summary["segments"] = [s.to_dict() for s in segment_case.statistics(result.case)]
    summary_path = out / "summary.json"
    write_text_atomic(summary_path, json.dumps(summary, indent=1))
    made.append((summary_path, "summary: geometry (ijk_to_lps), HU range, import log, de-identification"))
    say("writing the rehearsal report ...")
    report = write_report(result.case, out / "report.html", progress=progress)
    made.append((report, "the rehearsal report: views, segment statistics, plan and safety, mechanics, plan digest"))
    return made


BACKGROUND = 255


def seed_strokes(step: dict[str, Any], volume: Volume) -> tuple[NDArray[np.uint8], dict[int, dict[str, Any]]]:
    """A seeds.json ``grow_from_seeds`` step as a (K, J, I) seed array (brush balls at its LPS points)
    and the segment names of its values: structures 1, 2, ... in order, background :data:`BACKGROUND`."""
    seeds = np.zeros(volume.shape, dtype=np.uint8)
    names: dict[int, dict[str, Any]] = {}

    def paint(points: list[list[float]], value: int) -> None:
        for point in points:
            seeds[sphere_mask(volume.shape, volume.ijk_to_lps, point, step["brush_radius_mm"])] = value

    for value, (name, points) in enumerate(step["structures"].items(), start=1):
        names[value] = {"name": name}
        paint(points, value)
    for points in step["background"].values():
        paint(points, BACKGROUND)
    return seeds, names


def _segmentation_stage(case: Case, volume: Volume, out: Path, *, progress: ProgressCallback | None,
                        say: Callable[[str], Any]) -> list[tuple[Path, str]]:
    """Segments from the sample's shipped seed points, their surfaces as STL and 3MF, and a picture."""
    from workstation.io.mesh_files import write_mesh
    from workstation.render.snapshot import render_surfaces

    seeds_file = SAMPLES_DIR / "ct-abdomen-20" / "seeds.json"
    plan = json.loads(seeds_file.read_text(encoding="utf-8"))
    say(f"segmenting with the sample's seed points ({seeds_file.name}) ...")
    for step in plan["steps"]:
        if step["tool"] == "preset":
            segment_case.segment_with_preset(case, step["preset"], name=step["segment"],
                                             points_lps=step.get("points_lps"))
        elif step["tool"] == "grow_from_seeds":
            seeds, names = seed_strokes(step, volume)
            segment_case.grow_segments(case, seeds, background=BACKGROUND, names=names, progress=progress,
                                       source=seeds_file.name)
    for stat in segment_case.statistics(case):
        say(f"  segment {stat.name!r}: {stat.volume_ml:.1f} ml, mean {stat.mean:.0f} HU")
    meshes = segment_case.build_surfaces(case, progress=progress)
    made: list[tuple[Path, str]] = []
    surfaces = out / "surfaces"
    surfaces.mkdir(exist_ok=True)
    for mesh in meshes:
        path = surfaces / f"{mesh.name}.stl"
        write_mesh(mesh, path)
        made.append((path, f"surface of {mesh.name} ({mesh.n_triangles} triangles, binary STL, LPS mm)"))
    write_mesh(meshes, out / "anatomy.3mf")
    made.append((out / "anatomy.3mf", "all surfaces for 3D printing (3MF, millimetres, colours)"))
    picture = render_surfaces(meshes, out / "anatomy.png", view="anterior_superior", title="sample CT")
    made.append((picture, "the segmented anatomy seen from anterior-superior"))
    return made


def _planning_stage(case: Case, out: Path, *, say: Callable[[str], Any]) -> list[tuple[Path, str]]:
    """Pedicle-screw trajectories into T12 from the sample's plan file, checked against the aorta and the
    spinal cord, exported as a signed JSON plan and verified."""
    import secrets

    from workstation import plan_case
    from workstation.errors import TwinError
    from workstation.export.plan_json import export_plan, verify_plan
    from workstation.io.atomic import write_bytes_atomic

    plan_file = SAMPLES_DIR / "ct-abdomen-20" / "plan.json"
    spec = json.loads(plan_file.read_text(encoding="utf-8"))
    say(f"planning from {plan_file.name}: {len(spec['trajectories'])} trajectories, checked against "
        f"{', '.join(spec['critical_segments'])} with a {spec['safety_margin_mm']} mm margin ...")
    for item in spec["trajectories"]:
        plan_case.add_trajectory(case, item["name"], item["entry_lps"], item["target_lps"],
                                 tool_diameter_mm=item["tool_diameter_mm"])
    for safety in plan_case.check_plan(case, critical=spec["critical_segments"], margin_mm=spec["safety_margin_mm"],
                                       entry_surface="vertebra_T12"):
        gaps = ", ".join(f"{s.segment} {s.clearance_mm:.1f} mm" for s in safety.structures)
        verdict = "safe" if safety.safe else f"VIOLATES the margin at {', '.join(s.segment for s in safety.violations)}"
        say(f"  {safety.trajectory}: clearance {gaps}; entry angle to the bone {safety.entry_angle_deg:.0f} deg; "
            f"{verdict}")
    key_path, plan_path = out / "demo-site.key", out / "plan.json"
    key = secrets.token_bytes(32)  # a fresh key for the demo only; a site keeps its own key file
    write_bytes_atomic(key_path, key, mode=0o600)  # readable by its owner only
    document = export_plan(case, plan_path, key=key)
    verification = verify_plan(plan_path, key)
    if not verification.verified:
        raise TwinError(f"{plan_path}: the plan just written does not verify: {verification.reason}")
    say(f"  plan exported, signed and verified: sha256 {document['digest']['value'][:16]}...")
    return [(plan_path, "the plan: trajectories as 4x4 poses and entry/target points (LPS mm), frame, "
                        "tool-axis convention, SHA-256 digest, HMAC-SHA256 signature; `twin verify-plan` checks it"),
            (key_path, "the demo's site key (32 random bytes, owner-only) that signed plan.json")]
