"""``twin render | flythrough | orbit | deformation | report | camera``: rehearsal pictures without a window."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from workstation.cli.common import parse_point, progress_bar, say
from workstation.errors import EXIT_OK, InputError
from workstation.io.atomic import output_file

VIEW_HELP = ("anterior, posterior, left, right, superior, inferior, anterior_superior, probe:<trajectory> "
             "or camera:<saved camera>")


def _scene_options(args: argparse.Namespace, *, hide_tools: tuple[str, ...] = ()) -> object:
    from workstation.render.case_scene import SceneOptions
    from workstation.render.presets import parse_window_level

    mpr = getattr(args, "mpr", None)
    return SceneOptions(
        segments=args.segment,
        # A slice picture shows the slice; surfaces only when segments are asked for by name.
        surfaces=not args.no_surfaces and (mpr is None or bool(args.segment)),
        volume_preset=getattr(args, "volume_preset", None),
        mpr=mpr,
        window_level=parse_window_level(args.window_level) if getattr(args, "window_level", None) else None,
        plan=not args.no_plan,
        hide_tools=hide_tools,
        simulation=getattr(args, "simulation", None),
        color_by=getattr(args, "color_by", "displacement"),
        clearance=getattr(args, "clearance", None),
    )


def _in_scene(args: argparse.Namespace, case: object, options: object, size: tuple[int, int],
              draw: Callable[[Any, Any], Any]) -> Any:
    """``draw(scene, progress_bar)`` in the case's off-screen scene; the bar is closed afterwards."""
    from workstation.render.case_scene import build_case_scene

    bar = progress_bar(args)
    try:
        with build_case_scene(case, options, size=size, progress=bar) as scene:
            return draw(scene, bar)
    finally:
        bar.close()


def _default_view(mpr: str | None) -> str:
    return {"axial": "inferior", "coronal": "anterior", "sagittal": "left"}.get(mpr or "", "anterior")


def cmd_render(args: argparse.Namespace) -> int:
    from workstation.bundle import load_case
    from workstation.render.case_scene import camera_for
    from workstation.render.scene import parse_size

    output = output_file(args.output, suffixes=(".png",))
    size = parse_size(args.size)
    case = load_case(args.case)
    view = args.view or ("oblique" if (args.mpr or "").startswith("oblique:") else _default_view(args.mpr))
    hide = (view.split(":", 1)[1],) if view.startswith("probe:") else ()
    def draw(scene: Any, _: Any) -> Any:
        if view == "oblique":  # face the oblique slice
            pose = scene.face_slice(next(iter(scene.slices)))
        else:
            pose = camera_for(scene, case, view)
            scene.set_camera(pose)
        if args.title:
            scene.add_title(args.title)
        scene.save_png(output)
        return pose

    pose = _in_scene(args, case, _scene_options(args, hide_tools=hide), size, draw)
    say(args, f"wrote {output} ({size[0]}x{size[1]}, view {view}, camera at "
              f"{', '.join(f'{x:.1f}' for x in pose.position_lps)} LPS mm)")
    return EXIT_OK


def cmd_flythrough(args: argparse.Namespace) -> int:
    import numpy as np

    from workstation.bundle import load_case
    from workstation.render.animation import camera_frames, check_movie_path, write_movie
    from workstation.render.cameras import find_trajectory, flythrough_poses, trajectory_flythrough
    from workstation.render.scene import parse_size

    output = check_movie_path(args.output)
    size = parse_size(args.size)
    case = load_case(args.case)
    if bool(args.trajectory) == bool(args.through):
        raise InputError("give exactly one of --trajectory NAME or --through LANDMARK,LANDMARK,...")
    if args.trajectory:
        trajectory = find_trajectory(case.plan.trajectories, args.trajectory)
        poses = trajectory_flythrough(trajectory, args.frames)
        hide: tuple[str, ...] = (trajectory.name,)
    else:
        by_name = {lm.name: lm.position_lps for lm in case.plan.landmarks}
        names = [n.strip() for n in args.through.split(",") if n.strip()]
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise InputError(f"--through: no landmark {unknown}; landmarks: {sorted(by_name) or 'none'}")
        poses = flythrough_poses(np.array([by_name[n] for n in names]), args.frames)
        hide = ()
    _in_scene(args, case, _scene_options(args, hide_tools=hide), size,
              lambda scene, bar: write_movie(camera_frames(scene, poses, progress=bar), output, fps=args.fps))
    say(args, f"wrote {output} ({len(poses)} frames, {size[0]}x{size[1]}, {args.fps:g} fps)")
    return EXIT_OK


