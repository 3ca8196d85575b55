"""``twin edit CASE OPERATION SEGMENT``: the segment editor's tools without a window.

Each call applies one edit of :mod:`workstation.segment_edits` to the case's label map and saves
the case (its surfaces of the old label map are dropped, as after any change of the labels).
``twin edit CASE undo|redo|history`` walk the case's journal of label-map changes
(:mod:`workstation.label_journal`), which every ``twin segment``, ``twin edit`` and app edit adds to.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from workstation.cli.common import parse_point, progress_bar, say
from workstation.errors import EXIT_OK, InputError

if TYPE_CHECKING:
    from workstation.model.labelmap import LabelMap
    from workstation.model.volume import Volume

# operation -> help
OPERATIONS: dict[str, str] = {
    "add": "add an empty segment",
    "remove": "remove a segment (its voxels become unlabelled)",
    "rename": "rename a segment",
    "color": "set a segment's colour",
    "threshold": "the segment becomes the voxels in an intensity range (HU for CT)",
    "region-grow": "the segment becomes the region grown from points (connected or confidence connected)",
    "keep-largest": "keep only the largest connected piece(s)",
    "keep-at": "keep only the pieces under points",
    "remove-small": "remove pieces smaller than a volume",
    "grow": "grow by a margin in mm",
    "shrink": "shrink by a margin in mm",
    "open": "open (shrink then grow) by a radius in mm: removes thin spurs",
    "close": "close (grow then shrink) by a radius in mm: fills gaps and notches",
    "smooth": "close then open by a radius in mm",
    "fill-holes": "fill enclosed holes (3-D, or per axial slice)",
    "fill-between-slices": "fill the empty slices between slices outlined every few slices (shape-based interpolation)",
    "hollow": "make a shell of a thickness in mm",
    "paint": "add brush dabs at points (balls, or discs in one slice with --plane)",
    "erase": "erase brush dabs at points (balls, or discs in one slice with --plane)",
    "draw": "fill a closed outline drawn in one slice (its corners as points, in order)",
    "scissors": "erase what lies inside a closed outline swept along the --plane normal through the volume "
                "(or, with --keep-inside, outside)",
    "level-trace": "fill the region of one slice enclosed by the iso-contour through a point (level tracing)",
    "cut-plane": "remove the side of a plane its normal points to",
    "cut-cylinder": "remove the inside of a cylinder (a drill path)",
    "union": "add other segments' region (grown by --margin-mm)",
    "intersect": "keep the part inside other segments' region grown by --margin-mm",
    "subtract": "remove other segments' region grown by --margin-mm",
    "smooth-labels": "smooth every segment together (majority in a ball); SEGMENT is ignored",
}


def _points(texts: list[str] | None, option: str) -> list[list[float]]:
    if not texts:
        raise InputError(f"{option}: give at least one X,Y,Z point (LPS mm)")
    return [parse_point(text, option) for text in texts]


def _color(text: str, option: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise InputError(f"{option} {text!r}: expected R,G,B between 0 and 1")
    return values  # type: ignore[return-value]


def _apply(args: argparse.Namespace, label_map: LabelMap, volume: Volume) -> LabelMap:
    from workstation import segment_edits as edits

    name, op = args.segment, args.operation
    overwrite = not getattr(args, "keep_others", False)
    actions: dict[str, Callable[[], LabelMap]] = {
        "add": lambda: edits.add_segment(label_map, name, color_rgb=_color(args.rgb, "--rgb") if args.rgb else None),
        "remove": lambda: edits.remove_segment(label_map, name),
        "rename": lambda: edits.rename_segment(label_map, name, new_name=args.to),
        "color": lambda: edits.recolor_segment(label_map, name, color_rgb=_color(args.rgb, "--rgb")),
        "threshold": lambda: edits.threshold_segment(label_map, volume, name, lower=args.lower, upper=args.upper,
                                                     overwrite=overwrite),
        "region-grow": lambda: edits.region_grow_segment(
            label_map, volume, name, points_lps=_points(args.point, "--point"), lower=args.lower, upper=args.upper,
            multiplier=args.multiplier, iterations=args.iterations, overwrite=overwrite),
        "keep-largest": lambda: edits.keep_largest(label_map, name, n=args.count),
        "keep-at": lambda: edits.keep_at_points(label_map, name, points_lps=_points(args.point, "--point")),
        "remove-small": lambda: edits.remove_small(label_map, name, min_ml=args.min_ml),
        "fill-holes": lambda: edits.fill_holes(label_map, name, per_slice=args.per_slice, overwrite=overwrite),
        "fill-between-slices": lambda: edits.fill_between_slices(label_map, name, plane=args.plane,
                                                                 overwrite=overwrite),
        "hollow": lambda: edits.hollow(label_map, name, thickness_mm=args.thickness_mm, inside=not args.outside,
                                       overwrite=overwrite),
        "cut-plane": lambda: edits.cut_plane(label_map, name, origin_lps=parse_point(args.origin, "--origin"),
                                             normal_lps=parse_point(args.normal, "--normal")),
        "cut-cylinder": lambda: edits.cut_cylinder(label_map, name, start_lps=parse_point(args.start, "--start"),
                                                   end_lps=parse_point(args.end, "--end"), radius_mm=args.radius_mm),
        "smooth-labels": lambda: edits.smooth_all(label_map, radius_mm=args.radius_mm),
        "draw": lambda: edits.draw(label_map, name, points_lps=_points(args.point, "--point"), plane=args.plane,
                                   erase=args.erase, overwrite=overwrite),
        "scissors": lambda: edits.scissors(label_map, name, points_lps=_points(args.point, "--point"),
                                           plane=args.plane, keep_inside=args.keep_inside,
                                           normal_lps=None if args.normal is None else
                                           parse_point(args.normal, "--normal")),
        "level-trace": lambda: edits.level_trace(label_map, volume, name, point_lps=parse_point(args.point, "--point"),
                                                 plane=args.plane, darker=args.darker, erase=args.erase,
                                                 overwrite=overwrite),
    }
    if op in edits.MORPHOLOGY:
        return edits.morph(label_map, name, operation=op, mm=args.mm, overwrite=overwrite)
    if op in edits.COMBINATIONS:
        return edits.combine(label_map, name, operation=op, others=args.others or [], margin_mm=args.margin_mm,
                             overwrite=overwrite)
    if op in ("paint", "erase"):
        for point in _points(args.point, "--point"):
            label_map = edits.paint(label_map, name, center_lps=point, radius_mm=args.radius_mm, erase=op == "erase",
                                    plane=args.plane, overwrite=overwrite)
        return label_map
    return actions[op]()


def _ml(label_map: LabelMap, name: str) -> float | None:
    from segmentation.surface import voxel_volume_mm3

    if not any(s.name == name for s in label_map.segments):
        return None
    return voxel_volume_mm3(label_map, name) / 1000.0


# options that shape an edit, as they are named in the journal's descriptions
_DESCRIBED = ("to", "rgb", "lower", "upper", "point", "plane", "multiplier", "iterations", "count", "radius_mm",
              "min_ml", "mm", "per_slice", "thickness_mm", "outside", "origin", "normal", "start", "end", "others",
              "margin_mm", "darker", "erase", "keep_inside", "keep_others")


def _description(args: argparse.Namespace) -> str:
    """The edit as a command line (operation, segment, options given), for the case's journal."""
    words = [args.operation] + ([args.segment] if args.segment else [])
    for key in _DESCRIBED:
        value = getattr(args, key, None)
        if value is None or value is False:
            continue
        option = "--with" if key == "others" else "--" + key.replace("_", "-")
        for item in value if isinstance(value, list) else [value]:
            words.append(option if item is True else f"{option} {item}")
    return " ".join(words)


