"""``twin plan CASE ...`` (landmarks, trajectories, safety checks, proposals) and ``twin register``."""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from workstation.cli.common import parse_point, progress_bar, say
from workstation.errors import EXIT_OK, InputError


def _names(text: str | None) -> list[str] | None:
    if not text:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise InputError(f"--critical {text!r}: expected NAME[,NAME...]")
    return names


def _finite(value: float, option: str, *, positive: bool = False) -> float:
    if not np.isfinite(value) or (positive and value <= 0):
        raise InputError(f"{option} {value}: must be a finite number{' > 0' if positive else ''}")
    return float(value)


def _save(args: argparse.Namespace, case: Any) -> None:
    from workstation.bundle import save_case

    bar = progress_bar(args)
    try:
        save_case(case, args.case, progress=bar)
    finally:
        bar.close()


def cmd_add_trajectory(args: argparse.Namespace) -> int:
    from workstation import plan_case
    from workstation.bundle import load_case

    case = load_case(args.case)
    t = plan_case.add_trajectory(case, args.name, parse_point(args.entry, "--entry"),
                                 parse_point(args.target, "--target"),
                                 tool_diameter_mm=_finite(args.diameter_mm, "--diameter-mm", positive=True))
    _save(args, case)
    say(args, f"trajectory {t.name!r}: {t.length_mm:.1f} mm, tool {t.tool_diameter_mm:g} mm (LPS mm); "
              f"saved {args.case}")
    return EXIT_OK


def cmd_add_landmark(args: argparse.Namespace) -> int:
    from workstation import plan_case
    from workstation.bundle import load_case

    case = load_case(args.case)
    lm = plan_case.add_landmark(case, args.name, parse_point(args.point, "--point"))
    _save(args, case)
    say(args, f"landmark {lm.name!r} at {list(lm.position_lps)} (LPS mm); saved {args.case}")
    return EXIT_OK


def cmd_add_plane(args: argparse.Namespace) -> int:
    from workstation import plan_case
    from workstation.bundle import load_case

    case = load_case(args.case)
    plane = plan_case.add_resection_plane(case, args.name, parse_point(args.origin, "--origin"),
                                          parse_point(args.normal, "--normal"), kept_side=args.keep_side)
    _save(args, case)
    say(args, f"resection plane {plane.name!r}: normal {[round(x, 4) for x in plane.normal_lps]}, "
              f"kept side {plane.kept_side:+d}; saved {args.case}")
    return EXIT_OK


