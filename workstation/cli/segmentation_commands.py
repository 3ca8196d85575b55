"""``twin segment | labels | mesh | stats``: segments, label-map files and surfaces."""

from __future__ import annotations

import argparse
import json

from workstation.cli.common import parse_point, progress_bar, say
from workstation.errors import EXIT_OK, InputError


def cmd_segment(args: argparse.Namespace) -> int:
    from workstation import segment_case
    from workstation.bundle import load_case, save_case

    chosen = [opt for opt in ("preset", "seeds", "import_path") if getattr(args, opt)]
    if len(chosen) != 1:
        raise InputError("give exactly one of --preset, --seeds or --import")
    if args.background is not None and not args.seeds:
        raise InputError("--background goes with --seeds only")
    if args.point and not args.preset:
        raise InputError("--point goes with --preset only (the pieces of the preset's segment to keep)")
    if args.name and not args.preset:
        raise InputError("--name goes with --preset only (seeds and imported files name their segments)")
    case = load_case(args.case)
    bar = progress_bar(args)
    try:
        if args.preset:
            points = [parse_point(p, "--point") for p in args.point] if args.point else None
            label_map, name = segment_case.segment_with_preset(case, args.preset, name=args.name, points_lps=points,
                                                               volume_id=args.volume)
            made = [name]
        elif args.seeds:
            if args.background is None:
                raise InputError("--seeds needs --background V (the seed value that marks background)")
            label_map = segment_case.segment_from_seeds(case, args.seeds, background=args.background,
                                                        volume_id=args.volume, progress=bar)
            made = [s.name for s in label_map.segments]
        else:
            label_map = segment_case.import_labels(case, args.import_path, volume_id=args.volume)
            made = [s.name for s in label_map.segments]
        stats = [s for s in segment_case.statistics(case, volume_id=args.volume) if s.name in made]
        save_case(case, args.case, progress=bar)
    finally:
        bar.close()
    for stat in stats:
        say(args, f"segment {stat.name!r} (label {stat.value}): {stat.volume_ml:.1f} ml")
    say(args, f"saved case {args.case}")
    return EXIT_OK


def cmd_labels(args: argparse.Namespace) -> int:
    from workstation import segment_case
    from workstation.bundle import load_case

    case = load_case(args.case)
    label_map = segment_case.export_labels(case, args.output, volume_id=args.volume)
    say(args, f"wrote {args.output}: {', '.join(f'{s.value}={s.name}' for s in label_map.segments)} "
               "(source grid, LPS geometry)")
    return EXIT_OK


def cmd_mesh(args: argparse.Namespace) -> int:
    from workstation import segment_case
    from workstation.bundle import load_case, save_case
    from workstation.io.atomic import output_file
    from workstation.io.mesh_files import MESH_SUFFIXES, write_mesh

    output = output_file(args.output, suffixes=MESH_SUFFIXES)  # before the surfaces are built, not after
    if args.format and output.suffix.lower() != f".{args.format}":
        raise InputError(f"-o {output}: its suffix does not match --format {args.format}")
    case = load_case(args.case)
    bar = progress_bar(args)
    try:
        meshes = segment_case.build_surfaces(case, segments=args.segment, volume_id=args.volume, progress=bar)
        write_mesh(meshes if len(meshes) > 1 else meshes[0], output)
        save_case(case, args.case, progress=bar)
    finally:
        bar.close()
    from segmentation.surface import surface_quality

    for mesh in meshes:
        q = surface_quality(mesh)
        say(args, f"surface {mesh.name!r}: {mesh.n_triangles} triangles, {q.volume_mm3 / 1000:.1f} ml, "
                   f"{q.area_mm2 / 100:.1f} cm2, watertight={q.watertight}, manifold={q.manifold}, genus={q.genus}")
    say(args, f"wrote {output} (LPS millimetres)")
    return EXIT_OK


def cmd_stats(args: argparse.Namespace) -> int:
    from workstation import segment_case
    from workstation.bundle import load_case

    case = load_case(args.case)
    stats = segment_case.statistics(case, volume_id=args.volume)
    if args.json:
        modality = segment_case.case_volume(case, args.volume).modality
        intensity = {"CT": "HU", "OT": "HU if the image is a CT (its modality is not recorded)"}.get(
            modality, f"{modality} image values (no physical unit)")
        print(json.dumps({"case": str(args.case), "units": {"volume_ml": "ml", "surface_area_mm2": "mm2",
                                                            "mean, std, min, max": intensity},
                          "segments": [s.to_dict() for s in stats]}, indent=1))
        return EXIT_OK
    if not stats:
        print("no segments")
    for s in stats:
        print(f"{s.name:<20} label {s.value:>3}  {s.volume_ml:9.2f} ml  {s.surface_area_mm2 / 100:9.1f} cm2  "
              f"mean {s.mean:8.1f}  std {s.std:7.1f}  min {s.min:7.0f}  max {s.max:7.0f}" if s.voxels else
              f"{s.name:<20} label {s.value:>3}  empty")
    return EXIT_OK


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add this module's subcommands to ``twin``."""
    p = sub.add_parser("segment", parents=[common], help="add segments to a case: preset, grow from seeds, import")
    p.add_argument("case")
    p.add_argument("--preset", help="CT preset: bone, soft_tissue, fat, lung_air, vessels_contrast, body")
    p.add_argument("--name", help="segment name (default: the preset's)")
    p.add_argument("--point", action="append", metavar="X,Y,Z",
                   help="keep only the pieces under this LPS point (mm); repeatable")
    p.add_argument("--seeds", metavar="FILE", help="seed label map (.nrrd/.nii.gz/.dcm): 0 unknown, other values "
                                                   "are structures or the background")
    p.add_argument("--background", type=int, metavar="V", help="seed value that marks background (with --seeds)")
    p.add_argument("--import", dest="import_path", metavar="FILE", help="merge a label-map file's segments")
    p.add_argument("--volume", help="volume id (default: the first)")
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser("labels", parents=[common], help="export the label map (.nrrd, .nii.gz or DICOM SEG .dcm)")
    p.add_argument("case")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--volume", help="volume id (default: the first)")
    p.set_defaults(func=cmd_labels)

    p = sub.add_parser("mesh", parents=[common], help="build and export segment surfaces (LPS mm)")
    p.add_argument("case")
    p.add_argument("--segment", action="append", help="segment name (repeatable; default: all)")
    p.add_argument("--format", choices=["stl", "obj", "ply", "3mf", "vtp"], help="file format (default: suffix)")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--volume", help="volume id (default: the first)")
    p.set_defaults(func=cmd_mesh)

    p = sub.add_parser("stats", parents=[common], help="per-segment volume, surface area and HU statistics")
    p.add_argument("case")
    p.add_argument("--json", action="store_true")
    p.add_argument("--volume", help="volume id (default: the first)")
    p.set_defaults(func=cmd_stats)