def cmd_orbit(args: argparse.Namespace) -> int:
    from workstation.bundle import load_case
    from workstation.render.animation import camera_frames, check_movie_path, write_movie
    from workstation.render.cameras import orbit_poses
    from workstation.render.scene import parse_size

    output = check_movie_path(args.output)
    size = parse_size(args.size)
    case = load_case(args.case)
    def draw(scene: Any, bar: Any) -> None:
        poses = orbit_poses(scene.bounds, args.frames, elevation_deg=args.elevation_deg, aspect=size[0] / size[1])
        write_movie(camera_frames(scene, poses, progress=bar), output, fps=args.fps)

    _in_scene(args, case, _scene_options(args), size, draw)
    say(args, f"wrote {output} (orbit, {args.frames} frames, {size[0]}x{size[1]})")
    return EXIT_OK


def cmd_deformation(args: argparse.Namespace) -> int:
    from workstation.bundle import load_case
    from workstation.render.animation import check_movie_path, deformation_frames, write_movie
    from workstation.render.case_scene import SceneOptions, camera_for
    from workstation.render.mechanics_view import simulation_result
    from workstation.render.scene import parse_size

    output = check_movie_path(args.output)
    size = parse_size(args.size)
    case = load_case(args.case)
    result = simulation_result(case, args.simulation)
    def draw(scene: Any, bar: Any) -> None:
        scene.include_bounds(result.tet_mesh.to_pyvista().bounds)
        scene.set_camera(camera_for(scene, case, args.view))
        write_movie(deformation_frames(scene, result, quantity=args.color_by, n_frames=args.frames,
                                       scale=args.scale, progress=bar), output, fps=args.fps)

    _in_scene(args, case, SceneOptions(surfaces=False, plan=not args.no_plan), size, draw)
    say(args, f"wrote {output} (simulation {result.record.name!r}, coloured by {args.color_by})")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from workstation.bundle import load_case
    from workstation.render.scene import parse_size
    from workstation.report.html_report import write_report

    output = output_file(args.output, suffixes=(".html", ".htm"))
    case = load_case(args.case)
    bar = progress_bar(args)
    try:
        write_report(case, output, progress=bar, size=parse_size(args.size))
    finally:
        bar.close()
    say(args, f"wrote {output} (self-contained HTML: pictures embedded)")
    return EXIT_OK


def cmd_camera(args: argparse.Namespace) -> int:
    from workstation.bundle import load_case, save_case
    from workstation.render.cameras import CameraPose

    case = load_case(args.case)
    if args.action == "list":
        cameras = case.records_of("camera")
        if args.json:
            print(json.dumps({"coordinate_system": "LPS", "units": "mm",
                              "cameras": [{"name": r.name, **r.meta} for r in cameras]}, indent=1))
        elif not cameras:
            print("no saved cameras")
        for r in cameras if not args.json else ():
            pose = CameraPose.from_meta(r.meta)
            lens = (f"orthographic, half-height {pose.parallel_scale_mm:.1f} mm" if pose.parallel_scale_mm
                    else f"angle {pose.view_angle_deg:g} deg")
            print(f"{r.name:<20} position {_fmt(pose.position_lps)}  focal point {_fmt(pose.focal_point_lps)}  "
                  f"up {_fmt(pose.view_up, 2)}  {lens}")
        return EXIT_OK
    if args.view and (args.position or args.focal_point):
        raise InputError("give either --view or --position with --focal-point, not both")
    if args.view:
        from workstation.render.case_scene import SceneOptions, build_case_scene, camera_for

        if args.view.startswith("probe:"):
            from workstation.render.cameras import find_trajectory, probe_view

            pose = probe_view(find_trajectory(case.plan.trajectories, args.view.split(":", 1)[1]))
        else:
            with build_case_scene(case, SceneOptions(plan=False), size=(400, 300)) as scene:
                pose = camera_for(scene, case, args.view)
    elif args.position and args.focal_point:
        pose = CameraPose(position_lps=tuple(parse_point(args.position, "--position")),
                          focal_point_lps=tuple(parse_point(args.focal_point, "--focal-point")),
                          view_up=tuple(parse_point(args.view_up, "--view-up")) if args.view_up else (0, 0, 1),
                          view_angle_deg=args.view_angle_deg)
    else:
        raise InputError("camera save: give --view V, or --position X,Y,Z and --focal-point X,Y,Z")
    case.add_record(pose.to_record(args.name), replace_same_name=True)
    save_case(case, args.case)
    say(args, f"saved camera {args.name!r} in {args.case}: position {_fmt(pose.position_lps)}, focal point "
              f"{_fmt(pose.focal_point_lps)} (LPS mm); render it with --view camera:{args.name}")
    return EXIT_OK