def cmd_add_implant(args: argparse.Namespace) -> int:
    from workstation import plan_case
    from workstation.bundle import load_case

    if (args.head is None) != (args.tip is None):
        raise InputError("--head/--tip: give both (or --trajectory instead)")
    if args.trajectory is None and args.head is None:
        raise InputError("add-implant: give --trajectory NAME or --head X,Y,Z --tip X,Y,Z")
    if args.trajectory is not None and args.length_mm is None:
        raise InputError("--length-mm: required with --trajectory")
    length = None if args.length_mm is None else _finite(args.length_mm, "--length-mm", positive=True)
    case = load_case(args.case)
    where: dict[str, Any] = ({"from_trajectory": args.trajectory} if args.trajectory is not None else
                             {"head_lps": parse_point(args.head, "--head"), "tip_lps": parse_point(args.tip, "--tip")})
    implant = plan_case.add_implant(case, args.name, kind=args.kind, length_mm=length,
                                    diameter_mm=_finite(args.diameter_mm, "--diameter-mm", positive=True), **where)
    _save(args, case)
    head, tip = plan_case.implant_ends(implant)
    say(args, f"implant {implant.name!r} ({implant.kind}): {implant.diameter_mm:g} x {implant.length_mm:g} mm, "
              f"head {np.round(head, 2).tolist()} tip {np.round(tip, 2).tolist()} (LPS mm); saved {args.case}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from workstation.bundle import load_case

    case = load_case(args.case)
    plan = case.plan
    if args.json:
        data = plan.to_dict()
        data["safety"] = [{"name": r.name, **r.meta} for r in case.records_of("safety")]
        data["registrations"] = [r.to_dict() for r in case.registrations.values()]
        print(json.dumps(data, indent=1))
        return EXIT_OK
    for lm in plan.landmarks:
        print(f"landmark    {lm.name:<20} {np.round(lm.position_lps, 2).tolist()}")
    for t in plan.trajectories:
        print(f"trajectory  {t.name:<20} entry {np.round(t.entry_lps, 2).tolist()} target "
              f"{np.round(t.target_lps, 2).tolist()}  {t.length_mm:.1f} mm  tool {t.tool_diameter_mm:g} mm")
    for p in plan.resection_planes:
        print(f"plane       {p.name:<20} origin {np.round(p.origin_lps, 2).tolist()} normal "
              f"{np.round(p.normal_lps, 4).tolist()} kept side {p.kept_side:+d}")
    for i in plan.implants:
        print(f"implant     {i.name:<20} {i.kind} {i.diameter_mm:g} x {i.length_mm:g} mm")
    for m in plan.measurements:
        print(f"measurement {m.name:<20} {m.kind} {m.value:.2f} {'mm' if m.kind == 'distance' else 'deg'}")
    for r in case.registrations.values():
        fre = "?" if r.fre_mm is None else f"{r.fre_mm:.3f}"
        print(f"registration {r.id:<19} {r.from_frame} -> {r.to_frame}  FRE {fre} mm")
    if not (plan.landmarks or plan.trajectories or plan.resection_planes or plan.implants or plan.measurements):
        print("the plan is empty")
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    from workstation import plan_case
    from workstation.bundle import load_case

    case = load_case(args.case)
    kinds = plan_case.remove_item(case, args.item)
    _save(args, case)
    say(args, f"removed {args.item!r} ({kinds}); saved {args.case}")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from workstation import plan_case
    from workstation.bundle import load_case

    case = load_case(args.case)
    margin = _finite(args.margin_mm, "--margin-mm")
    critical = _names(args.critical)
    names = [args.trajectory] if args.trajectory else [t.name for t in case.plan.trajectories]
    if not names and not case.plan.resection_planes:
        raise InputError(f"{args.case}: the plan has no trajectory or resection plane to check")
    checker = plan_case.safety_checker(case, critical, entry_surface=args.entry_surface,
                                       volume_id=args.volume) if critical else None
    results = [plan_case.check_trajectory(case, n, critical=critical, margin_mm=margin, checker=checker,
                                          entry_surface=args.entry_surface, volume_id=args.volume) for n in names]
    planes = [] if args.trajectory else [plan_case.check_resection(case, p.name, target=args.target_segment,
                                                                   volume_id=args.volume)
                                         for p in case.plan.resection_planes]
    _save(args, case)
    if args.json:
        print(json.dumps({"case": str(args.case), "coordinate_system": "LPS", "units": "mm", "margin_mm": margin,
                          "safe": all(r.safe for r in results),
                          "trajectories": [r.to_meta() for r in results],
                          "resection_planes": [p.to_meta() for p in planes]}, indent=1))
        return EXIT_OK
    for r in results:
        angle = "" if r.entry_angle_deg is None else f", entry angle {r.entry_angle_deg:.1f} deg to {r.entry_surface}"
        print(f"trajectory {r.trajectory!r} (tool {r.tool_diameter_mm:g} mm, margin {r.margin_mm:g} mm): "
              f"{'SAFE' if r.safe else 'VIOLATED'}{angle}")
        for s in r.structures:
            where = np.round(s.closest_point_structure_lps, 1).tolist()
            print(f"  {s.segment:<20} clearance {s.clearance_mm:8.2f} mm  (axis distance {s.min_distance_mm:.2f} mm, "
                  f"closest at {where}){'  VIOLATION' if s.violated else ''}")
    for p in planes:
        removed = ", ".join(f"{k} {v:.1f} ml" for k, v in p.removed_ml.items() if v > 0) or "nothing"
        margin_text = "" if p.target_margin_mm is None else f"; margin to {p.target}: {p.target_margin_mm:.1f} mm"
        print(f"plane {p.plane!r}: removes {removed}{margin_text}")
    return EXIT_OK


def _entry_region(text: str) -> dict[str, Any]:
    if text.startswith("sphere:"):
        values = text[len("sphere:"):].split(",")
        try:
            numbers = [float(v) for v in values]
        except ValueError:
            numbers = []
        if len(numbers) != 4 or not all(np.isfinite(numbers)) or numbers[3] <= 0:
            raise InputError(f"--entry-region {text!r}: expected sphere:x,y,z,radius_mm")
        return {"entry_sphere": (numbers[:3], numbers[3])}
    from workstation.plan_case import read_points_file

    return {"entry_points_lps": read_points_file(text, option="--entry-region")}


def cmd_propose(args: argparse.Namespace) -> int:
    from workstation import plan_case
    from workstation.bundle import load_case

    case = load_case(args.case)
    target = parse_point(args.target, "--target")
    if args.top < 1:
        raise InputError(f"--top {args.top}: must be >= 1")
    bar = progress_bar(args)
    try:
        proposals = plan_case.propose(case, target, critical=_names(args.critical), entry_surface=args.entry_surface,
                                      tool_diameter_mm=_finite(args.diameter_mm, "--diameter-mm", positive=True),
                                      margin_mm=_finite(args.margin_mm, "--margin-mm"), top=args.top,
                                      volume_id=args.volume, progress=bar, **_entry_region(args.entry_region))
    finally:
        bar.close()
    if args.add and proposals:
        best = proposals[0].trajectory
        plan_case.add_trajectory(case, args.add, best.entry_lps, best.target_lps,
                                 tool_diameter_mm=best.tool_diameter_mm)
    _save(args, case)  # the new trajectory and any surface built for the check
    if args.json:
        print(json.dumps({"case": str(args.case), "coordinate_system": "LPS", "units": "mm",
                          "ranking": "minimal clearance, largest first", "proposals": [p.to_dict() for p in proposals]},
                         indent=1))
        return EXIT_OK
    if not proposals:
        print("no candidate trajectory")
    for n, p in enumerate(proposals, start=1):
        t = p.trajectory
        print(f"{n}. entry {np.round(t.entry_lps, 1).tolist()} -> target {np.round(t.target_lps, 1).tolist()}  "
              f"{t.length_mm:.1f} mm  clearance {p.min_clearance_mm:.2f} mm (to {p.limiting_segment})"
              f"{'' if p.safety.safe else '  VIOLATES MARGIN'}")
    if args.add and proposals:
        say(args, f"added the best as trajectory {args.add!r}; saved {args.case}")
    return EXIT_OK


def cmd_register(args: argparse.Namespace) -> int:
    from workstation import plan_case
    from workstation.bundle import load_case

    image = plan_case.read_points_file(args.image_points, option="--image-points")
    patient = plan_case.read_points_file(args.patient_points, option="--patient-points")
    targets = plan_case.read_points_file(args.targets, option="--targets") if args.targets else None
    fle = None if args.fle_mm is None else _finite(args.fle_mm, "--fle-mm")
    case = load_case(args.case)
    registration, result = plan_case.register(case, image, patient, targets_lps=targets, fle_mm=fle,
                                              to_frame=args.to_frame)
    _save(args, case)
    if args.json:
        print(json.dumps({f"image_to_{args.to_frame}": registration.matrix.tolist(),
                          "registration_id": registration.id, "from_frame": "image", "to_frame": args.to_frame,
                          "image_coordinate_system": "LPS", "units": "mm",
                          "fre_mm": result.fre_mm, "fre_per_point_mm": result.fre_per_point_mm.tolist(),
                          "fle_mm": result.fle_mm, "fle_source": result.fle_source,
                          "predicted_tre_mm": result.predicted_tre_mm.tolist(),
                          "targets_lps": [] if targets is None else targets.tolist(),
                          "tre_model": "Fitzpatrick-West-Maurer 1998"}, indent=1))
        return EXIT_OK
    say(args, f"registration {registration.id!r} image (LPS) -> {args.to_frame}: {len(image)} fiducials, "
              f"FRE {result.fre_mm:.3f} mm RMS (max {result.fre_per_point_mm.max():.3f} mm)")
    for n, tre in enumerate(result.predicted_tre_mm, start=1):
        say(args, f"  target {n} {np.round(targets[n - 1], 1).tolist() if targets is not None else ''}: "
                  f"predicted TRE {tre:.3f} mm")
    say(args, f"  FLE {result.fle_mm:.3f} mm ({result.fle_source}); saved {args.case}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``twin plan`` and ``twin register``."""
    plan = sub.add_parser("plan", parents=[common], help="plan items, safety checks and trajectory proposals (LPS mm)")
    plan.add_argument("case")
    actions = plan.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = actions.add_parser("add-trajectory", parents=[common], help="add or replace a straight tool trajectory")
    p.add_argument("--name", required=True)
    p.add_argument("--entry", required=True, metavar="X,Y,Z", help="entry point, LPS mm")
    p.add_argument("--target", required=True, metavar="X,Y,Z", help="target point, LPS mm")
    p.add_argument("--diameter-mm", type=float, required=True, help="tool diameter in mm")
    p.set_defaults(func=cmd_add_trajectory)

    p = actions.add_parser("add-landmark", parents=[common], help="add or replace a named point")
    p.add_argument("--name", required=True)
    p.add_argument("--point", required=True, metavar="X,Y,Z", help="LPS mm")
    p.set_defaults(func=cmd_add_landmark)

    p = actions.add_parser("add-plane", parents=[common], help="add or replace a resection plane")
    p.add_argument("--name", required=True)
    p.add_argument("--origin", required=True, metavar="X,Y,Z", help="a point of the plane, LPS mm")
    p.add_argument("--normal", required=True, metavar="X,Y,Z", help="plane normal, LPS")
    p.add_argument("--keep-side", type=int, choices=[1, -1], default=1,
                   help="+1 keeps the side the normal points to, -1 the other (default +1)")
    p.set_defaults(func=cmd_add_plane)

    p = actions.add_parser("add-implant", parents=[common],
                           help="add or replace an implant (e.g. a pedicle screw) along a trajectory or head -> tip")
    p.add_argument("--name", required=True)
    p.add_argument("--kind", default="pedicle_screw", help="implant kind (default pedicle_screw)")
    p.add_argument("--diameter-mm", type=float, required=True, help="implant diameter in mm")
    p.add_argument("--length-mm", type=float, help="implant length in mm (default with --head/--tip: their distance)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--trajectory", metavar="NAME", help="tip at this trajectory's target, along its direction")
    where.add_argument("--head", metavar="X,Y,Z", help="head (entry end) of the implant, LPS mm")
    p.add_argument("--tip", metavar="X,Y,Z", help="tip of the implant, LPS mm (with --head)")
    p.set_defaults(func=cmd_add_implant)

    p = actions.add_parser("list", parents=[common], help="list the plan's items")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = actions.add_parser("remove", parents=[common], help="remove a plan item by name")
    p.add_argument("item", metavar="NAME")
    p.set_defaults(func=cmd_remove)

    p = actions.add_parser("check", parents=[common],
                           help="tool clearance to critical segments (and resection volumes); stored in the case")
    p.add_argument("--critical", metavar="NAME[,NAME...]",
                   help="critical segments (default: every segment except body/skin/bone and the target's own)")
    p.add_argument("--margin-mm", type=float, default=2.0, help="required clearance in mm (default 2)")
    p.add_argument("--trajectory", help="check only this trajectory (default: all)")
    p.add_argument("--entry-surface", metavar="SEGMENT", help="skin or bone segment for the entry angle")
    p.add_argument("--target-segment", metavar="SEGMENT", help="segment a resection plane must remove (margin)")
    p.add_argument("--volume", help="volume id (default: the first)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)

    p = actions.add_parser("propose", parents=[common], help="propose trajectories ranked by minimal clearance")
    p.add_argument("--target", required=True, metavar="X,Y,Z", help="target point, LPS mm")
    p.add_argument("--entry-region", required=True, metavar="sphere:X,Y,Z,R | FILE",
                   help="entry candidates: points of --entry-surface within R mm of X,Y,Z, or a CSV of x,y,z points")
    p.add_argument("--entry-surface", metavar="SEGMENT", help="skin/bone segment the entries lie on (e.g. body)")
    p.add_argument("--critical", metavar="NAME[,NAME...]", help="critical segments (default as for check)")
    p.add_argument("--diameter-mm", type=float, default=2.0, help="tool diameter in mm (default 2)")
    p.add_argument("--margin-mm", type=float, default=2.0, help="required clearance in mm (default 2)")
    p.add_argument("--top", type=int, default=5, help="how many proposals (default 5)")
    p.add_argument("--add", metavar="NAME", help="add the best proposal to the plan under this name")
    p.add_argument("--volume", help="volume id (default: the first)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_propose)

    p = sub.add_parser("register", parents=[common],
                       help="paired-point rigid registration image (LPS) -> patient, with FRE and predicted TRE")
    p.add_argument("case")
    p.add_argument("--image-points", required=True, metavar="FILE", help="CSV, one x,y,z (LPS mm) per line")
    p.add_argument("--patient-points", required=True, metavar="FILE", help="CSV, one x,y,z (mm) per line, same order")
    p.add_argument("--targets", metavar="FILE", help="CSV of target points (LPS mm) for the predicted TRE")
    p.add_argument("--fle-mm", type=float, help="known RMS fiducial localisation error (default: estimated from FRE)")
    p.add_argument("--to-frame", default="patient", choices=["patient", "robot"], help="destination frame")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_register)
