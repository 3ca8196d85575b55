"""``twin export-plan | verify-plan | send-plan | import-markups | export-markups | export-ros | reach``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from workstation.cli.common import say
from workstation.errors import EXIT_BAD_INPUT, EXIT_OK, InputError


def _load_key(path: str | None) -> bytes | None:
    from workstation.export.plan_json import load_site_key

    return None if path is None else load_site_key(path)


def cmd_export_plan(args: argparse.Namespace) -> int:
    from workstation.bundle import load_case
    from workstation.export.plan_json import export_plan

    key = _load_key(args.sign_key)
    case = load_case(args.case)
    document = export_plan(case, args.output, frame=args.frame, key=key, registration_id=args.registration,
                           volume_id=args.volume)
    signed = f"signed (key_id {document['signature']['key_id']})" if key is not None else "unsigned"
    say(args, f"wrote {args.output}: {len(document['trajectories'])} trajectories, {len(document['landmarks'])} "
              f"landmarks, frame {document['coordinate_frame']['name']!r} (mm), {signed}, "
              f"sha256 {document['digest']['value'][:16]}...")
    return EXIT_OK


def cmd_verify_plan(args: argparse.Namespace) -> int:
    from workstation.export.plan_json import verify_plan

    key = _load_key(args.key)
    result = verify_plan(args.plan, key)
    if args.json:
        print(json.dumps({"file": str(args.plan), **result.to_dict()}, indent=1))
    elif result.verified:
        say(args, f"{args.plan}: verified: {result.reason}")
    else:
        print(f"twin verify-plan: {args.plan}: NOT verified: {result.reason}", file=sys.stderr)
    return EXIT_OK if result.verified else EXIT_BAD_INPUT


def cmd_send_plan(args: argparse.Namespace) -> int:
    from workstation.export.igtl import parse_address, send_plan
    from workstation.export.plan_json import read_plan_document, verify_plan

    host, port = parse_address(args.igtl)
    key = _load_key(args.key)
    result = verify_plan(args.plan, key)  # from the file: also catches re-spelled numbers
    document = read_plan_document(args.plan)
    if not result.verified and not (key is None and result.signature == "not verified (no key)"):
        raise InputError(f"{args.plan}: refused, not sent: {result.reason}")
    if not result.verified:
        say(args, f"warning: {result.reason}; sending anyway (the controller can verify the STRING plan)")
    names = send_plan(document, host, port, ras=args.ras, timeout_s=args.timeout)
    say(args, f"sent {len(names)} OpenIGTLink messages to {host}:{port}: {', '.join(names)}")
    return EXIT_OK


def cmd_import_markups(args: argparse.Namespace) -> int:
    from workstation.bundle import load_case, save_case
    from workstation.export.slicer_markups import read_markups

    if not args.diameter_mm > 0:
        raise InputError(f"--diameter-mm {args.diameter_mm}: must be > 0")
    items = read_markups(args.markups, default_diameter_mm=args.diameter_mm)
    case = load_case(args.case)
    case.set_plan(items.merged_into(case.plan))
    save_case(case, args.case)
    say(args, f"imported {len(items.landmarks)} landmarks, {len(items.trajectories)} trajectories, "
              f"{len(items.resection_planes)} planes from {args.markups} (LPS mm)"
              + (f"; skipped {', '.join(items.skipped)}" if items.skipped else ""))
    say(args, f"saved case {args.case}")
    return EXIT_OK


def cmd_export_markups(args: argparse.Namespace) -> int:
    from workstation.bundle import load_case
    from workstation.export.slicer_markups import write_markups

    case = load_case(args.case)
    write_markups(case.plan, args.output)
    plan = case.plan
    say(args, f"wrote {args.output}: {len(plan.landmarks)} landmarks, {len(plan.trajectories)} lines, "
              f"{len(plan.resection_planes)} planes (Slicer markups, LPS mm)")
    return EXIT_OK


def cmd_export_ros(args: argparse.Namespace) -> int:
    from workstation.bundle import load_case
    from workstation.export.ros_yaml import pose_array_document, read_matrix_file, write_pose_array

    patient_to_base = read_matrix_file(args.patient_to_base) if args.patient_to_base else None
    case = load_case(args.case)
    if not case.registrations:
        raise InputError(f"{args.case}: the case holds no registration; run `twin register` first (robot poses "
                         "need the image -> patient transform)")
    if args.registration is not None and args.registration not in case.registrations:
        raise InputError(f"--registration {args.registration!r}: not in the case; it holds "
                         f"{sorted(case.registrations)}")
    registration = case.registrations[args.registration] if args.registration else list(
        case.registrations.values())[-1]
    document = pose_array_document(case.plan, registration, patient_to_base=patient_to_base,
                                   base_frame=args.base_frame)
    write_pose_array(document, args.output)
    say(args, f"wrote {args.output}: {len(document['poses'])} poses in frame {document['header']['frame_id']!r} "
              "(metres, quaternions x y z w)")
    return EXIT_OK


def cmd_reach(args: argparse.Namespace) -> int:
    from workstation.bundle import load_case
    from workstation.planning.reachability import check_reachability, default_base_pose, parse_base_pose

    case = load_case(args.case)
    if not case.plan.trajectories:
        raise InputError(f"{args.case}: the plan has no trajectory")
    if args.samples < 2:
        raise InputError(f"--samples {args.samples}: at least 2 (entry and target)")
    base = parse_base_pose(args.base) if args.base else default_base_pose(case.plan)
    results = check_reachability(case.plan, robot=args.robot, base_pose_mm=base, tool_length_mm=args.tool_length_mm,
                                 samples=args.samples)
    if args.json:
        print(json.dumps({"case": str(args.case), "robot": args.robot, "base_pose_mm": base.tolist(),
                          "frame": "image_lps", "units": {"length": "mm", "angle": "deg"},
                          "tool_length_mm": args.tool_length_mm, "results": [r.to_dict() for r in results]},
                         indent=1))
        return EXIT_OK
    say(args, f"{args.robot} base at {', '.join(f'{v:.1f}' for v in base[:3, 3])} mm (image LPS)"
              + ("" if args.base else " (default table-side placement)"))
    for r in results:
        if r.reachable:
            print(f"{r.trajectory:<24} reachable (tool roll {r.tool_roll_deg:.0f} deg, joint-limit margin "
                  f"{r.min_joint_limit_margin_deg:.1f} deg, tool-tip error {r.max_tool_tip_error_mm:.1g} mm, "
                  f"{r.samples} points)")
        else:
            print(f"{r.trajectory:<24} NOT reachable: {r.reason}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add this module's subcommands to ``twin``."""
    p = sub.add_parser("export-plan", parents=[common], help="write the versioned JSON plan (digest, optional "
                                                             "HMAC signature)")
    p.add_argument("case")
    p.add_argument("-o", "--output", required=True, type=Path)
    p.add_argument("--frame", choices=["image", "robot"], default="image",
                   help="image: image LPS mm (default); robot: mapped by the case's registration")
    p.add_argument("--sign-key", metavar="FILE", help="site key file (raw bytes, at least 16) to sign with")
    p.add_argument("--registration", metavar="ID", help="registration id (default: the last added)")
    p.add_argument("--volume", help="volume whose series identity is recorded (default: the first)")
    p.set_defaults(func=cmd_export_plan)

    p = sub.add_parser("verify-plan", parents=[common], help="check a plan's schema, digest and signature "
                                                             "(exit 0 only when verified)")
    p.add_argument("plan", type=Path)
    p.add_argument("--key", metavar="FILE", help="site key file; without it a signed plan is NOT verified")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify_plan)

    p = sub.add_parser("send-plan", parents=[common], help="send a plan to a robot controller over OpenIGTLink")
    p.add_argument("plan", type=Path)
    p.add_argument("--igtl", required=True, metavar="HOST:PORT")
    p.add_argument("--key", metavar="FILE", help="verify the signature with this site key before sending")
    p.add_argument("--ras", action="store_true", help="send image-frame poses and points in RAS (3D Slicer)")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S", help="connection timeout in seconds")
    p.set_defaults(func=cmd_send_plan)

    p = sub.add_parser("import-markups", parents=[common], help="add landmarks, trajectories and planes from a "
                                                                "3D Slicer .mrk.json (LPS or RAS)")
    p.add_argument("case")
    p.add_argument("markups", type=Path)
    p.add_argument("--diameter-mm", type=float, default=1.0, help="tool diameter for lines that do not state one")
    p.set_defaults(func=cmd_import_markups)

    p = sub.add_parser("export-markups", parents=[common], help="write the plan as a 3D Slicer .mrk.json (LPS)")
    p.add_argument("case")
    p.add_argument("-o", "--output", required=True, type=Path)
    p.set_defaults(func=cmd_export_markups)

    p = sub.add_parser("export-ros", parents=[common], help="write tool poses as a PoseArray-style YAML in the robot "
                                                            "base frame (metres, REP-103)")
    p.add_argument("case")
    p.add_argument("-o", "--output", required=True, type=Path)
    p.add_argument("--base-frame", metavar="NAME", help="header.frame_id (default: base_link with "
                                                        "--patient-to-base, else the registration's to_frame)")
    p.add_argument("--patient-to-base", metavar="FILE", help="rigid 4x4 (16 numbers, mm) from the registration's "
                                                             "frame to the robot base")
    p.add_argument("--registration", metavar="ID", help="registration id (default: the last added)")
    p.set_defaults(func=cmd_export_ros)

    p = sub.add_parser("reach", parents=[common], help="robot reachability of each trajectory (inverse kinematics)")
    p.add_argument("case")
    p.add_argument("--robot", choices=["panda", "ur5"], default="panda")
    p.add_argument("--base", metavar="X,Y,Z[:RX,RY,RZ]", help="robot base pose in image LPS mm and degrees "
                                                             "(extrinsic x, y, z); default: a table-side placement")
    p.add_argument("--tool-length-mm", type=float, default=100.0, help="flange to tool tip along the flange z")
    p.add_argument("--samples", type=int, default=3, help="points checked from entry to target")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_reach)