def _fmt(values: tuple[float, ...], digits: int = 1) -> str:
    return "(" + ", ".join(f"{v:.{digits}f}" for v in values) + ")"


def _scene_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--segment", action="append", help="draw only this segment's surface (repeatable)")
    p.add_argument("--no-surfaces", action="store_true", help="do not draw segment surfaces")
    p.add_argument("--no-plan", action="store_true", help="do not draw plan items")
    p.add_argument("--volume-preset", choices=["bone", "soft_tissue", "vessels"], help="add volume rendering")
    p.add_argument("--simulation", metavar="NAME", help="draw a mechanics result ('latest' or a record name)")
    p.add_argument("--color-by", choices=["displacement", "von_mises"], default="displacement",
                   help="colour of the mechanics result (default displacement, mm)")
    p.add_argument("--clearance", metavar="TRAJECTORY", help="colour surfaces by clearance to this tool (mm)")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add this module's subcommands to ``twin``."""
    p = sub.add_parser("render", parents=[common], help="a picture of a case from a view (PNG, off-screen)")
    p.add_argument("case")
    p.add_argument("--view", help=f"{VIEW_HELP} (default anterior, or the slice's own view with --mpr)")
    p.add_argument("--size", default="800x600", help="WIDTHxHEIGHT in pixels (default 800x600)")
    p.add_argument("--mpr", help="a slice: axial, coronal, sagittal or oblique:<trajectory>")
    p.add_argument("--window-level", metavar="W,L", help="slice window: W,L in HU or a preset (bone, soft_tissue, "
                                                         "abdomen, liver, lung, brain, vessels)")
    p.add_argument("--title", default="", help="text in the picture's upper left corner")
    _scene_arguments(p)
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("flythrough", parents=[common], help="a movie travelling down a trajectory (MP4 or GIF)")
    p.add_argument("case")
    p.add_argument("--trajectory", help="planned trajectory to travel down (entry to target)")
    p.add_argument("--through", metavar="A,B,...", help="or: travel along a curve through these landmarks")
    p.add_argument("--frames", type=int, default=48, help="number of frames (default 48)")
    p.add_argument("--fps", type=float, default=12.0)
    p.add_argument("--size", default="640x480", help="WIDTHxHEIGHT in pixels (default 640x480)")
    _scene_arguments(p)
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_flythrough)

    p = sub.add_parser("orbit", parents=[common], help="a movie circling the patient (MP4 or GIF)")
    p.add_argument("case")
    p.add_argument("--frames", type=int, default=36)
    p.add_argument("--fps", type=float, default=12.0)
    p.add_argument("--elevation-deg", type=float, default=15.0, help="camera elevation towards superior")
    p.add_argument("--size", default="640x480")
    _scene_arguments(p)
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_orbit)

    p = sub.add_parser("deformation", parents=[common], help="a movie of a mechanics result over its load steps")
    p.add_argument("case")
    p.add_argument("--simulation", metavar="NAME", help="simulation record (default: the latest)")
    p.add_argument("--color-by", choices=["displacement", "von_mises"], default="displacement")
    p.add_argument("--view", default="anterior", help=VIEW_HELP)
    p.add_argument("--frames", type=int, default=24, help="frames for a single (linear) result")
    p.add_argument("--scale", type=float, default=1.0, help="exaggerate the drawn displacement by this factor")
    p.add_argument("--fps", type=float, default=12.0)
    p.add_argument("--size", default="640x480")
    p.add_argument("--no-plan", action="store_true")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_deformation)

    p = sub.add_parser("report", parents=[common], help="the HTML rehearsal report of a case")
    p.add_argument("case")
    p.add_argument("--size", default="640x480", help="size of the pictures in the report")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("camera", parents=[common], help="save or list named cameras in a case")
    p.add_argument("case")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = actions.add_parser("save", parents=[common], help="save a camera under a name")
    s.add_argument("name")
    s.add_argument("--view", help=VIEW_HELP)
    s.add_argument("--position", metavar="X,Y,Z", help="camera position (LPS mm)")
    s.add_argument("--focal-point", metavar="X,Y,Z", help="where the camera looks (LPS mm)")
    s.add_argument("--view-up", metavar="X,Y,Z", help="up direction (default superior 0,0,1)")
    s.add_argument("--view-angle-deg", type=float, default=30.0)
    s.set_defaults(func=cmd_camera)
    s = actions.add_parser("list", parents=[common], help="list saved cameras")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_camera)
