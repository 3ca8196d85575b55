"""``twin tetmesh | simulate | results``: tetrahedral meshes of segments and tissue-mechanics results."""

from __future__ import annotations

import argparse
import json

from workstation.cli.common import parse_point, progress_bar, say
from workstation.errors import EXIT_OK, InputError
from workstation.io.atomic import output_file


def _parse_push(text: str) -> tuple[list[float], list[float]]:
    if text.count(":") != 1:
        raise InputError(f"--push {text!r}: expected x,y,z:dx,dy,dz (LPS mm)")
    point, displacement = text.split(":")
    return parse_point(point, "--push point"), parse_point(displacement, "--push displacement")


def cmd_tetmesh(args: argparse.Namespace) -> int:
    from mechanics.quality import tet_quality
    from workstation import simulate_case
    from workstation.bundle import load_case, save_case

    case = load_case(args.case)
    bar = progress_bar(args)
    try:
        mesh = simulate_case.tetmesh_segments(case, args.segment, size_mm=args.size_mm, from_labels=args.from_labels,
                                              repair=not args.no_repair, mesher=args.mesher, volume_id=args.volume,
                                              progress=bar)
        save_case(case, args.case, progress=bar)
    finally:
        bar.close()
    quality = tet_quality(mesh)
    if args.json:
        print(json.dumps({"case": str(args.case), "tet_mesh_id": mesh.id, "coordinate_system": "LPS",
                          "quality": quality.to_dict()}, indent=1))
        return EXIT_OK
    say(args, f"tet mesh {mesh.id!r}: {quality.summary()}")
    say(args, f"saved case {args.case}")
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    from workstation import simulate_case
    from workstation.bundle import load_case, save_case

    if not args.push:
        raise InputError("--push: give at least one x,y,z:dx,dy,dz (LPS mm)")
    pushes = [_parse_push(p) for p in args.push]
    vtu = output_file(args.vtu, suffixes=(".vtu",), option="--vtu") if args.vtu else None
    case = load_case(args.case)
    bar = progress_bar(args)
    try:
        record, result = simulate_case.simulate(
            case, segment=args.segment, material=args.material, fix=args.fix, pushes=pushes, model=args.model,
            load_steps=args.load_steps, name=args.name, size_mm=args.size_mm, push_radius_mm=args.push_radius_mm,
            contact_mm=args.contact_mm, volume_id=args.volume, progress=bar)
        if vtu is not None:
            simulate_case.export_vtu(case, record.name, vtu)
        save_case(case, args.case, progress=bar)
    finally:
        bar.close()
    if args.json:
        print(json.dumps({"case": str(args.case), "result": record.name, "record_id": record.id,
                          "vtu": str(vtu) if vtu else None, "meta": record.meta}, indent=1))
        return EXIT_OK
    say(args, f"result {record.name!r} ({result.model}, {result.status}): max displacement "
              f"{result.max_displacement_mm:.2f} mm, max von Mises {result.max_von_mises_pa:.1f} Pa, "
              f"{record.meta['extra']['n_fixed_nodes']} fixed nodes")
    if result.message:
        say(args, result.message)
    if vtu is not None:
        say(args, f"wrote {vtu} (LPS mm)")
    say(args, f"saved case {args.case}")
    return EXIT_OK


def cmd_results(args: argparse.Namespace) -> int:
    from workstation.bundle import load_case

    case = load_case(args.case)
    records = case.records_of("simulation")
    if args.json:
        print(json.dumps({"case": str(args.case), "results": [{"name": r.name, "id": r.id, **{
            k: r.meta.get(k) for k in ("tet_mesh_id", "model", "status", "max_displacement_mm", "max_von_mises_pa")}}
            for r in records]}, indent=1))
        return EXIT_OK
    if not records:
        print("no simulation results")
    for r in records:
        meta = r.meta
        print(f"{r.name:<28} {meta.get('model', '?'):<14} {meta.get('status', '?'):<10} mesh "
              f"{meta.get('tet_mesh_id', '?'):<16} max |u| {meta.get('max_displacement_mm', float('nan')):8.2f} mm  "
              f"max von Mises {meta.get('max_von_mises_pa', float('nan')):10.1f} Pa")
    return EXIT_OK


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add this module's subcommands to ``twin``."""
    p = sub.add_parser("tetmesh", parents=[common], help="tetrahedral mesh of a segment (or touching segments)")
    p.add_argument("case")
    p.add_argument("--segment", action="append", required=True,
                   help="segment name; repeat for one conforming multi-region mesh (regions from the label map "
                        "when no mesher accepts the shared surfaces)")
    p.add_argument("--size-mm", type=float, default=6.0,
                   help="element size, mm: no tet larger than a regular tet with this edge (mean edge about 0.7x); "
                        "default 6")
    p.add_argument("--from-labels", action="store_true", help="mesh the voxels (6 tets per voxel block) instead "
                                                              "of the surface")
    p.add_argument("--no-repair", action="store_true", help="refuse a surface that is not watertight instead of "
                                                            "repairing it")
    p.add_argument("--mesher", choices=["auto", "tetgen", "ftetwild"], default="auto",
                   help="auto (default): TetGen for one segment (exact surface, reproducible), fTetWild for several; "
                        "ftetwild: better-shaped tets within half a voxel of the surface, not the same twice")
    p.add_argument("--json", action="store_true")
    p.add_argument("--volume", help="volume id (default: the first)")
    p.set_defaults(func=cmd_tetmesh)

    p = sub.add_parser("simulate", parents=[common], help="static tissue deformation; stores the result in the case")
    p.add_argument("case")
    p.add_argument("--segment", action="append", required=True, help="segment (its tet mesh is built if missing)")
    p.add_argument("--material", required=True, help="library material, e.g. liver")
    p.add_argument("--fix", action="append", required=True, metavar="SEGMENT|plane:x,y,z:nx,ny,nz",
                   help="support: nodes near another segment, or beyond a plane (repeatable)")
    p.add_argument("--push", action="append", metavar="x,y,z:dx,dy,dz",
                   help="move the surface nodes near a point by a displacement, LPS mm (repeatable)")
    p.add_argument("--model", choices=["linear", "corotational", "neo-hookean"], default="linear")
    p.add_argument("--load-steps", type=int, default=1)
    p.add_argument("--name", help="result name (default: <segment>-<model>)")
    p.add_argument("--size-mm", type=float, default=6.0, help="element size if the mesh must be built")
    p.add_argument("--push-radius-mm", type=float, default=10.0, help="radius of the pushed area, mm (default 10)")
    p.add_argument("--contact-mm", type=float, default=3.0,
                   help="distance that counts as contact for --fix SEGMENT, mm (default 3)")
    p.add_argument("--vtu", help="also write the result as a ParaView .vtu")
    p.add_argument("--json", action="store_true")
    p.add_argument("--volume", help="volume id (default: the first)")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("results", parents=[common], help="list the simulation results stored in a case")
    p.add_argument("case")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_results)
