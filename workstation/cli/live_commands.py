"""``twin simulate-tracker | live | session``: tracked tools over OpenIGTLink, recorded sessions, scores.

``twin live`` is the OpenIGTLink SERVER (it listens on ``--igtl-listen PORT``); ``twin simulate-tracker``
(or a real tracker / robot) is the CLIENT that connects to ``HOST:PORT`` and streams TRANSFORM messages.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from workstation.cli.common import parse_point, say
from workstation.errors import EXIT_OK, InputError

if TYPE_CHECKING:
    from workstation.live.live_loop import LiveSummary
    from workstation.live.live_twin import LiveTwin
    from workstation.live.session import SessionRecorder
    from workstation.model import Case, Record


def _positive(text: str, option: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise InputError(f"{option} {text!r}: expected a positive number")
    return value


def cmd_simulate_tracker(args: argparse.Namespace) -> int:
    from workstation.live.igtl_stream import parse_host_port, stream_poses
    from workstation.live.plan_source import load_plan_source
    from workstation.live.tracker_sim import simulate_execution

    host, port = parse_host_port(args.igtl, "--igtl")
    rate = _positive(args.rate_hz, "--rate-hz")
    duration = _positive(args.duration_s, "--duration-s")
    try:
        noise = float(args.noise_mm)
        angle = float(args.angle_deg)
    except ValueError:
        raise InputError(f"--noise-mm {args.noise_mm!r} / --angle-deg {args.angle_deg!r}: expected numbers") from None
    if not noise >= 0:
        raise InputError(f"--noise-mm {args.noise_mm}: must be >= 0")
    offset = parse_point(args.offset_mm, "--offset-mm") if args.offset_mm else [0.0, 0.0, 0.0]
    source = load_plan_source(args.plan)
    trajectory = source.trajectory(args.trajectory)
    # a case bundle's plan is in image LPS: stream in its registration's tracker frame, as `twin live` expects
    registration = source.registration
    frame = registration.to_frame if registration is not None else source.frame
    execution = simulate_execution(trajectory, rate_hz=rate, duration_s=duration, noise_mm=noise, offset_mm=offset,
                                   angle_deg=angle, pivot=args.pivot, seed=args.seed, frame=frame,
                                   to_tracker=registration.matrix if registration is not None else None)
    say(args, f"streaming trajectory {trajectory.name!r} ({trajectory.length_mm:.1f} mm, frame {frame}) to "
              f"{host}:{port}: {len(execution.t_s)} poses at {rate:g} Hz over {duration:g} s; noise {noise:g} mm, "
              f"offset {offset} mm, angle {angle:g} deg about the {args.pivot}")
    try:
        sent = stream_poses(execution.poses, host=host, port=port, rate_hz=rate, device_name=args.device,
                            connect_timeout_s=args.connect_timeout_s)
    except ConnectionError as exc:
        raise InputError(f"--igtl {args.igtl}: {exc}") from None
    say(args, f"sent {sent} TRANSFORM messages as {args.device!r}")
    return EXIT_OK


def cmd_live(args: argparse.Namespace) -> int:
    from workstation.bundle import load_case, save_case
    from workstation.live.live_twin import LiveTwin
    from workstation.live.session import SessionRecorder

    if not 0 <= args.igtl_listen < 65536:
        raise InputError(f"--igtl-listen {args.igtl_listen}: expected a port in 0..65535 (0 = any free port)")
    duration = _positive(args.duration_s, "--duration-s") if args.duration_s is not None else None
    print_hz = _positive(str(args.print_hz), "--print-hz")
    if not args.record.strip():
        raise InputError("--record: the session needs a name")
    case = load_case(args.case)
    twin = LiveTwin(case, trajectory=args.trajectory, margin_mm=args.margin_mm, critical=args.critical,
                    registration_id=args.registration)
    recorder = SessionRecorder(plan=twin.describe(), structure_names=twin.structure_names)
    say(args, f"trajectory {twin.trajectory.name!r}, margin {twin.margin_mm:g} mm, critical structures: "
              f"{', '.join(twin.structure_names) or 'none'}; tracker frame {twin.tracker_frame!r} "
              f"({'registration ' + repr(twin.registration.id) if twin.registration else 'identity: no registration'})")
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())  # `kill` ends the session cleanly, saved
    try:
        summary = _listen(args, twin, recorder, duration, print_hz, stop)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if recorder.n_poses == 0:
        raise InputError(f"--igtl-listen {args.igtl_listen}: no pose received; nothing recorded")
    record = case.add_record(recorder.to_record(args.record), replace_same_name=True)
    save_case(case, args.case)
    say(args, f"recorded session {record.name!r}: {summary.poses} poses, {summary.dropped} dropped, "
              f"{summary.malformed} malformed, {summary.ignored} of other devices ignored, {summary.alarms} alarm(s); "
              f"latency median {summary.latency_ms_median:.2f} ms, p95 {summary.latency_ms_p95:.2f} ms, "
              f"max {summary.latency_ms_max:.2f} ms")
    say(args, f"saved case {args.case}")
    return EXIT_OK


def _listen(args: argparse.Namespace, twin: LiveTwin, recorder: SessionRecorder, duration: float | None,
            print_hz: float, stop: threading.Event) -> LiveSummary:
    from workstation.live.igtl_stream import TransformReceiver
    from workstation.live.live_loop import LiveSummary, run_live

    with TransformReceiver(args.igtl_listen, host=args.host) as receiver:
        print(f"listening on {receiver.host}:{receiver.port} (OpenIGTLink TRANSFORM)", flush=True)
        try:
            return run_live(twin, receiver, recorder, duration_s=duration, stop_on_disconnect=args.until_disconnect,
                            print_every_s=1.0 / print_hz, out=None if args.quiet else _print_flush,
                            device=args.device, stop=stop)
        except KeyboardInterrupt:
            say(args, "stopped (Ctrl-C): saving what was recorded")
            return LiveSummary(poses=recorder.n_poses)


def _print_flush(text: str) -> None:
    print(text, flush=True)


def _session(case: Case, name: str) -> Record:
    try:
        return case.record("session", name)
    except KeyError as exc:
        raise InputError(f"session {name!r}: {exc.args[0]}") from None


def cmd_session_list(args: argparse.Namespace) -> int:
    from workstation.bundle import load_case

    case = load_case(args.case)
    sessions = case.records_of("session")
    rows = [{"name": r.name, "id": r.id, "trajectory": r.meta.get("trajectory"), "n_poses": r.meta.get("n_poses"),
             "duration_s": r.meta.get("duration_s"), "started_utc": r.meta.get("started_utc")} for r in sessions]
    if args.json:
        print(json.dumps({"case": str(args.case), "sessions": rows}, indent=1))
        return EXIT_OK
    if not rows:
        print("no sessions")
    for row in rows:
        print(f"{row['name']:<24} trajectory {row['trajectory']!s:<16} {row['n_poses']:>6} poses  "
              f"{row['duration_s'] or 0:7.1f} s  started {row['started_utc']}")
    return EXIT_OK


def cmd_session_score(args: argparse.Namespace) -> int:
    from workstation.bundle import load_case
    from workstation.live.scoring import score_session, write_session_report

    case = load_case(args.case)
    record = _session(case, args.name)
    score = score_session(record)
    written = write_session_report(record, args.report) if args.report else {}
    if args.json:
        print(json.dumps({**score.to_dict(), "report": {k: str(v) for k, v in written.items()}}, indent=1))
        return EXIT_OK
    print("\n".join(score.lines()))
    for kind, path in written.items():
        say(args, f"wrote {kind} report {path}")
    return EXIT_OK


def cmd_session_compare(args: argparse.Namespace) -> int:
    from workstation.bundle import load_case
    from workstation.live.scoring import plot_comparison, score_session

    output = Path(args.output)
    if output.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise InputError(f"-o {output}: the plot must be .png, .svg or .pdf")
    case = load_case(args.case)
    scores = [score_session(_session(case, name)) for name in args.names]
    plot_comparison(scores, output)
    if args.json:
        print(json.dumps({"sessions": [s.to_dict() for s in scores], "plot": str(output)}, indent=1))
        return EXIT_OK
    for s in scores:
        print(f"{s.name:<20} entry {s.entry_deviation_mm:6.2f} mm  target {s.target_deviation_mm:6.2f} mm  "
              f"angle {s.angle_deg:5.2f} deg  time {s.time_taken_s:6.2f} s  breaches {s.breaches} "
              f"({s.breach_duration_s:.2f} s)")
    say(args, f"wrote {output}")
    return EXIT_OK


def cmd_session_replay(args: argparse.Namespace) -> int:
    from workstation.bundle import load_case
    from workstation.live.movie import write_session_movie

    speed = _positive(args.speed, "--speed")
    fps = _positive(args.fps, "--fps")
    case = load_case(args.case)
    record = _session(case, args.name)
    path = write_session_movie(case, record, args.output, speed=speed, fps=fps, view=args.view)
    say(args, f"wrote {path} (session {record.name!r} at x{speed:g}, {fps:g} fps)")
    return EXIT_OK


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add this module's subcommands to ``twin``."""
    p = sub.add_parser("simulate-tracker", parents=[common],
                       help="stream a simulated execution of a planned trajectory over OpenIGTLink (client)")
    p.add_argument("plan", help="plan JSON from `twin export-plan` (streamed in its frame), or a case bundle "
                                "(streamed in its registration's tracker frame; image LPS without one)")
    p.add_argument("--igtl", required=True, metavar="HOST:PORT", help="OpenIGTLink server to connect to (twin live)")
    p.add_argument("--trajectory", help="trajectory name (default: the first)")
    p.add_argument("--noise-mm", default="0", help="Gaussian noise SD on each tip coordinate (mm; default 0)")
    p.add_argument("--offset-mm", metavar="DX,DY,DZ",
                   help="systematic offset of the executed path (mm, in the plan's image LPS coordinates for a case "
                        "bundle, in the file's frame for a plan JSON)")
    p.add_argument("--angle-deg", default="0", help="angular deviation of the executed path (degrees)")
    p.add_argument("--pivot", choices=["target", "entry"], default="target",
                   help="point the angular deviation turns about (default: target, i.e. the entry moves)")
    p.add_argument("--rate-hz", default="60", help="messages per second (default 60)")
    p.add_argument("--duration-s", default="5", help="length of the execution (default 5 s)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--device", default="ToolToTracker", help="OpenIGTLink device name (default ToolToTracker)")
    p.add_argument("--connect-timeout-s", type=float, default=10.0, help="wait this long for the server")
    p.set_defaults(func=cmd_simulate_tracker)

    p = sub.add_parser("live", parents=[common],
                       help="receive tool poses over OpenIGTLink (server), print deviations and alarms, record")
    p.add_argument("case")
    p.add_argument("--igtl-listen", type=int, required=True, metavar="PORT", help="port to listen on (0 = any)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--record", required=True, metavar="NAME", help="session name to record into the case")
    p.add_argument("--duration-s", help="stop after this long (default: Ctrl-C or --until-disconnect)")
    p.add_argument("--until-disconnect", action="store_true", help="stop when the streaming client disconnects")
    p.add_argument("--trajectory", help="planned trajectory to measure against (default: the first)")
    p.add_argument("--margin-mm", type=float, default=2.0, help="safety margin to critical structures (default 2)")
    p.add_argument("--critical", action="append", metavar="SURFACE",
                   help="critical surface name (repeatable; default: all but skin/body and the target's organ)")
    p.add_argument("--registration", help="registration id (default: the case's last image_lps one; none = identity)")
    p.add_argument("--print-hz", type=float, default=2.0, help="printed lines per second (default 2)")
    p.add_argument("--device", help="OpenIGTLink device name of the tool (default: the first that sends)")
    p.set_defaults(func=cmd_live)

    p = sub.add_parser("session", parents=[common], help="recorded sessions: list, score, compare, replay")
    ss = p.add_subparsers(dest="session_command", metavar="ACTION", required=True)
    q = ss.add_parser("list", parents=[common], help="the case's recorded sessions")
    q.add_argument("case")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_session_list)
    q = ss.add_parser("score", parents=[common], help="entry/target/angle deviations, time, breaches of a session")
    q.add_argument("case")
    q.add_argument("name")
    q.add_argument("--json", action="store_true")
    q.add_argument("--report", metavar="DIR", help="also write <name>.json, <name>-timeline.png, <name>.html here")
    q.set_defaults(func=cmd_session_score)
    q = ss.add_parser("compare", parents=[common], help="plot several sessions' scores side by side")
    q.add_argument("case")
    q.add_argument("names", nargs="+", metavar="NAME")
    q.add_argument("-o", "--output", required=True, help="plot file (.png, .svg, .pdf)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_session_compare)
    q = ss.add_parser("replay", parents=[common], help="render a session to a movie (MP4 or GIF)")
    q.add_argument("case")
    q.add_argument("name")
    q.add_argument("-o", "--output", required=True, help="movie file (.mp4, or .gif)")
    q.add_argument("--speed", default="1", help="replay speed factor (default 1; 2 = twice as fast)")
    q.add_argument("--fps", default="25", help="movie frames per second (default 25)")
    q.add_argument("--view", default="anterior", help="camera view (anterior, left, superior, ...)")
    q.set_defaults(func=cmd_session_replay)