def cmd_edit(args: argparse.Namespace) -> int:
    from workstation import segment_case
    from workstation.bundle import load_case, save_case

    case = load_case(args.case)
    volume = segment_case.case_volume(case, args.volume)
    label_map = segment_case.case_label_map(case, volume)
    before = _ml(label_map, args.segment)
    bar = progress_bar(args)
    try:
        step = f"{args.operation} {args.segment}".strip()
        bar(0, 1, step)  # margins on a large grid take seconds: show what runs
        edited = _apply(args, label_map, volume)
        bar(1, 1, step)
        segment_case.store_label_map(case, edited, description=_description(args))
        save_case(case, args.case, progress=bar)
    finally:
        bar.close()
    name = args.to if args.operation == "rename" else args.segment
    after = _ml(edited, name)
    if args.operation == "smooth-labels":
        say(args, "smoothed all segments: " + ", ".join(f"{s.name} {_ml(edited, s.name):.1f} ml"
                                                          for s in edited.segments))
    elif after is None:
        say(args, f"removed segment {args.segment!r}")
    else:
        change = "" if before is None else f" (was {before:.1f} ml)"
        say(args, f"segment {name!r} (label {edited.segment(name).value}): {after:.1f} ml{change}")
    say(args, f"saved case {args.case}")
    return EXIT_OK


