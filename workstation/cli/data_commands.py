"""``twin scan | import | info | export-volume | demo``: getting scans in and cases described."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from workstation.cli.common import check_new_output, progress_bar, say
from workstation.errors import EXIT_OK, InputError

if TYPE_CHECKING:
    from workstation.label_journal import Journal


def cmd_scan(args: argparse.Namespace) -> int:
    from workstation.dicom.scan import scan_path

    bar = progress_bar(args)
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


def cmd_import(args: argparse.Namespace) -> int:
    from workstation.bundle import save_case
    from workstation.importer import import_path

    out = Path(args.output)
    check_new_output(out)
    bar = progress_bar(args)
    try:
        result = import_path(args.path, series=args.series, keep_phi=args.keep_phi,
                             name=out.name.removesuffix(".zip"), progress=bar)
        for message in result.messages:
            say(args, message)
        save_case(result.case, out, progress=bar)
    finally:
        bar.close()
    say(args, f"wrote case {out}")
    return EXIT_OK


def _journal_counts(journal: Journal) -> dict[str, int]:
    done = [e.done for e in journal.entries()]
    return {"can_undo": sum(done), "can_redo": len(done) - sum(done)}


def cmd_info(args: argparse.Namespace) -> int:
    from workstation.bundle import load_case, read_manifest
    from workstation.label_journal import Journal

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
        "label_maps": [{"id": lm.id, "segments": [s.to_dict() for s in lm.segments],
                        "journal": _journal_counts(Journal(case, lm.id))}
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
    for lm, entry in zip(case.label_maps.values(), info["label_maps"], strict=True):
        print(f"  label map {lm.id}: {', '.join(s.name for s in lm.segments) or 'no named segments'}; "
              f"{entry['journal']['can_undo']} edit{'' if entry['journal']['can_undo'] == 1 else 's'} to undo, "
              f"{entry['journal']['can_redo']} to redo "
              "(twin edit CASE undo|redo|history)")
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
    say(args, f"wrote {args.output} ({volume.modality}, LPS geometry; NIfTI stores RAS on disk)")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from workstation.demo import run_demo

    bar = progress_bar(args)
    try:
        made = run_demo(args.out, progress=bar, say=lambda text: say(args, text))
    finally:
        bar.close()
    say(args, f"demo output in {args.out}:")
    for path, what in made:
        say(args, f"  {path}  - {what}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add this module's subcommands to ``twin``."""
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

    p = sub.add_parser("demo", parents=[common], help="run the headless demo on the bundled sample case")
    p.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    p.set_defaults(func=cmd_demo)
