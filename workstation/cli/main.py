"""The ``twin`` command: the same core functions the desktop app calls, without a window.

Exit codes: 0 ok, 1 internal error (a bug), 2 usage, 3 bad input, 4 output not writable,
5 damaged case bundle, 130 interrupted. See :mod:`workstation.errors`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from workstation import __version__
from workstation.cli.progress_bar import ProgressBar
from workstation.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, InputError, OutputError, TwinError

EPILOG = """exit codes: 0 ok, 1 internal error, 2 usage, 3 bad input, 4 output not writable,
5 damaged case bundle, 130 interrupted. Geometry is always patient LPS millimetres."""


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text, flush=True)


def _progress(args: argparse.Namespace) -> ProgressBar:
    return ProgressBar(enabled=not args.quiet and sys.stderr.isatty())


def cmd_scan(args: argparse.Namespace) -> int:
    from workstation.dicom.scan import scan_path

    bar = _progress(args)
    try:
        result = scan_path(args.path, progress=bar)
    finally:
        bar.close()
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
        return EXIT_OK
    print(f"{result.source}: {result.n_files} files, {len(result.candidates)} series candidate(s)")
    if result.candidates:
        print("  #  mod orient.  size (i x j x k) spacing (mm)           files  series")
    for candidate in result.candidates:
        print(candidate.summary())
    if result.rejected:
        print(f"set aside ({len(result.rejected)}):")
        for shown, reason in result.rejected[: args.max_rejected]:
            print(f"  {shown}: {reason}")
        if len(result.rejected) > args.max_rejected:
            print(f"  ... and {len(result.rejected) - args.max_rejected} more (--max-rejected N shows more)")
    if result.usable():
        print(f"default for 'twin import': series {result.default().number}")
    else:
        print(f"no volume can be imported: {result.why_nothing_usable()}")
    return EXIT_OK


def _check_new_output(path: Path) -> None:
    if path.exists() and not (path.is_dir() and (path / "manifest.json").is_file()) and not (
            path.is_dir() and not any(path.iterdir())):
        raise OutputError(f"{path}: exists and is not a case bundle; choose another -o")
    if not path.parent.exists():
        raise OutputError(f"{path}: folder {path.parent} does not exist")


def cmd_import(args: argparse.Namespace) -> int:
    from workstation.bundle import save_case
    from workstation.importer import import_path

    out = Path(args.output)
    _check_new_output(out)
    bar = _progress(args)
    try:
        result = import_path(args.path, series=args.series, keep_phi=args.keep_phi,
                             name=out.name.removesuffix(".zip"), progress=bar)
        for message in result.messages:
            _say(args, message)
        save_case(result.case, out, progress=bar)
    finally:
        bar.close()
    _say(args, f"wrote case {out}")
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    from workstation.bundle import load_case, read_manifest

    case = load_case(args.case)  # verifies every file's SHA-256 and that the data load
    manifest = read_manifest(args.case)
    info = {
        "case": str(args.case),
        "name": case.name,
        "schema_version": manifest["schema_version"],
        "software": manifest.get("software"),
        "coordinate_system": "LPS",
        "units": "mm",
        "volumes": [dict(v.geometry_dict(), series_number=v.series.series_number,
                         warnings=v.provenance.get("warnings", [])) for v in case.volumes.values()],
        "label_maps": [{"id": lm.id, "segments": [s.to_dict() for s in lm.segments]}
                       for lm in case.label_maps.values()],
        "meshes": [{"id": m.id, "n_triangles": m.n_triangles} for m in case.meshes.values()],
        "deidentification": case.deidentification,
        "log": case.log,
    }
    if args.json:
        print(json.dumps(info, indent=1))
        return EXIT_OK
    print(f"case {args.case} ({case.name}), schema {info['schema_version']}, frame LPS (mm), "
          f"{'de-identified' if case.deidentification.get('deidentified') else 'PHI kept'}")
    for v in case.volumes.values():
        k, j, i = v.shape
        print(f"  volume {v.id}: {v.modality} {i}x{j}x{k} (i x j x k), spacing "
              f"{', '.join(f'{s:.4g}' for s in v.spacing_mm)} mm, origin "
              f"({', '.join(f'{x:.2f}' for x in v.origin_lps)}) mm LPS, {v.array.dtype}")
        for warning in v.provenance.get("warnings", []):
            print(f"    warning: {warning}")
    for lm in case.label_maps.values():
        print(f"  label map {lm.id}: {', '.join(s.name for s in lm.segments) or 'no named segments'}")
    return EXIT_OK


def cmd_export_volume(args: argparse.Namespace) -> int:
    from workstation.bundle import load_case
    from workstation.io.volume_files import write_volume

    case = load_case(args.case)
    try:
        volume = case.volume(args.volume)
    except KeyError as exc:
        raise InputError(f"--volume: {exc.args[0]}") from None
    write_volume(volume, args.output)
    _say(args, f"wrote {args.output} ({volume.modality}, LPS geometry; NIfTI stores RAS on disk)")
    return EXIT_OK


def _parse_point(text: str, option: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 3 or not all(np.isfinite(values)):
        raise InputError(f"{option} {text!r}: expected x,y,z in LPS mm")
    return values


def cmd_segment(args: argparse.Namespace) -> int:
    from workstation import segment_case
    from workstation.bundle import load_case, save_case

    chosen = [opt for opt in ("preset", "seeds", "import_path") if getattr(args, opt)]
    if len(chosen) != 1:
        raise InputError("give exactly one of --preset, --seeds or --import")
    case = load_case(args.case)
    bar = _progress(args)
    try:
        if args.preset:
            points = [_parse_point(p, "--point") for p in args.point] if args.point else None
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
        save_case(case, args.case, progress=bar)
    finally:
        bar.close()
    for stat in segment_case.statistics(case, volume_id=args.volume):
        if stat.name in made:
            _say(args, f"segment {stat.name!r} (label {stat.value}): {stat.volume_ml:.1f} ml")
    _say(args, f"saved case {args.case}")
    return EXIT_OK


def cmd_labels(args: argparse.Namespace) -> int:
    from workstation import segment_case
    from workstation.bundle import load_case

    case = load_case(args.case)
    label_map = segment_case.export_labels(case, args.output, volume_id=args.volume)
    _say(args, f"wrote {args.output}: {', '.join(f'{s.value}={s.name}' for s in label_map.segments)} "
               "(source grid, LPS geometry)")
    return EXIT_OK


def cmd_mesh(args: argparse.Namespace) -> int:
    from workstation import segment_case
    from workstation.bundle import load_case, save_case
    from workstation.io.mesh_files import write_mesh

    output = Path(args.output)
    if args.format and output.suffix.lower() != f".{args.format}":
        raise InputError(f"-o {output}: its suffix does not match --format {args.format}")
    case = load_case(args.case)
    bar = _progress(args)
    try:
        meshes = segment_case.build_surfaces(case, segments=args.segment, volume_id=args.volume, progress=bar)
        write_mesh(meshes if len(meshes) > 1 else meshes[0], output)
        save_case(case, args.case, progress=bar)
    finally:
        bar.close()
    from segmentation.surface import surface_quality

    for mesh in meshes:
        q = surface_quality(mesh)
        _say(args, f"surface {mesh.name!r}: {mesh.n_triangles} triangles, {q.volume_mm3 / 1000:.1f} ml, "
                   f"{q.area_mm2 / 100:.1f} cm2, watertight={q.watertight}, manifold={q.manifold}, genus={q.genus}")
    _say(args, f"wrote {output} (LPS millimetres)")
    return EXIT_OK


def cmd_stats(args: argparse.Namespace) -> int:
    from workstation import segment_case
    from workstation.bundle import load_case

    case = load_case(args.case)
    stats = segment_case.statistics(case, volume_id=args.volume)
    if args.json:
        print(json.dumps({"case": str(args.case), "units": {"volume": "ml", "surface_area": "mm2",
                                                            "intensity": "HU for CT"},
                          "segments": [s.to_dict() for s in stats]}, indent=1))
        return EXIT_OK
    if not stats:
        print("no segments")
    for s in stats:
        print(f"{s.name:<20} label {s.value:>3}  {s.volume_ml:9.2f} ml  {s.surface_area_mm2 / 100:9.1f} cm2  "
              f"mean {s.mean:8.1f}  std {s.std:7.1f}  min {s.min:7.0f}  max {s.max:7.0f}" if s.voxels else
              f"{s.name:<20} label {s.value:>3}  empty")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from workstation.demo import run_demo

    bar = _progress(args)
    try:
        made = run_demo(args.out, progress=bar, say=lambda text: _say(args, text))
    finally:
        bar.close()
    _say(args, f"demo output in {args.out}:")
    for path, what in made:
        _say(args, f"  {path}  - {what}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twin", description="Surgical-planning digital twin (headless).",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"twin {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="print only errors (and requested JSON)")
    common.add_argument("--debug", action="store_true", help="show a traceback on internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("scan", parents=[common], help="list the series in a DICOM folder, zip or DICOMDIR")
    p.add_argument("path", help="folder (searched recursively), .zip, DICOMDIR or file")
    p.add_argument("--json", action="store_true", help="print the candidates as JSON")
    p.add_argument("--max-rejected", type=int, default=20, metavar="N", help="list at most N set-aside files")
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("import", parents=[common], help="import a series (or NIfTI/NRRD) into a new case bundle")
    p.add_argument("path", help="DICOM folder, .zip, DICOMDIR, DICOM file, or .nii/.nii.gz/.nrrd volume")
    p.add_argument("-o", "--output", required=True, metavar="CASE",
                   help="case bundle to write (a folder; a path ending in .zip writes the zip form)")
    p.add_argument("--series", metavar="N|UID",
                   help="number printed by 'twin scan' or a Series Instance UID (default: the largest volume)")
    p.add_argument("--keep-phi", action="store_true",
                   help="keep identifying DICOM attributes (default: de-identify per DICOM PS3.15)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("info", parents=[common], help="describe a case bundle (verifies its checksums)")
    p.add_argument("case")
    p.add_argument("--json", action="store_true", help="print a JSON object (volumes: shape [k,j,i], "
                                                       "spacing_mm, origin_lps, direction, ijk_to_lps, modality)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("export-volume", parents=[common], help="write a case's volume as NIfTI or NRRD")
    p.add_argument("case")
    p.add_argument("-o", "--output", required=True, help=".nii, .nii.gz or .nrrd file")
    p.add_argument("--volume", help="volume id (default: the first)")
    p.set_defaults(func=cmd_export_volume)

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

    p = sub.add_parser("demo", parents=[common], help="run the headless demo on the bundled sample case")
    p.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    p.set_defaults(func=cmd_demo)
    return parser


# Options whose value is a coordinate list that may start with a minus sign ("-12,-8,0").
COORDINATE_OPTIONS = ("--point", "--entry", "--target", "--push")


def _join_negative_coordinates(argv: Sequence[str]) -> list[str]:
    """``--point -12,-8,0`` -> ``--point=-12,-8,0`` (argparse would take the value for an option)."""
    out: list[str] = []
    tokens = list(argv)
    n = 0
    while n < len(tokens):
        token = tokens[n]
        following = tokens[n + 1] if n + 1 < len(tokens) else ""
        if token in COORDINATE_OPTIONS and len(following) > 1 and following[0] == "-" and (
                following[1].isdigit() or following[1] == "."):
            out.append(f"{token}={following}")
            n += 2
            continue
        out.append(token)
        n += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``twin``; returns the exit code. Errors are one line on stderr, never a traceback."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    parser = build_parser()
    args = parser.parse_args(_join_negative_coordinates(sys.argv[1:] if argv is None else argv))
    try:
        return int(args.func(args))
    except TwinError as exc:
        print(f"twin {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"twin {args.command}: interrupted; nothing was left half-written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        print(f"twin {args.command}: error: not enough memory for this input", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"twin {args.command}: internal error: {type(exc).__name__}: {' '.join(str(exc).split())} "
              "(a bug: rerun with --debug and report it)", file=sys.stderr)
        return EXIT_INTERNAL




if __name__ == "__main__":
    sys.exit(main())