def cmd_journal(args: argparse.Namespace) -> int:
    """``twin edit CASE undo|redo|history``: the case's journal of label-map changes."""
    import json

    from workstation import segment_case
    from workstation.bundle import load_case, save_case
    from workstation.label_journal import Journal

    case = load_case(args.case)
    volume = segment_case.case_volume(case, args.volume)
    journal = Journal(case, segment_case.label_map_id(volume))
    if args.operation == "history":
        entries = journal.entries()
        if args.json:
            print(json.dumps([{"edit": e.sequence, "description": e.description, "done": e.done,
                               "changed_voxels": e.changed_voxels, "saved_utc": e.saved_utc} for e in entries],
                             indent=1))
        elif not entries:
            say(args, f"no recorded edits of the label map of volume '{volume.id}'")
        else:
            for e in entries:
                state = "done  " if e.done else "undone"
                say(args, f"{e.sequence:4d}  {state}  {e.saved_utc}  {e.changed_voxels:>10,d} voxels  {e.description}")
        return EXIT_OK
    bar = progress_bar(args)
    try:
        label_map, entry = journal.undo() if args.operation == "undo" else journal.redo()
        save_case(case, args.case, progress=bar)
    finally:
        bar.close()
    verb = "undid" if args.operation == "undo" else "redid"
    segments = ", ".join(f"{s.name} {_ml(label_map, s.name):.1f} ml" for s in label_map.segments) or "no segments"
    say(args, f"{verb} edit {entry.sequence} ({entry.description}): {entry.changed_voxels:,d} voxels; {segments}")
    say(args, f"saved case {args.case}")
    return EXIT_OK


def _options(p: argparse.ArgumentParser, op: str) -> None:
    point_help = "X,Y,Z in LPS mm; repeatable"
    takes_voxels = op in ("threshold", "region-grow", "grow", "open", "close", "smooth", "fill-holes", "hollow",
                          "paint", "union", "fill-between-slices", "draw", "level-trace")
    if op in ("add", "color"):
        p.add_argument("--rgb", required=op == "color", metavar="R,G,B", help="colour, each between 0 and 1")
    elif op == "rename":
        p.add_argument("--to", required=True, metavar="NAME", help="the new name")
    elif op in ("threshold", "region-grow"):
        required = op == "threshold"
        p.add_argument("--lower", type=float, required=required, help="lowest value kept (HU for CT)")
        p.add_argument("--upper", type=float, required=required, help="highest value kept (HU for CT)")
        if op == "region-grow":
            p.add_argument("--point", action="append", required=True, metavar="X,Y,Z", help=point_help)
            p.add_argument("--multiplier", type=float, default=2.5,
                           help="without --lower/--upper: range = mean +- this many standard deviations")
            p.add_argument("--iterations", type=int, default=3, help="re-estimations of that range")
    elif op == "keep-largest":
        p.add_argument("--count", type=int, default=1, help="how many of the largest pieces to keep")
    elif op in ("keep-at", "paint", "erase"):
        p.add_argument("--point", action="append", required=True, metavar="X,Y,Z", help=point_help)
        if op != "keep-at":
            p.add_argument("--radius-mm", type=float, default=5.0, help="brush radius, mm (default 5)")
            p.add_argument("--plane", choices=("axial", "coronal", "sagittal"),
                           help="a 2-D brush: discs in the slice of this plane through each point (default: balls)")
    elif op in ("draw", "scissors"):
        p.add_argument("--point", action="append", required=True, metavar="X,Y,Z",
                       help="a corner of the outline, LPS mm; at least 3, in order")
        where = "its voxel slice through the corners is filled" if op == "draw" else "it is swept along its normal"
        p.add_argument("--plane", choices=("axial", "coronal", "sagittal"), required=True,
                       help=f"the view the outline was drawn in ({where})")
        if op == "draw":
            p.add_argument("--erase", action="store_true", help="erase the outlined region from the segment instead")
        else:
            p.add_argument("--keep-inside", action="store_true", help="erase what lies outside the outline instead")
            p.add_argument("--normal", metavar="X,Y,Z",
                           help="sweep along this LPS direction instead of the plane's normal (a view that shows "
                                "an oblique volume in its own slices)")
    elif op == "level-trace":
        p.add_argument("--point", required=True, metavar="X,Y,Z", help="a point on the structure's edge, LPS mm")
        p.add_argument("--plane", choices=("axial", "coronal", "sagittal"), required=True,
                       help="the view: its voxel slice through the point is traced")
        p.add_argument("--darker", action="store_true",
                       help="trace a structure darker than its surroundings (default: brighter)")
        p.add_argument("--erase", action="store_true", help="erase the traced region from the segment instead")
    elif op == "remove-small":
        p.add_argument("--min-ml", type=float, required=True, help="smallest piece kept, ml")
    elif op in ("grow", "shrink", "open", "close", "smooth"):
        p.add_argument("--mm", type=float, required=True, help="margin or radius, mm")
    elif op == "fill-holes":
        p.add_argument("--per-slice", action="store_true", help="fill holes in each axial slice instead of in 3-D")
    elif op == "fill-between-slices":
        p.add_argument("--plane", choices=("auto", "axial", "coronal", "sagittal"), default="auto",
                       help="the plane the outlines were drawn in (default: the one with empty slices between them)")
    elif op == "hollow":
        p.add_argument("--thickness-mm", type=float, required=True, help="shell thickness, mm")
        p.add_argument("--outside", action="store_true", help="shell outside the old surface (default: inside)")
    elif op == "cut-plane":
        p.add_argument("--origin", required=True, metavar="X,Y,Z", help="a point of the plane, LPS mm")
        p.add_argument("--normal", required=True, metavar="X,Y,Z", help="the side removed, LPS direction")
    elif op == "cut-cylinder":
        p.add_argument("--start", required=True, metavar="X,Y,Z", help="axis start, LPS mm")
        p.add_argument("--end", required=True, metavar="X,Y,Z", help="axis end, LPS mm")
        p.add_argument("--radius-mm", type=float, required=True, help="cylinder radius, mm")
    elif op in ("union", "intersect", "subtract"):
        p.add_argument("--with", dest="others", action="append", required=True, metavar="SEGMENT",
                       help="another segment; repeatable")
        p.add_argument("--margin-mm", type=float, default=0.0, help="grow the others' region by this much first, mm")
    elif op == "smooth-labels":
        p.add_argument("--radius-mm", type=float, default=1.0, help="ball radius, mm (default 1)")
    if takes_voxels:
        p.add_argument("--keep-others", action="store_true",
                       help="take only unlabelled voxels (default: voxels of other segments are taken over)")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``twin edit`` with one sub-command per operation."""
    p = sub.add_parser("edit", help="edit a segment: threshold, islands, margins, holes, brush, cuts, logic",
                       description="Edit one segment of a case's label map (geometry in LPS mm) and save the case.")
    p.add_argument("case")
    ops = p.add_subparsers(dest="operation", metavar="OPERATION", required=True)
    for op, text in OPERATIONS.items():
        q: Any = ops.add_parser(op, parents=[common], help=text, description=text[0].upper() + text[1:] + ".")
        q.add_argument("segment", metavar="SEGMENT", nargs="?" if op == "smooth-labels" else None, default="")
        q.add_argument("--volume", help="volume id (default: the first)")
        _options(q, op)
        q.set_defaults(func=cmd_edit)
    for op, text in (("undo", "undo the latest change of the label map (saved with the case: any earlier run)"),
                     ("redo", "redo the change undone last"),
                     ("history", "list the recorded changes of the label map, oldest first")):
        q = ops.add_parser(op, parents=[common], help=text, description=text[0].upper() + text[1:] + ".")
        q.add_argument("--volume", help="volume id (default: the first)")
        if op == "history":
            q.add_argument("--json", action="store_true", help="print the list as JSON")
        q.set_defaults(func=cmd_journal)
